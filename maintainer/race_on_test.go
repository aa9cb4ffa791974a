//go:build race

package maintainer

// raceEnabled skips the million-table envelope test: the race detector makes it about eight
// times slower (67 s against 8.6 s on 2 shared cores).
const raceEnabled = true
