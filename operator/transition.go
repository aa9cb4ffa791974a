package operator

import "fmt"

// mustTransition panics when an operator attempts a state change its table does not allow: the
// state machines only move on validated input, so an invalid transition is a programming error.
func mustTransition[S comparable](kind string, from, to S, table map[S][]S) {
	for _, s := range table[from] {
		if s == to {
			return
		}
	}
	panic(fmt.Sprintf("operator: %s: invalid transition %v -> %v", kind, from, to))
}
