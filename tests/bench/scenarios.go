package main

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/tidemark/tidemark/etcdutil"
)

// result is every figure of one size's run; a figure that could not be measured is NaN and its
// error is kept in Errors.
type result struct {
	Spans int `json:"spans"`
	// ColdStartSeconds: ctl changefeed create to every span replicating.
	ColdStartSeconds float64 `json:"cold_start_s"`
	// IngressBytesPerSpanSecond: what the maintainer's node received per span per second at rest.
	IngressBytesPerSpanSecond float64 `json:"ingress_bytes_per_span_s"`
	// MaintainerRSSPerSpan: the maintainer's node RSS per span it schedules (it also runs
	// dispatchers of its own, so this is an upper bound).
	MaintainerRSSPerSpan float64 `json:"maintainer_rss_bytes_per_span"`
	// WorkerRSSPerDispatcher: the largest worker RSS per dispatcher it runs.
	WorkerRSSPerDispatcher float64 `json:"worker_rss_bytes_per_dispatcher"`
	// MovesPerSecond: spans moved off a drained worker per second.
	MovesPerSecond float64 `json:"moves_per_s"`
	// FailoverSeconds: kill -9 of the maintainer to every span replicating under the new epoch.
	FailoverSeconds float64 `json:"failover_s"`
	// BootstrapSeconds: the new maintainer from elected to bootstrapped (every node answered and
	// the restored plan applied), from tidemark_maintainer_bootstrap_duration_seconds.
	BootstrapSeconds float64 `json:"bootstrap_s"`
	// RestoreSeconds: the part of it from taking the last answer off the inbox to the plan
	// applied (#12's "restore itself"), from tidemark_maintainer_restore_duration_seconds.
	RestoreSeconds float64 `json:"restore_s"`
	// CtlStatusSeconds and CtlSpansSeconds: the wall time of one `tidemark ctl status` and one
	// `tidemark ctl spans --limit 1000` process at rest, start to exit, as an operator types them
	// (etcd reads and the maintainer's HTTP API).
	CtlStatusSeconds float64  `json:"ctl_status_s"`
	CtlSpansSeconds  float64  `json:"ctl_spans_s"`
	Errors           []string `json:"errors,omitempty"`
}

type runConfig struct {
	bin           string
	dir           string
	nodes         int
	ttl           time.Duration
	ingressWindow time.Duration
	timeout       time.Duration // per phase
	logLevel      string        // the servers' --log-level
	pprof         bool          // the servers run with --enable-pprof
	logf          func(string, ...any)
}

const changefeed = "bench"

// runSize measures every scenario at spans spans on a fresh cluster.
func runSize(rc runConfig, spans int) result {
	r := result{Spans: spans, ColdStartSeconds: math.NaN(), IngressBytesPerSpanSecond: math.NaN(),
		MaintainerRSSPerSpan: math.NaN(), WorkerRSSPerDispatcher: math.NaN(), MovesPerSecond: math.NaN(),
		FailoverSeconds: math.NaN(), BootstrapSeconds: math.NaN(), RestoreSeconds: math.NaN(), CtlStatusSeconds: math.NaN(), CtlSpansSeconds: math.NaN()}
	fail := func(what string, err error) { r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", what, err)) }
	c, err := startCluster(rc, rc.nodes)
	if err != nil {
		fail("start", err)
		return r
	}
	defer c.close()

	start := time.Now()
	if _, err := c.ctl(rc.timeout, "changefeed", "create", changefeed, "--tables", fmt.Sprintf("1-%d", spans)); err != nil {
		fail("create", err)
		return r
	}
	if err := c.waitReplicating(changefeed, spans, 0, rc.timeout); err != nil {
		fail("cold start", err)
		return r
	}
	r.ColdStartSeconds = time.Since(start).Seconds()
	rc.logf("%d spans: cold start %.2fs", spans, r.ColdStartSeconds)

	st, _ := c.status(changefeed)
	maint := st.Maintainer
	if v, err := c.ingress(maint, spans, rc.ingressWindow); err != nil {
		fail("ingress", err)
	} else {
		r.IngressBytesPerSpanSecond = v
	}
	if rss, err := c.rss(maint); err != nil {
		fail("rss", err)
	} else {
		r.MaintainerRSSPerSpan = float64(rss) / float64(spans)
	}
	for id, n := range st.NodeSpans {
		if id == maint || n == 0 {
			continue
		}
		if rss, err := c.rss(id); err == nil {
			r.WorkerRSSPerDispatcher = nanMax(r.WorkerRSSPerDispatcher, float64(rss)/float64(n))
		}
	}
	rc.logf("%d spans: ingress %.2f B/span/s, RSS %.0f B/span (maintainer), %.0f B/dispatcher (worker)",
		spans, r.IngressBytesPerSpanSecond, r.MaintainerRSSPerSpan, r.WorkerRSSPerDispatcher)

	r.CtlStatusSeconds, r.CtlSpansSeconds = c.timeCtl(rc, fail, []string{"status"}),
		c.timeCtl(rc, fail, []string{"spans", "--limit", "1000"})
	rc.logf("%d spans: ctl status %.3fs, ctl spans --limit 1000 %.3fs", spans, r.CtlStatusSeconds, r.CtlSpansSeconds)

	if v, err := c.drainRate(st, rc.timeout); err != nil {
		fail("moves", err)
	} else {
		r.MovesPerSecond = v
		rc.logf("%d spans: %.0f moves/s", spans, v)
	}
	// The failover starts from the steady state, as after the cold start: every span
	// replicating, the counts even again and nothing in flight. Right after the drain the
	// balancer is still moving a third of the spans back onto the drained node, and the
	// maintainer's node then holds half of them, not a third.
	if err := c.waitReplicating(changefeed, spans, 0, rc.timeout); err != nil {
		fail("settle after drain", err)
		return r
	}
	if err := waitBalanced(c, changefeed, spans, rc.timeout); err != nil {
		fail("settle after drain", err)
		return r
	}
	fo, err := c.failover(changefeed, spans, rc.timeout)
	if err != nil {
		fail("failover", err)
	} else {
		r.FailoverSeconds, r.BootstrapSeconds, r.RestoreSeconds = fo.took, fo.bootstrap, fo.restore
		rc.logf("%d spans: failover %.2fs, bootstrap %.3fs, restore %.3fs", spans, fo.took, fo.bootstrap, fo.restore)
	}
	return r
}

// timeCtl runs `tidemark ctl args...` and returns its wall time, NaN (and a recorded error) if
// it failed.
func (c *cluster) timeCtl(rc runConfig, fail func(string, error), args []string) float64 {
	start := time.Now()
	if _, err := c.ctl(rc.timeout, args...); err != nil {
		fail("ctl "+args[0], err)
		return math.NaN()
	}
	return time.Since(start).Seconds()
}

func nanMax(a, b float64) float64 {
	if math.IsNaN(a) || b > a {
		return b
	}
	return a
}

// waitReplicating waits until cf's published status shows every span replicating, nothing in
// flight, bootstrapped, under an epoch above minEpoch.
func (c *cluster) waitReplicating(cf string, spans int, minEpoch uint64, d time.Duration) error {
	var last string
	err := c.waitFor(fmt.Sprintf("%d spans replicating", spans), d, func() (bool, error) {
		st, ok := c.status(cf)
		if !ok {
			return false, nil
		}
		last = fmt.Sprintf("epoch %d bootstrapped=%v spans=%v operators=%d", st.Epoch, st.Bootstrapped, st.Spans, st.Operators)
		return st.Epoch > minEpoch && st.Bootstrapped && st.Spans["replicating"] == spans && st.Operators == 0, nil
	})
	if err != nil {
		return fmt.Errorf("%w (last status: %s)", err, last)
	}
	return nil
}

// ingress is the bytes per span per second the maintainer's node received over window.
func (c *cluster) ingress(maint string, spans int, window time.Duration) (float64, error) {
	const name = "tidemark_messaging_received_bytes_total"
	before, err := c.metric(maint, name)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	time.Sleep(window)
	after, err := c.metric(maint, name)
	if err != nil {
		return 0, err
	}
	return (after - before) / time.Since(t0).Seconds() / float64(spans), nil
}

// drainRate drains the worker with the most spans and reports spans moved per second, then
// undrains it.
func (c *cluster) drainRate(st etcdutil.ChangefeedStatus, d time.Duration) (float64, error) {
	var victim string
	ids := make([]string, 0, len(st.NodeSpans))
	for id := range st.NodeSpans {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if id != st.Maintainer && (victim == "" || st.NodeSpans[id] > st.NodeSpans[victim]) {
			victim = id
		}
	}
	if victim == "" || st.NodeSpans[victim] == 0 {
		return 0, fmt.Errorf("no worker holds spans: %v", st.NodeSpans)
	}
	moved := st.NodeSpans[victim]
	start := time.Now()
	if _, err := c.ctl(d, "drain", victim); err != nil {
		return 0, err
	}
	took := time.Since(start)
	if _, err := c.ctl(d, "drain", victim, "--cancel"); err != nil {
		return 0, err
	}
	return float64(moved) / took.Seconds(), nil
}

// failoverTimes is what a failover took: kill to every span replicating under a new epoch, and
// the new maintainer's bootstrap (elected to plan applied) and restore (last answer to plan
// applied) from its histograms.
type failoverTimes struct{ took, bootstrap, restore float64 }

// failover kills cf's maintainer and measures the failover (failoverTimes).
func (c *cluster) failover(cf string, spans int, d time.Duration) (failoverTimes, error) {
	ft := failoverTimes{took: math.NaN(), bootstrap: math.NaN(), restore: math.NaN()}
	st, ok := c.status(cf)
	if !ok {
		return ft, fmt.Errorf("no status")
	}
	start := time.Now()
	c.kill(st.Maintainer)
	c.logf("failover: killed maintainer %s, which ran %d of %d spans' dispatchers", st.Maintainer, st.NodeSpans[st.Maintainer], spans)
	if err := c.waitReplicating(cf, spans, st.Epoch, d); err != nil {
		return ft, err
	}
	ft.took = time.Since(start).Seconds()
	now, _ := c.status(cf)
	var err error
	if ft.bootstrap, err = c.metric(now.Maintainer, "tidemark_maintainer_bootstrap_duration_seconds_sum"); err != nil {
		ft.bootstrap = math.NaN()
		return ft, err
	}
	if ft.restore, err = c.metric(now.Maintainer, "tidemark_maintainer_restore_duration_seconds_sum"); err != nil {
		ft.restore = math.NaN()
		return ft, err
	}
	return ft, nil
}
