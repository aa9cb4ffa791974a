package main

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// lagLimit is the lag the targets are stated against.
const lagLimit = time.Second

// lagPhase writes to the mirror changefeed's keys at a steady cc.lagRate (one put per
// revision) and records the lag of every event as the mirror shows it: p50 and p99 over
// cc.lagWindow; then it kills a worker (a node holding spans that is not the maintainer) with
// the load going on, and measures how long until no event arrives 1 s late any more. Once the
// load stops, `ctl diff` must find the mirror equal to the source.
func (c *cluster) lagPhase(ctx context.Context, rc runConfig, cc cdcConfig, src, dst *clientv3.Client, ks keyspace, r *cdcResult) error {
	if cc.lagRate <= 0 || cc.lagWindow <= 0 {
		return nil
	}
	w := watchLag(dst, tmPrefix)
	stop := make(chan struct{})
	type done struct {
		lr  loadResult
		err error
	}
	loaded := make(chan done, 1)
	go func() {
		lr, err := load(ctx, src, loadSpec{ks: ks, events: math.MaxInt32, perTxn: 1, writers: cc.writers, rate: cc.lagRate, stop: stop})
		loaded <- done{lr, err}
	}()
	stopLoad := func() (loadResult, error) {
		close(stop)
		d := <-loaded
		return d.lr, d.err
	}
	t0 := time.Now()
	time.Sleep(cc.lagWindow)
	steady := since(w.snapshot(), t0.Add(cc.lagWindow/10)) // the first tenth warms up
	r.LagP50, r.LagP99 = percentile(steady, 0.5), percentile(steady, 0.99)
	rc.logf("lag at %.0f events/s: p50 %.3fs p99 %.3fs over %d events", cc.lagRate, r.LagP50, r.LagP99, len(steady))
	if len(steady) == 0 {
		_, _ = stopLoad()
		w.stop()
		return fmt.Errorf("no event reached the mirror in %v at %.0f events/s", cc.lagWindow, cc.lagRate)
	}
	if !cc.kill {
		lr, err := stopLoad()
		w.stop()
		if err != nil {
			return err
		}
		return c.diffAt(rc, lr.lastRev)
	}

	victim, err := c.worker(cfMirror)
	if err != nil {
		_, _ = stopLoad()
		w.stop()
		return err
	}
	killed := time.Now()
	c.kill(victim)
	rc.logf("lag: killed worker %s", victim)
	time.Sleep(rc.ttl + 10*time.Second)
	lr, err := stopLoad()
	time.Sleep(time.Second)
	all := w.stop()
	if err != nil {
		return err
	}
	if rec, ok := recovery(all, killed, lagLimit, 2*time.Second); ok {
		r.KillRecovery = rec.Seconds()
		rc.logf("lag: under %v again %.2fs after the kill of %s", lagLimit, rec.Seconds(), victim)
	} else {
		return fmt.Errorf("lag still at %v or more %v after the kill of %s", lagLimit, rc.ttl+10*time.Second, victim)
	}
	return c.diffAt(rc, lr.lastRev)
}

// diffAt waits for the mirror changefeed's checkpoint to reach rev and runs `ctl diff`.
func (c *cluster) diffAt(rc runConfig, rev int64) error {
	if err := c.waitCheckpoint(cfMirror, rev, rc.timeout); err != nil {
		return err
	}
	out, err := c.ctl(rc.timeout, "diff", cfMirror)
	if err != nil || !strings.Contains(out, "0 differing keys") {
		return fmt.Errorf("after the lag load: ctl diff: %v %s", err, strings.TrimSpace(out))
	}
	return nil
}

// worker names a node that holds spans of cf and is not its maintainer.
func (c *cluster) worker(cf string) (string, error) {
	st, ok := c.status(cf)
	if !ok {
		return "", fmt.Errorf("no status of %s", cf)
	}
	ids := make([]string, 0, len(st.NodeSpans))
	for id, n := range st.NodeSpans {
		if id != st.Maintainer && n > 0 && c.nodes[id] != nil {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return "", fmt.Errorf("no worker of %s holds spans: %v (maintainer %s)", cf, st.NodeSpans, st.Maintainer)
	}
	sort.Strings(ids)
	return ids[0], nil
}

func (w *lagWatcher) snapshot() []lagSample {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]lagSample(nil), w.samples...)
}

// since keeps the samples that arrived after t.
func since(samples []lagSample, t time.Time) []lagSample {
	var out []lagSample
	for _, s := range samples {
		if s.arrived.After(t) {
			out = append(out, s)
		}
	}
	return out
}
