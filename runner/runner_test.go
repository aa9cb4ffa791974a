package runner

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// recorder plays core, store and transport at once and logs every call in order.
type recorder struct {
	log        []string
	written    Written
	persistErr error
	evictErr   map[string]error
	sendErrAt  int // index of the send that fails; -1: none
	sent       int
}

func (r *recorder) CheckpointPersisted(cp uint64) {
	r.log = append(r.log, fmt.Sprintf("persisted %d", cp))
}
func (r *recorder) CheckpointNotPersisted() { r.log = append(r.log, "not-persisted") }
func (r *recorder) Advance()                { r.log = append(r.log, "advance") }

func (r *recorder) PersistCheckpoint(cp uint64) (Written, error) {
	r.log = append(r.log, "persist")
	return r.written, r.persistErr
}

func (r *recorder) Evict(node string) error {
	r.log = append(r.log, "evict "+node)
	return r.evictErr[node]
}

func (r *recorder) Send(env *heartbeatpb.Envelope) error {
	if r.sent == r.sendErrAt {
		return errors.New("crashed")
	}
	r.sent++
	r.log = append(r.log, "send "+env.To)
	return nil
}

func ready(cp uint64) Ready {
	return Ready{Checkpoint: cp, Evict: []string{"e1", "e2"},
		Messages: []*heartbeatpb.Envelope{{To: "n1"}, {To: "n2"}}}
}

func TestMaintainerOrder(t *testing.T) {
	stop := errors.New("stop")
	cases := []struct {
		name string
		rd   Ready
		rec  recorder
		err  error
		want []string
	}{
		{"all", ready(7), recorder{written: Persisted, sendErrAt: -1}, nil,
			[]string{"persist", "evict e1", "evict e2", "send n1", "send n2", "advance", "persisted 7"}},
		{"no checkpoint", ready(0), recorder{sendErrAt: -1}, nil,
			[]string{"evict e1", "evict e2", "send n1", "send n2", "advance"}},
		{"write failed", ready(7), recorder{written: NotPersisted, sendErrAt: -1}, nil,
			[]string{"persist", "evict e1", "evict e2", "send n1", "send n2", "advance", "not-persisted"}},
		{"written off the loop", ready(7), recorder{written: Pending, sendErrAt: -1}, nil,
			[]string{"persist", "evict e1", "evict e2", "send n1", "send n2", "advance"}},
		{"term over at persist", ready(7), recorder{persistErr: stop, sendErrAt: -1}, stop, []string{"persist"}},
		{"term over at evict", ready(7), recorder{written: Persisted, evictErr: map[string]error{"e1": stop}, sendErrAt: -1}, stop,
			[]string{"persist", "evict e1"}},
		{"crash between sends", ready(7), recorder{written: Persisted, sendErrAt: 1}, nil,
			[]string{"persist", "evict e1", "evict e2", "send n1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.rec
			err := Maintainer(c.rd, &r, &r, &r)
			if c.name == "crash between sends" {
				if err == nil {
					t.Fatal("a failed send was not returned")
				}
			} else if !errors.Is(err, c.err) {
				t.Fatalf("err %v, want %v", err, c.err)
			}
			if !reflect.DeepEqual(r.log, c.want) {
				t.Fatalf("calls %q, want %q", r.log, c.want)
			}
		})
	}
}

func TestManager(t *testing.T) {
	r := recorder{sendErrAt: -1}
	msgs := []*heartbeatpb.Envelope{{To: "m"}, {To: "m2"}}
	if err := Manager(msgs, &r, &r); err != nil {
		t.Fatal(err)
	}
	if want := []string{"send m", "send m2", "advance"}; !reflect.DeepEqual(r.log, want) {
		t.Fatalf("calls %q, want %q", r.log, want)
	}
	r = recorder{sendErrAt: 0}
	if err := Manager(msgs, &r, &r); err == nil || len(r.log) != 0 {
		t.Fatalf("a failed send: err %v, calls %q", err, r.log)
	}
	var got []string
	if err := Manager(msgs, &r, SendFunc(func(e *heartbeatpb.Envelope) { got = append(got, e.To) })); err != nil ||
		!reflect.DeepEqual(got, []string{"m", "m2"}) {
		t.Fatalf("SendFunc: %v %q", err, got)
	}
}
