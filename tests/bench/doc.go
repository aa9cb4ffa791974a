// Command bench measures the whole system: it starts an embedded etcd and real `tidemark server`
// processes, runs each scenario at every requested number of spans, and prints one table (and
// writes JSON) with the ratios between sizes, so that growth is visible.
//
// Scenarios, each on a fresh cluster per size:
//   - cold start: `ctl changefeed create` to every span replicating, as the maintainer publishes;
//   - steady-state maintainer ingress: bytes per span per second the maintainer's node receives
//     (tidemark_messaging_received_bytes_total) over a window with nothing scheduled;
//   - RSS: the maintainer's node per span it schedules, a worker per dispatcher it runs;
//   - moves: `ctl drain` of a worker, spans moved per second until it holds none;
//   - failover: kill -9 of the maintainer to every span replicating under the new epoch, the
//     new maintainer's bootstrap (elected to plan applied) and its restore (last answer taken
//     off the inbox to plan applied), from its metrics.
//
// The data plane (-scenarios cdc) runs on its own cluster with a source and a target etcd: the
// same load (-cdc-events puts over -cdc-keys keys in -cdc-ranges key ranges, one table each,
// -cdc-txn puts per source revision) is replicated by an etcd-dispatcher changefeed into the
// file sink, by another into an etcd mirror, and by `etcdctl make-mirror`, one after the other
// on their own prefixes; each rate runs from the load's first write to the changefeed
// checkpoint covering its last revision (make-mirror: the target holding that revision's
// value), and every sink is then checked event by event against the source's history (and the
// mirror by ctl diff). Then the mirror's lag, write to the source until the mirror's watch
// shows it, at a steady -lag-rate, and through a kill -9 of a worker until no event arrives
// 1 s late any more. To see where the time goes: -cpuprofile profiles this process (it hosts
// the source and target etcds), and BENCH_PPROF=1 starts the servers with --enable-pprof.
//
// The move pause (-scenarios moves) runs, for break-before-make and then make-before-break, a
// fresh cluster replicating -moves-spans source ranges (one span and one watch each) into file
// sinks under a steady load, and moves -moves-count spans by admin requests, -moves-batch at a
// time. A batch starts once every watch of the source is synced and every span of the batch
// wrote a hot event (one every 50 ms, then one every -moves-hot from shortly before the moves
// until shortly after they are done); the pause of a move is its origin's last sink write
// to its destination's first, read from the records' write times, and the same gap measured on
// as many unmoved spans under the same fast hot load is printed beside it as the noise floor. Then
// the worker with the most spans is drained and the lag measured through it. Moves that cannot
// be measured are named and fail the run (exit 1), never turned into a figure.
//
// The etcd dispatcher at scale (-scenarios cdcscale) repeats cold start and failover with
// the change-data dispatcher: an etcd-dispatcher changefeed of -cdc-scale-tables numbered
// source tables (--source-table-prefix, one span and one source watch each) into the file
// sink. After the cold start one key is put into every table and the run waits for the
// checkpoint to cover it; then the maintainer is killed, and once every span replicates under
// the new epoch another key goes into every table; every event of both rounds must then be in
// some node's sink file (the killed node's included), or the run fails.
//
// Figures are measurements of one run on this machine, never asserted against targets: the
// targets live in the issue and the closing note compares. `make bench` runs it at 10,000,
// 100,000 and 1,000,000 spans; `go run ./tests/bench -help` lists the flags.
package main
