// Package failover is the chaos suite: real `tidemark server` processes built with failpoints
// compiled in, real gRPC over loopback, a real 3-member etcd cluster (Debian's etcd when
// installed, else internal/etcdmember built from the etcd module the project uses), and real
// SIGKILL, SIGSTOP and SIGTERM.
//
// Scenarios are typed values (scenarios_test.go, splitmerge_test.go, chaos_test.go, and the
// timing scenarios of timing_test.go, which measure failover and etcd-outage recovery times from
// the maintainers' HTTP API) run by name with a logged seed; after each, the checker (checker_test.go) verifies I1-I6 of DESIGN.md over
// the whole run from every node's sink records, the etcd history of the checkpoint and status
// keys, and samples of the maintainers' operators. `go test ./...` runs the representative set
// (ci: true); `make failover-test`, -failover.all or TIDEMARK_FAILOVER=all run every scenario,
// -failover.runs repeats them and -failover.duration makes random-chaos a long run.
// docs/failpoints.md describes the failpoints and the suite.
package failover
