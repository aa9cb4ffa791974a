package heartbeatpb

import "testing"

func TestOrderFilter(t *testing.T) {
	f := NewOrderFilter()
	env := func(from string, inc, seq uint64) *Envelope {
		return &Envelope{From: from, Incarnation: inc, Seq: seq}
	}
	steps := []struct {
		env            *Envelope
		new, restarted bool
	}{
		{env("a", 1, 1), true, false},
		{env("a", 1, 1), false, false}, // duplicate
		{env("a", 1, 3), true, false},
		{env("a", 1, 2), false, false}, // reordered behind 3
		{env("b", 1, 1), true, false},  // senders are independent
		{env("a", 2, 1), true, true},   // a restarted: its count starts again
		{env("a", 1, 9), true, true},   // any other incarnation counts as a restart
	}
	for i, s := range steps {
		if got := f.IsNew(s.env); got != s.new {
			t.Fatalf("step %d: IsNew(%v) = %v, want %v", i, s.env, got, s.new)
		}
		if !s.new {
			continue
		}
		if got := f.Accept(s.env); got != s.restarted {
			t.Fatalf("step %d: Accept(%v) restarted = %v, want %v", i, s.env, got, s.restarted)
		}
	}
	if inc, seq := f.Last("a"); inc != 1 || seq != 9 {
		t.Fatalf("Last(a) = %d/%d, want 1/9", inc, seq)
	}
}

func TestSequencer(t *testing.T) {
	s := NewSequencer()
	for want := uint64(1); want <= 3; want++ {
		if got := s.Next("a"); got != want {
			t.Fatalf("Next(a) = %d, want %d", got, want)
		}
	}
	if got := s.Next("b"); got != 1 {
		t.Fatalf("Next(b) = %d, want 1: receivers are numbered apart", got)
	}
}
