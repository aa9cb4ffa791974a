//go:build !race

package sinkcheck

const raceEnabled = false
