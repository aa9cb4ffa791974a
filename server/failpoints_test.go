package server

import (
	"context"
	"testing"
	"time"

	"github.com/pingcap/failpoint"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/failpoints"
)

// TestHoldFailpoint: "hold" blocks until the failpoint is disabled, "hold-not:NODE" lets steps to
// NODE pass, and other values only log.
func TestHoldFailpoint(t *testing.T) {
	path := failpoints.MustPath(failpoints.MoveAddSent)
	if err := failpoint.Enable(path, `return("hold")`); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = failpoint.Disable(path) }()
	log := zap.NewNop()
	done := make(chan struct{})
	go func() {
		holdFailpoint(context.Background(), log, failpoints.MoveAddSent, "n2", failpoints.HoldValue)
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("hold returned while the failpoint was enabled")
	case <-time.After(100 * time.Millisecond):
	}
	if err := failpoint.Disable(path); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("hold did not return after the failpoint was disabled")
	}

	// Neither of these may block although the failpoint is enabled with a hold.
	if err := failpoint.Enable(path, `return("hold-not:n1")`); err != nil {
		t.Fatal(err)
	}
	holdFailpoint(context.Background(), log, failpoints.MoveAddSent, "n1", "hold-not:n1")
	holdFailpoint(context.Background(), log, failpoints.MoveAddSent, "n1", true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	holdFailpoint(ctx, log, failpoints.MoveAddSent, "n2", "hold-not:n1") // held, but ctx is done
}
