package maintainer

import (
	"github.com/tidemark/tidemark/heartbeatpb"
)

// spanErrors holds the latest error of each span whose dispatcher reported one. Sparse: a
// healthy cluster has none. An entry counts only while its dispatcher still serves the span, so
// a span moved away needs no cleanup before it is looked at. The zero value is ready.
//
// The unhealthy nodes themselves live in nodeSet: like drained nodes they get no new spans.
type spanErrors struct {
	errs map[spanID]spanError
}

type spanError struct {
	node       string
	dispatcher heartbeatpb.DispatcherID
	msg        string
}

// NodeErrors is one node's erroring spans in Status: how many, and the message of one of them
// (they share the node's sink, so one message names the cause).
type NodeErrors struct {
	Spans int    `json:"spans"`
	Error string `json:"error"`
}

// observe records the error a working dispatcher of span sid reported ("" clears it).
func (e *spanErrors) observe(sid spanID, node string, st *heartbeatpb.DispatcherStatus) {
	if st.Error == "" {
		delete(e.errs, sid)
		return
	}
	mapSet(&e.errs, sid, spanError{node: node, dispatcher: st.Id, msg: st.Error})
}

// of returns the error of span sid's current dispatcher, or "".
func (e *spanErrors) of(db *spanDB, sid spanID) string {
	se, ok := e.errs[sid]
	if !ok {
		return ""
	}
	r := db.get(sid)
	current := db.nodeOf(sid) == se.node && r.dispatcher == se.dispatcher
	switch {
	case current && (r.life == lifeReplicating || r.life == lifeChanging):
		return se.msg // a span being moved is still served by the dispatcher that failed
	case r.life == lifeAdding || r.life == lifeChanging:
		return "" // an operator is under way: keep the entry, it may name its outcome
	default:
		delete(e.errs, sid) // stale: the span moved on, or left
		return ""
	}
}

// perNode counts the erroring spans per node.
func (e *spanErrors) perNode(db *spanDB) map[string]NodeErrors {
	out := map[string]NodeErrors{}
	for sid := range e.errs {
		msg := e.of(db, sid)
		if msg == "" {
			continue
		}
		node := db.nodeOf(sid)
		ne := out[node]
		ne.Spans++
		if ne.Error == "" || msg < ne.Error {
			ne.Error = msg // the least message, so the output is deterministic
		}
		out[node] = ne
	}
	return out
}
