// Package bootstrap rebuilds a changefeed's schedule after a maintainer takes over.
//
// In: the changefeed config, every live node's MaintainerBootstrapResponse (its dispatchers,
// their states and checkpoints, its journal of in-flight requests) and the persisted changefeed
// checkpoint. Out: a Plan: spans that keep replicating where they are, spans that are absent and
// the ts each resumes from, dispatchers the maintainer must remove (Conflicts) and records it
// could not resolve yet (Unresolved), each listed explicitly, never dropped.
//
// Restore is a pure function: the same input gives the same plan, byte for byte.
package bootstrap
