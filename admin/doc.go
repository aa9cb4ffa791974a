// Package admin names what an operator's admin request asks (Kind) and how it ended (Outcome):
// the words the CLI, the etcd request and result records (etcdutil), the server and the
// maintainer core share, so no layer translates them.
//
// It holds vocabulary only: no I/O, no state.
package admin
