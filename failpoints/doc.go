// Package failpoints is tidemark's registry of failpoints and its HTTP API.
//
// Every failpoint marker (failpoint.Inject from github.com/pingcap/failpoint) in the tree has one
// entry in the table All returns, with the package it lives in and why it exists; docs/failpoints.md
// lists the same names, and a test keeps the table, the doc and the markers in step. The chaos
// tests in tests/failover pick failpoints from this table, never from string literals of their own.
//
// Markers are no-ops in a normal build. `make build-failpoint` rewrites them with failpoint-ctl
// into real checks, builds bin/tidemark-failpoint and restores the sources. In such a binary a
// failpoint is enabled per process with GO_FAILPOINTS (read by pingcap/failpoint at init) or at
// run time through Handler, mounted by the server at /debug/failpoints.
package failpoints
