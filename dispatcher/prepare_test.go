package dispatcher

import (
	"testing"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// The simulated factory prepares lazily: nothing reaches the sink until Commit, which starts the
// dispatcher from the final ts given (not the prepare's start ts), once.
func TestSimPrepareCommit(t *testing.T) {
	sink := NewMemSink()
	f, err := NewSimFactory(SimFactoryConfig{Node: "n1", Changefeed: "cf1", Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	var pr Preparer = f
	p, err := pr.Prepare(heartbeatpb.DispatcherConfig{Id: heartbeatpb.DispatcherID{Hi: 1, Lo: 2}, Span: span.TableSpan(3),
		StartTs: 10}, heartbeatpb.TableConfig{TableId: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(sink.Records()) != 0 {
		t.Fatal("a prepared dispatcher wrote")
	}
	d, err := p.Commit(25)
	if err != nil {
		t.Fatal(err)
	}
	if cp, _ := d.Poll(t0); cp < 25 || len(sink.Records()) == 0 {
		t.Fatalf("committed at 25, checkpoint %d", cp)
	}
	for _, r := range sink.Records() {
		if r.From < 25 {
			t.Fatalf("record from %d, below the final 25: %+v", r.From, r)
		}
	}
	if _, err := p.Commit(25); err == nil {
		t.Fatal("committed twice")
	}
}
