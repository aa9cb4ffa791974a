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
//   - failover: kill -9 of the maintainer to every span replicating under the new epoch, and the
//     new maintainer's bootstrap (last response to plan applied, from its metric).
//
// Figures are measurements of one run on this machine, never asserted against targets: the
// targets live in the issue and the closing note compares. `make bench` runs it at 10,000,
// 100,000 and 1,000,000 spans; `go run ./tests/bench -help` lists the flags.
package main
