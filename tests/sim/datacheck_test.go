package sim

import (
	"errors"
	"strings"
	"testing"

	"github.com/tidemark/tidemark/dispatcher/etcdcdc"
	"github.com/tidemark/tidemark/heartbeatpb"
)

func seedConfig(s int64) Config {
	return Config{Seed: s, Faults: true, Redo: s%3 == 0, SplitMerge: s%2 == 0}
}

// TestDataCheckCatchesSkippedEvent: with the deliberate bug on (every dispatcher created above
// the changefeed start loses the first event it reads, while its ranges and checkpoints stay
// right, so the range checks cannot see it), every seed's run must fail on the data check.
func TestDataCheckCatchesSkippedEvent(t *testing.T) {
	for s := int64(1); s <= 4; s++ { // plain, split-merge, redo, split-merge
		c := New(seedConfig(s))
		c.src.skipOnRestart = true
		err := c.Run()
		var v *Violation
		if !errors.As(err, &v) || !strings.HasPrefix(v.Invariant, "I8") {
			t.Errorf("seed %d: a dispatcher skipping an event on restart passed: %v", s, err)
		}
	}
}

// TestDataCheckCatchesTampering runs a clean seed, then breaks its sinks one way at a time:
// each must fail the data check, and the untouched sinks must pass it.
func TestDataCheckCatchesTampering(t *testing.T) {
	c := New(seedConfig(4)) // split and merge on, with faults
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	want := c.src.want(c.track, heartbeatpb.ModeDefault)
	if len(want) < 100 {
		t.Fatalf("only %d source events to check: the model wrote too little to test anything", len(want))
	}
	recs := c.src.records(c.track.sinks, heartbeatpb.ModeDefault)
	check := func(recs []etcdcdc.Record) error { return c.check.checkModeData(heartbeatpb.ModeDefault, recs) }
	if err := check(recs); err != nil {
		t.Fatalf("untouched sinks: %v", err)
	}
	victim := want[len(want)/2]
	// the newest event of some key, which no durable checkpoint reaches (the run wrote on past
	// the last flush): a sink holding it emitted above its final checkpoint
	var beyond etcdcdc.Record
	for _, table := range c.src.tables {
		log := c.src.log[table]
		if n := len(log); n > 0 {
			e := log[n-1]
			point := heartbeatpb.TableSpan{TableId: table, StartKey: []byte(e.key), EndKey: []byte(e.key + "\x00")}
			if e.rev <= c.track.reached(point, heartbeatpb.ModeDefault) {
				continue
			}
			beyond = etcdcdc.Record{Key: e.key, Value: e.value, Op: "put", ModRevision: int64(e.rev), Dispatcher: "x"}
			if e.del {
				beyond.Op = "delete"
			}
			break
		}
	}
	if beyond.Dispatcher == "" {
		t.Fatal("no source event above the final checkpoints")
	}
	cases := map[string]func(recs []etcdcdc.Record) []etcdcdc.Record{
		"one event lost": func(recs []etcdcdc.Record) []etcdcdc.Record {
			var kept []etcdcdc.Record
			for _, r := range recs {
				if r.Key != string(victim.Key) || r.ModRevision != victim.Revision {
					kept = append(kept, r)
				}
			}
			return kept
		},
		"an invented event": func(recs []etcdcdc.Record) []etcdcdc.Record {
			r := recs[0]
			r.Op, r.Value = "put", r.Value+"!" // a value the source never wrote at that revision
			return append(recs, r)
		},
		"an event above the final checkpoint": func(recs []etcdcdc.Record) []etcdcdc.Record {
			return append(recs, beyond)
		},
		"one dispatcher's writes out of revision order": func(recs []etcdcdc.Record) []etcdcdc.Record {
			for i := range recs {
				for j := i + 1; j < len(recs); j++ {
					if recs[i].Key == recs[j].Key && recs[i].Dispatcher == recs[j].Dispatcher {
						recs[i], recs[j] = recs[j], recs[i]
						return recs
					}
				}
			}
			t.Fatal("no dispatcher wrote one key twice")
			return nil
		},
	}
	for name, tamper := range cases {
		err := check(tamper(append([]etcdcdc.Record(nil), recs...)))
		if err == nil || !strings.Contains(err.Error(), "I8") {
			t.Errorf("%s: data check passed: %v", name, err)
		}
	}
	if err := check(recs); err != nil {
		t.Fatalf("the untouched records after the tampering: %v", err)
	}
}
