// Package operator owns tidemark's schedule changes: the Operator interface, one pure state
// machine per kind (Add, Remove, Move) and the Controller that keeps every in-flight operator.
//
// In: a start time, the DispatcherStatus reports nodes send, request rejections, node and table
// removals and ticks, each with `now`. Out: Outgoing requests (a node plus one
// ScheduleDispatcherRequest) to send or resend, and, once an operator is finished, a Result that
// says which spans to bind to which dispatcher and which to mark absent with the ts they resume
// from. Operators never touch the maintainer's span DB; the maintainer applies Results.
//
// Every phase finishes when a *reported* status satisfies it ("done when observed"), never on an
// acknowledgement, so resending a request is always safe and a restarted maintainer can rebuild
// an operator by feeding it the statuses nodes report.
//
// No goroutines, sockets, clock or global randomness in here.
package operator
