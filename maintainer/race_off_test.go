//go:build !race

package maintainer

const raceEnabled = false
