package maintainer

// lifecycle is where one span record is in its life: one enum, so no combination of flags
// can describe a span that cannot exist.
//
//	          insert                    beginAdd                  bind
//	(new) ──────────────► absent ──────────────► adding ───────────────► replicating
//	                        ▲  ▲    markAbsent /    │                     │  ▲    │
//	                        │  └────── release ─────┘           beginOp   │  │    │
//	                        │                                             ▼  │bind│
//	                        └───────────── markAbsent ─────────────── changing   │
//	                                                                (release)────┘
//	any state ── retire ──► retired (a tombstone: out of every index and count)
type lifecycle uint8

const (
	// lifeAbsent: no dispatcher serves the span; it waits for the scheduler.
	lifeAbsent lifecycle = iota
	// lifeAdding: an operator is creating the span's first dispatcher, not confirmed yet.
	lifeAdding
	// lifeChanging: an operator changes (moves, removes, splits, merges) the span's confirmed
	// dispatcher, which stays indexed until the operator's result says otherwise.
	lifeChanging
	// lifeReplicating: one known dispatcher on one node serves it.
	lifeReplicating
	// lifeRetired: the span left the schedule (split, merged or its table removed).
	lifeRetired
)

// spanState is a span's state as the status API and the schedulers count it.
type spanState uint8

const (
	stateAbsent spanState = iota
	// stateScheduling: an operator holds the span (adding or changing).
	stateScheduling
	stateReplicating
	numStates
)

var stateNames = [numStates]string{"absent", "scheduling", "replicating"}

func (s spanState) String() string { return stateNames[s] }

// state groups the lifecycle for counting; a tombstone counts nowhere (ok false).
func (l lifecycle) state() (s spanState, ok bool) {
	switch l {
	case lifeAbsent:
		return stateAbsent, true
	case lifeAdding, lifeChanging:
		return stateScheduling, true
	case lifeReplicating:
		return stateReplicating, true
	}
	return 0, false
}

// bound: the record's dispatcher is confirmed and indexed in byDispatcher.
func (l lifecycle) bound() bool { return l == lifeChanging || l == lifeReplicating }

func (l lifecycle) String() string {
	if s, ok := l.state(); ok {
		return s.String()
	}
	return "retired"
}
