//go:build race

package sinkcheck

// raceEnabled shrinks the scale test: the race detector makes it ten times slower.
const raceEnabled = true
