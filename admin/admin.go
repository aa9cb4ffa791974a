package admin

// Kind is what an admin request asks. Its value is what the etcd records and the HTTP API carry.
type Kind string

const (
	// Move moves one span (every mode of it) to a node.
	Move Kind = "move"
	// Split splits one span into pieces.
	Split Kind = "split"
	// Merge merges adjacent spans of one table into one.
	Merge Kind = "merge"
	// Drain moves every span off a node and keeps new ones off it.
	Drain Kind = "drain"
	// Resign asks the maintainer to hand its role to another node; the server handles it, the
	// core never sees it.
	Resign Kind = "resign"
)

func (k Kind) String() string { return string(k) }

// Outcome says how an admin request ended.
type Outcome string

const (
	// Done: the cluster is as asked (or already was).
	Done Outcome = "done"
	// Refused: checked and not executed; nothing changed.
	Refused Outcome = "refused"
	// Failed: started, but the cluster did not end up as asked (e.g. a node was lost mid-move).
	Failed Outcome = "failed"
)

func (o Outcome) String() string { return string(o) }

// Reason names the fact behind a refusal or failure, so that a client can add what to do
// about it in its own terms (the CLI names its commands); the message states the fact alone.
// Empty when there is nothing a client could add.
type Reason string

const (
	// NodeNotAlive: the named node is not in the registry.
	NodeNotAlive Reason = "node-not-alive"
	// NodeDrained: the named node is drained, so it takes no spans.
	NodeDrained Reason = "node-drained"
	// NodeUnhealthy: the named node is marked unhealthy (its sink fails), so it takes no spans.
	NodeUnhealthy Reason = "node-unhealthy"
	// SpanBusy: an operator holds the named span.
	SpanBusy Reason = "span-busy"
	// SpanRenamed: the named span's table is split into other spans; none matches the name.
	SpanRenamed Reason = "span-renamed"
	// NotAdjacent: the spans of a merge are not neighbours.
	NotAdjacent Reason = "not-adjacent"
	// NoOperatorSlot: a node involved is at its in-flight operator limit.
	NoOperatorSlot Reason = "no-operator-slot"
)

func (r Reason) String() string { return string(r) }
