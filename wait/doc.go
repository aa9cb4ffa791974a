// Package wait holds the one context-aware sleep the server, etcdutil and the CLI share: their
// retry and poll loops wait a backoff but must stop the moment their context ends.
package wait
