package dispatchermanager

import (
	"errors"
	"testing"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// erringDispatcher is a fakeDispatcher that reports an error of its own.
type erringDispatcher struct {
	fakeDispatcher
	err error
}

func (d *erringDispatcher) Err() error { return d.err }

// A dispatcher's own error (dispatcher.ErrorReporter) reaches its working status, beside the
// sink's, marks the status changed when it appears or clears, and is never on a stopped one.
func TestDispatcherOwnErrorInStatus(t *testing.T) {
	d := &erringDispatcher{err: errors.New("start revision compacted")}
	e := &dispatcherEntry{d: d, state: heartbeatpb.StateWorking}
	tbl := &dispatcherTable{}
	if !tbl.pollErr(e) || tbl.status(e, "").Error != "start revision compacted" {
		t.Fatalf("own error: not news, or status %q", tbl.status(e, "").Error)
	}
	if got := tbl.status(e, "disk full").Error; got != "start revision compacted; sink: disk full" {
		t.Fatalf("both errors: %q", got)
	}
	if tbl.pollErr(e) {
		t.Fatal("an unchanged error marked the status changed")
	}
	d.err = nil
	if !tbl.pollErr(e) || tbl.status(e, "").Error != "" {
		t.Fatalf("cleared error: not news, or status %q", tbl.status(e, "").Error)
	}
	d.err = errors.New("x")
	tbl.pollErr(e)
	e.state = heartbeatpb.StateStopped
	if got := tbl.status(e, "").Error; got != "" {
		t.Fatalf("stopped dispatcher carries %q", got)
	}
}
