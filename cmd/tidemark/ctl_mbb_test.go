package main

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestEtcdMirrorMakeBeforeBreak is TestEtcdMirrorEndToEnd's run with the default moves,
// make-before-break (no flag: the check below that prepares happened also pins the default): the
// split's moves and the admin move prepare their destination (a real watch buffering from the
// prepare revision) and commit it at the origin's final revision. The mirror must end equal to
// the source with every event in it once, in order per key (CheckHistory), and the nodes must have
// committed prepared dispatchers, so the run did go make-before-break, and no dispatcher was
// deposed at the sink (I1).
func TestEtcdMirrorMakeBeforeBreak(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	c := startAcceptClusterLogged(t, zap.New(core))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	created, lastRev := replicateThroughFailovers(t, ctx, c,
		"--sink", "etcd", "--sink-etcd", c.ep, "--sink-prefix", "/dst/")
	src, dst := checkMirror(t, ctx, c, created, lastRev)
	prepared := logs.FilterMessage("dispatcher prepared").Len()
	committed := logs.FilterMessage("prepared dispatcher committed").Len()
	// The maintainer's account of it: the Moves that committed a prepared target say so when
	// they finish (and count in tidemark_operators_made_before_break_total).
	madeBeforeBreak := logs.FilterMessage("operator finished").FilterField(zap.Bool("made_before_break", true)).Len()
	t.Logf("%d source events, %d mirror events; %d prepares, %d commit log lines, %d operators made before break",
		len(src), len(dst), prepared, committed, madeBeforeBreak)
	if prepared == 0 || committed == 0 || madeBeforeBreak == 0 {
		t.Fatalf("no make-before-break move happened: %d prepares, %d commits, %d operators finished made-before-break",
			prepared, committed, madeBeforeBreak)
	}
	// I1 on real parts: a destination committed only after its origin stopped never finds the
	// origin still writing, so the mirror's fence never has to depose anyone. A commit before
	// the origin's Stopped report shows here (the data check above cannot see it: the fence
	// refuses the origin's late writes and the destination replays them).
	if n := logs.FilterMessage("deposed at the sink; writing stops").Len(); n > 0 {
		t.Fatalf("I1: %d dispatchers were deposed at the sink by a successor that claimed their span while they wrote", n)
	}
	// No node crashed, so no span ever restarted below what it had written: every handover
	// started at exactly the final revision, and the mirror holds each source event once. A
	// destination committed from an earlier revision while its origin still wrote replays.
	if len(dst) != len(src) {
		t.Fatalf("I1: the mirror holds %d events for %d source events: a destination started below what its origin wrote",
			len(dst), len(src))
	}
}
