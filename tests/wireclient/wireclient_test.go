package wireclient

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
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
	c.checkUnharmed(t, nil)
}
