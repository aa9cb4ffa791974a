package failpoints

import (
	"sort"
	"strings"
)

// Module is the import path prefix pingcap/failpoint puts in front of a marker's name: a marker
// "x" in package server is enabled as "github.com/tidemark/tidemark/server/x".
const Module = "github.com/tidemark/tidemark"

// Failpoint is one named marker. Several markers may share a name when they mark the same step
// in different code paths (the dispatcher manager updates its journal in four places).
type Failpoint struct {
	// Pkg is the marker's package directory relative to the module root, e.g. "server".
	Pkg string
	// Name is the name the marker passes to failpoint.Inject.
	Name string
	// Purpose says which step it marks and what enabling it simulates.
	Purpose string
	// Value describes what a return(...) value means, "" when only sleep/pause/panic make sense.
	Value string
}

// Path is the name to enable the failpoint with, in GO_FAILPOINTS or over HTTP.
func (f Failpoint) Path() string { return Module + "/" + f.Pkg + "/" + f.Name }

// Operator-phase failpoints: one per (kind, phase) of the five operators, evaluated by the
// maintainer's runner right after it handed that phase's request to the transport.
const (
	AddSent        = "operator-add-sent"
	RemoveSent     = "operator-remove-sent"
	MoveRemoveSent = "operator-move-remove-sent"
	MoveAddSent    = "operator-move-add-sent"
	// MovePrepareSent: a make-before-break Move's prepare of the destination was sent.
	MovePrepareSent = "operator-move-prepare-sent"
	SplitRemoveSent = "operator-split-remove-sent"
	SplitAddSent    = "operator-split-add-sent"
	MergeSent       = "operator-merge-sent"
)

// Other failpoint names the tests refer to.
const (
	BootstrapSent           = "bootstrap-request-sent"
	BeforeRestore           = "maintainer-before-restore"
	AfterRestore            = "maintainer-after-restore"
	BeforeCheckpointPersist = "checkpoint-before-persist"
	AfterCheckpointPersist  = "checkpoint-after-persist"
	DMBeforeJournalUpdate   = "dm-before-journal-update"
	DMAfterJournalUpdate    = "dm-after-journal-update"
	SinkENOSPC              = "sink-enospc"
	FileSinkENOSPC          = "file-sink-enospc"
	SkipFirstEvent          = "skip-first-event"
	DispatchersCloseLate    = "dispatchers-close-late"
	TransportDrop           = "transport-drop"
	TransportDelay          = "transport-delay"
	TransportDuplicate      = "transport-duplicate"
	Probe                   = "probe"
)

// HoldValue is the return value the server-side markers understand as "log that the marker was
// reached, then block this loop until the failpoint is disabled". pingcap's own pause blocks
// before the marker's body runs, so a test could not tell when the step was reached.
// HoldValue + "-not:NODE" holds only at steps sent to a node other than NODE.
const HoldValue = "hold"

const holdDoc = `return("hold"): log "failpoint reached", then block the maintainer loop until disabled; return("hold-not:NODE"): the same for steps sent to nodes other than NODE`

// All returns the registry, sorted by package and name. It builds a fresh slice on every call so
// that no caller can change what another sees.
func All() []Failpoint {
	fps := []Failpoint{
		{"server", AddSent, "an Add's create request was sent; crash here = the add is in flight on the node only", holdDoc},
		{"server", RemoveSent, "a Remove's request was sent", holdDoc},
		{"server", MoveRemoveSent, "a Move's first phase (remove on the origin) was sent", holdDoc},
		{"server", MoveAddSent, "a Move's second phase (create on the destination) was sent", holdDoc},
		{"server", MovePrepareSent, "a make-before-break Move's prepare of the destination was sent (its commit is operator-move-add-sent)", holdDoc},
		{"server", SplitRemoveSent, "a Split's first phase (remove the parent) was sent", holdDoc},
		{"server", SplitAddSent, "a Split's second phase (create the children) was sent", holdDoc},
		{"server", MergeSent, "a merge request was sent to the node holding the spans", holdDoc},
		{"server", BootstrapSent, "a bootstrap request was sent; crash here = a maintainer that never restored", holdDoc},
		{"server", BeforeCheckpointPersist, "the changefeed checkpoint is about to be written (CAS) to etcd", holdDoc},
		{"server", AfterCheckpointPersist, "the changefeed checkpoint was written to etcd, nothing sent yet", holdDoc},
		{"server", DispatchersCloseLate, "a dispatcher manager loop stopped (session ended, node stopping); its dispatchers are not closed yet", "sleep(MS): they run on that long"},
		{"maintainer", BeforeRestore, "every bootstrap answer is in, nothing restored yet", ""},
		{"maintainer", AfterRestore, "the restore plan is applied, its first requests not yet sent", ""},
		{"dispatcher", SinkENOSPC, "a file sink's write fails with ENOSPC (a full disk) before any byte is written; the sink keeps the records and retries with backoff",
			`return(true): fail every write; return("torn"): write half of the pending bytes first (a torn line the sink must cut off)`},
		{"dispatcher/etcdcdc", FileSinkENOSPC, "an etcd dispatcher's file sink write fails with ENOSPC (a full disk); the sink cuts the failed write back to its last whole line, the dispatcher holds its checkpoint and retries with backoff",
			`return(true): fail every write; return("torn"): half of the write's bytes land first (a torn line the sink must cut off)`},
		{"dispatcher/etcdcdc", SkipFirstEvent, "mutation, not a fault: an etcd dispatcher created while it is enabled drops the first event its watch delivers and still moves its checkpoint past it (an event lost on restart); the chaos suite's data check must fail", ""},
		{"dispatchermanager", DMBeforeJournalUpdate, "a request was accepted, the in-flight (journal) map not yet updated", ""},
		{"dispatchermanager", DMAfterJournalUpdate, "the in-flight (journal) map was updated, the effect not yet reported", ""},
		{"messaging", TransportDrop, "drop batches sent to a peer", `return("<peer>") drops toward that peer, return(true) toward all; 50%return(true) drops half`},
		{"messaging", TransportDelay, "delay batches sent to a peer", `return(<ms>) delays every batch; return("<peer>:<ms>") one peer`},
		{"messaging", TransportDuplicate, "send every batch to a peer twice", `return("<peer>") or return(true)`},
		{"failpoints", Probe, "lets GET /debug/failpoints tell whether markers are compiled into the binary", ""},
	}
	sort.Slice(fps, func(i, j int) bool {
		if fps[i].Pkg != fps[j].Pkg {
			return fps[i].Pkg < fps[j].Pkg
		}
		return fps[i].Name < fps[j].Name
	})
	return fps
}

// Lookup finds a failpoint by its full path or, when the short name is unique, by Name.
func Lookup(name string) (Failpoint, bool) {
	var found []Failpoint
	for _, f := range All() {
		if f.Path() == name {
			return f, true
		}
		if f.Name == name || f.Pkg+"/"+f.Name == name {
			found = append(found, f)
		}
	}
	if len(found) == 1 {
		return found[0], true
	}
	return Failpoint{}, false
}

// MustPath is Lookup(name).Path() for names the caller knows are registered (the constants
// above); an unknown name gives "" so that enabling it fails loudly rather than panicking.
func MustPath(name string) string {
	f, ok := Lookup(strings.TrimSpace(name))
	if !ok {
		return ""
	}
	return f.Path()
}
