// Package etcdcdc is the etcd change-data dispatcher: each dispatcher watches its span's key
// range of a source etcd and writes every put and delete to a sink, either JSON-lines files
// (FileSink) or a mirror in a target etcd (MirrorSink).
//
// # Tables, spans and keys
//
// A changefeed's tables are source key ranges (etcdutil.SourceConfig): table i+1 is the i-th
// range, or the one prefix. The span key t<id>+r stands for the source key strip+r, where strip
// is the source prefix (or the common prefix of an explicit range's bounds, which every key of
// the range starts with). The map keeps order, so a span [a, b) of table id covers the source
// keys [src(a), src(b)) clipped to the table's range, and the spans of a table cover its range
// exactly once. A span may cover no source key at all; it still advances.
//
// # Checkpoints are source revisions
//
// A dispatcher created with start revision S watches its range from S+1 (never below: the
// start revision is the only lower bound after any reset). Watch responses hold whole
// revisions, so once the events of a response are in the sink the checkpoint is the last of
// their revisions. An idle span advances by progress notifications (the factory asks for them
// with RequestProgress), but etcd before the fix of its issue 15220 (Debian's 3.4.23) may send
// one at the store's revision before events at or below it, so a notification moves the
// checkpoint only once the watch is caught up to its created revision and a later notification
// confirms it (watch.go says the rule and what it cannot see); it then becomes the checkpoint
// once what came before it is in the sink. Because the client resumes a broken stream above
// such a notification, skipping what it overtook, the factory asks for progress only when
// every source endpoint reports a fixed version; otherwise idle spans advance by reading their
// ranges (progressmode.go). Poll reports only what a Write has already made durable, so
// the factory's Flush has nothing left to write. Stop waits for the write in flight and any
// unresolved outcome, and returns the checkpoint then: nothing above it is written afterwards.
//
// A dispatcher is one goroutine of its own (besides the client's per watch): it claims the
// span, then reads the watch and writes what it read, gathering what the client buffered
// during a write into the next one (gather.go). A node holds tens of thousands of dispatchers,
// and after a failover makes them anew: each goroutine more is a stack to allocate and scan.
//
// A start revision compacted away on the source is a permanent error of the span (Err), shown
// in its status with what to do; no event is skipped. An unreachable source or sink is an
// error that clears by itself: the watch and the writes retry with backoff.
//
// # Fencing at the sink
//
// A mirror writes each batch in one transaction that also rewrites the span's fence key under
// /tidemark/<cluster>/mirror/<changefeed>/fence/ in the target and only commits when that key
// still has the mod revision this dispatcher last left on it. A new dispatcher claims its span
// first: it replaces every fence key of an overlapping span whose owner has a lower dispatcher
// ID (IDs grow with the maintainer epoch and its counter), so a deposed dispatcher's late write
// fails in the target itself, and it refuses to start if a newer owner already holds a part.
// Events are applied in revision order per key and every op is idempotent, so the replay a new
// owner does from its start revision leaves the mirror equal to the source.
package etcdcdc
