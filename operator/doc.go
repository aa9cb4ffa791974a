// Package operator owns tidemark's schedule changes: the Operator interface, a pure state
// machine per kind (Add, Remove, Move, Split, Merge) and the Controller that keeps every
// in-flight operator.
//
// Move and Split are one machine, the handover (handover.go), built from two steps (steps.go):
// stop the source and learn its final checkpoint, then create every target from exactly that
// ts. A Move is a handover with one target on the source's span, a Split one with two or more
// targets covering it. Both follow one cancel rule, the dispatcher manager's: a create is taken
// back with a Remove of the same operator and dispatcher, which the node applies in place of
// the journaled create. A make-before-break Move (prepare.go) adds a preparing phase in front:
// the target is prepared (reading, not writing) while the source still works, and the create of
// the creating phase commits it from the source's final checkpoint.
//
// In: a start time, the DispatcherStatus reports nodes send, request rejections, node and table
// removals and ticks, each with `now`. Out: Outgoing requests (a node plus one
// ScheduleDispatcherRequest or MergeDispatcherRequest) to send or resend, and, once an operator
// is finished, a Result that says which spans to bind to which dispatcher, which to mark absent
// with the ts they resume from and which to retire (a Split's parent, a Merge's sources).
// Operators never touch the maintainer's span DB; the maintainer applies Results.
//
// Every phase finishes when a *reported* status satisfies it ("done when observed"), never on an
// acknowledgement, so resending a request is always safe and a restarted maintainer can rebuild
// an operator by feeding it the statuses nodes report. Restore does exactly that: it constructs
// the operator a journaled descriptor describes and feeds it the reported statuses and the lost
// nodes; Controller.AddRestored resumes it at the phase it reached.
//
// A phase that gets neither progress (a phase change) nor a refusal for
// ControllerConfig.PhaseTimeout is rolled back through the operator's Abort (the Aborter
// interface; see tick.go): no single operator waits forever on a node that accepted a request
// and then said nothing.
//
// No goroutines, sockets, clock or global randomness in here.
package operator
