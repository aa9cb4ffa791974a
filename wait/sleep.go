package wait

import (
	"context"
	"time"
)

// Sleep waits d or until ctx ends, whichever comes first. It returns false when ctx ended, so a
// retry loop can write `if !wait.Sleep(ctx, backoff) { return }`.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
