// Package failover is the chaos suite: real `tidemark server` processes built with failpoints
// compiled in, real gRPC over loopback, a real 3-member etcd cluster (Debian's etcd when
// installed, else internal/etcdmember built from the etcd module the project uses), and real
// SIGKILL, SIGSTOP and SIGTERM.
//
// Scenarios are typed values (scenarios_test.go, splitmerge_test.go, chaos_test.go, and the
// timing scenarios of timing_test.go, which measure failover and etcd-outage recovery times from
// the maintainers' HTTP API) run by name with a logged seed. Every scenario runs the etcd
// dispatcher (cdc_test.go) on key ranges of the scenario's etcd under `tidemark load`, and after
// each the data check (cdccheck_test.go) reads the source's history back and fails unless every
// source event up to the final checkpoint is in the mirror or the file sinks (I8), with `ctl diff`
// on a mirror; cdc-mutation-skip-event proves it fails when a dispatcher drops an event. The
// checker (checker_test.go) verifies I3-I6 of DESIGN.md over the whole run from the etcd history
// of the checkpoint and status keys and samples of the maintainers' operators, and on the
// simulated dispatcher (full-disk-on-node and the -sim copies) I1/I2 from every node's sink records. `go test ./...` runs the representative set
// (ci: true); `make failover-test`, -failover.all or TIDEMARK_FAILOVER=all run every scenario,
// -failover.runs repeats them and -failover.duration makes random-chaos a long run.
// docs/failpoints.md describes the failpoints and the suite.
package failover
