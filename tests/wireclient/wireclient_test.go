package wireclient

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestForgeriesLeaveTheClusterUnharmed plays the hostile peer of issue 9 against four real
// in-process nodes on embedded etcd: forged higher epochs under the maintainer's own ID (a
// create of a span another node owns, a remove of a working dispatcher), a registered node that
// is not the maintainer, an unregistered sender, replays of an older epoch and garbage. The
// target must keep following the real maintainer at the real epoch, the attacked spans must
// keep their dispatchers, the sinks must show no double owner or gap, and the real maintainer's
// admin move must still work.
func TestForgeriesLeaveTheClusterUnharmed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and four nodes")
	}
	c := startCluster(t, func(string) *tls.Config { return nil }, PlainHTTP)
	attacks, skipped := Attacks(c.target)
	if len(skipped) > 0 {
		t.Fatalf("attacks left out: %v", skipped)
	}
	c.run(t, attacks)
	// A name above the target's cannot even open a stream to it.
	target := c.target
	if _, err := Dial(context.Background(), Config{Addr: target.Addr, ClusterID: "wire", From: "zz-above", To: target.Node}); !errors.Is(err, ErrRejected) {
		t.Fatalf("stream as a larger ID: %v, want ErrRejected", err)
	}
	replacedStreamSays(t, target, c.nodes[target.Node].logs)
	c.checkUnharmed(t, nil)
}

// replacedStreamSays: a second stream under one sender name replaces the first, and a send on
// the first then fails with ErrReplaced, which is what lets Run dial again when the real node
// owning a stolen name redials mid-attack.
func replacedStreamSays(t *testing.T, target Target, targetLogs *observer.ObservedLogs) {
	t.Helper()
	ctx := context.Background()
	cfg := Config{Addr: target.Addr, ClusterID: target.ClusterID, From: "0-twice", To: target.Node}
	first, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	// The node's end of the first stream goes away asynchronously; a send can still be buffered
	// before the client hears of it.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		err = first.Send()
		if err != nil || time.Now().After(deadline) {
			break
		}
	}
	if !errors.Is(err, ErrReplaced) {
		t.Fatalf("send on a replaced stream: %v, want ErrReplaced", err)
	}
	// A stream replaced after its last send succeeded: Close says so, as the node may have
	// dropped what it had not read (Run then sends the attack again).
	third, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := third.Send(); err != nil {
		t.Fatal(err)
	}
	ended := func() int {
		return targetLogs.FilterMessage(endedLine).FilterField(zap.String("peer", cfg.From)).Len()
	}
	fourth, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer fourth.Close()
	// Close half-closes first; were the node to read that before the fourth stream replaced
	// the third, it would end the third normally. So wait until the node has ended it: the
	// first, second and third streams each end once, on being replaced.
	for deadline := time.Now().Add(5 * time.Second); ended() < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("node never ended the third stream after the fourth replaced it")
		}
	}
	if err := third.Close(); !errors.Is(err, ErrReplaced) {
		t.Fatalf("close of a replaced stream: %v, want ErrReplaced", err)
	}
}
