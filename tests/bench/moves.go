package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/dispatcher/etcdcdc"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
)

// movesConfig is the moves scenario (-scenarios moves): for each mode (break-before-make, the
// default Move, and make-before-break), a fresh cluster replicates -moves-spans source ranges
// (one table, one span, one watch each) into the file sink under a steady load, moves
// -moves-count spans one admin move request each, -moves-batch at a time, and then drains the
// worker with the most spans. The pauses and lags come from the sinks' records (movespause.go).
type movesConfig struct {
	modes               []string // of moveModes, in that order
	spans, moves, batch int
	// hot: while a batch moves, every span of it gets one event per hot (one source
	// transaction for the batch), so that a pause is resolved to about hot.
	hot time.Duration
	// rate: events/s of the steady load over all spans, from before the first move to the end.
	rate float64
	// drainWindow: how long the steady lag is measured before the drain (0: no drain phase).
	drainWindow time.Duration
}

// moveMode is one mode's figures; NaN is a figure that could not be measured.
type moveMode struct {
	Mode string `json:"mode"`
	// Asked: moves requested; Pauses over those that could be measured (see movePauses).
	Asked  int           `json:"moves_asked"`
	Pauses durationStats `json:"pause_s"`
	// ControlGaps: the gaps between one dispatcher's writes of a span that got the hot load
	// but was not moved (the pause's noise floor: what it reads when nothing moves).
	ControlGaps  durationStats `json:"control_gap_s"`
	MovesSeconds float64       `json:"moves_s"`
	ColdStart    float64       `json:"cold_start_s"`
	// SteadyLag: source write to sink write over the window before the drain; DrainLag: of the
	// records written from the drain's start to a second after it ended.
	SteadyLag    durationStats `json:"steady_lag_s"`
	DrainLag     durationStats `json:"drain_lag_s"`
	DrainSpans   int           `json:"drain_spans"`
	DrainSeconds float64       `json:"drain_s"`
	Errors       []string      `json:"errors,omitempty"`
}

type movesResult struct {
	Spans int        `json:"spans"`
	Modes []moveMode `json:"modes"`
	// Ratio: make-before-break's pause p99 over break-before-make's.
	Ratio  float64  `json:"mbb_over_bbm_pause_p99"`
	Errors []string `json:"errors,omitempty"`
}

const cfMoves = "moves"

// hotTail: how long a batch's hot load goes on at the fast rate after its moves are done, at
// least; hotWait: how long it may go on for the destinations to write; hotSlow: its interval
// outside the moves' window (see moveBatches).
const (
	hotTail = 300 * time.Millisecond
	hotWait = 15 * time.Second
	hotSlow = 50 * time.Millisecond
)

var moveModes = []string{"bbm", "mbb"}

// runMoves starts the source etcd (shared by the modes, each on its own keys and cluster) and
// measures the modes (-moves-modes) one after the other.
func runMoves(rc runConfig, mc movesConfig) movesResult {
	res := movesResult{Spans: mc.spans, Ratio: math.NaN()}
	srcSrv, err := embedetcd.Start(embedetcd.Config{Dir: filepath.Join(rc.dir, "source"), Name: "source", LogLevel: "panic"})
	if err != nil {
		res.Errors = append(res.Errors, "source etcd: "+err.Error())
		return res
	}
	defer srcSrv.Close()
	src, err := etcdutil.Connect(context.Background(), srcSrv.ClientURLs(), nil, 5*time.Second)
	if err != nil {
		res.Errors = append(res.Errors, "source: "+err.Error())
		return res
	}
	defer src.Close()
	for _, mode := range mc.modes {
		mrc := rc
		mrc.dir = filepath.Join(rc.dir, mode)
		if err := os.MkdirAll(mrc.dir, 0o755); err != nil {
			res.Errors = append(res.Errors, err.Error())
			return res
		}
		m := runMoveMode(mrc, mc, mode, src, strings.Join(srcSrv.ClientURLs(), ","))
		rc.logf("moves %s: pause p50 %.4fs p99 %.4fs max %.4fs over %d of %d moves; lag steady p99 %.3fs max %.3fs, drain of %d spans (%.1fs) p99 %.3fs max %.3fs",
			mode, m.Pauses.P50, m.Pauses.P99, m.Pauses.Max, m.Pauses.N, m.Asked, m.SteadyLag.P99, m.SteadyLag.Max,
			m.DrainSpans, m.DrainSeconds, m.DrainLag.P99, m.DrainLag.Max)
		res.Modes = append(res.Modes, m)
	}
	res.Ratio = math.NaN()
	if len(res.Modes) == 2 && res.Modes[0].Mode == "bbm" && res.Modes[1].Mode == "mbb" {
		res.Ratio = safeDiv(res.Modes[1].Pauses.P99, res.Modes[0].Pauses.P99)
	}
	return res
}

// runMoveMode measures one mode on a fresh cluster.
func runMoveMode(rc runConfig, mc movesConfig, mode string, src *clientv3.Client, srcURLs string) moveMode {
	m := moveMode{Mode: mode, Asked: mc.moves, MovesSeconds: math.NaN(), ColdStart: math.NaN(), DrainSeconds: math.NaN(),
		Pauses: statsOf(nil), SteadyLag: statsOf(nil), DrainLag: statsOf(nil), ControlGaps: statsOf(nil)}
	fail := func(what string, err error) { m.Errors = append(m.Errors, fmt.Sprintf("%s: %v", what, err)) }
	ctx := context.Background()
	c, err := startCluster(rc, rc.nodes)
	if err != nil {
		fail("start", err)
		return m
	}
	defer c.close()
	ks := keyspace{root: "/mv/" + mode + "/", keys: mc.spans, ranges: mc.spans}
	args := append([]string{"changefeed", "create", cfMoves, "--dispatcher", "etcd", "--source-etcd", srcURLs, "--sink", "file"}, ks.rangeFlags()...)
	args = append(args, "--make-before-break="+strconv.FormatBool(mode == "mbb"))
	rev0 := targetRev(ctx, src)
	start := time.Now()
	if _, err := c.ctl(rc.timeout, args...); err != nil {
		fail("create", err)
		return m
	}
	if err := c.waitSpans(cfMoves, mc.spans, rc.timeout); err != nil {
		fail("cold start", err)
		return m
	}
	m.ColdStart = time.Since(start).Seconds()
	rc.logf("moves %s: %d spans replicating after %.1fs", mode, mc.spans, m.ColdStart)

	stop := make(chan struct{})
	loaded := make(chan error, 1)
	go func() {
		_, err := load(ctx, src, loadSpec{ks: ks, events: math.MaxInt32, perTxn: 1, writers: 4, rate: mc.rate, stop: stop})
		loaded <- err
	}()
	stopLoad := func() error {
		if stop == nil {
			return nil
		}
		close(stop)
		stop = nil
		return <-loaded
	}
	defer func() { _ = stopLoad() }()

	// Every span replicating is not every watch caught up: the source etcd syncs watches
	// created at a past revision a few hundred per 100 ms, and until a span's watch is synced
	// its events arrive late, which a move would be blamed for. A marker written now (outside
	// the ranges) is above every watch's creation revision, and etcd sends progress
	// notifications only to synced watches: so the changefeed checkpoint passes the marker only
	// once every span's watch is synced (or delivered events above it).
	warm := time.Now()
	mark, err := src.Put(ctx, "/mv-warm/"+mode, warm.Format(time.RFC3339Nano))
	if err != nil {
		fail("warm up", err)
		return m
	}
	if err := c.waitCheckpoint(cfMoves, mark.Header.Revision, rc.timeout); err != nil {
		fail("warm up", err)
		return m
	}
	rc.logf("moves %s: every watch caught up after %.1fs more", mode, time.Since(warm).Seconds())

	t0 := time.Now()
	moved, controls, err := c.moveBatches(ctx, rc, mc, ks, src)
	m.MovesSeconds = time.Since(t0).Seconds()
	if err != nil {
		fail("moves", err)
	}
	rc.logf("moves %s: %d moves in %.1fs", mode, len(moved), m.MovesSeconds)
	var steadyFrom, drainFrom, drainTo time.Time
	if mc.drainWindow > 0 && err == nil {
		steadyFrom = time.Now()
		time.Sleep(mc.drainWindow)
		drainFrom = time.Now()
		n, err := c.drainMost(rc)
		drainTo = time.Now()
		m.DrainSpans = n
		if err != nil {
			fail("drain", err)
		} else {
			m.DrainSeconds = drainTo.Sub(drainFrom).Seconds()
		}
		time.Sleep(time.Second) // the drain's late events land in its window
	}
	if err := stopLoad(); err != nil {
		fail("load", err)
	}
	lastRev := targetRev(ctx, src)
	if err := c.waitCheckpoint(cfMoves, lastRev, rc.timeout); err != nil {
		fail("checkpoint", err)
		return m
	}
	var records []etcdcdc.Record
	for id := range c.nodes {
		recs, err := etcdcdc.ReadFileSink(filepath.Join(rc.dir, id, "cdc"), cfMoves)
		if err != nil {
			fail("read sink", err)
			return m
		}
		records = append(records, recs...)
	}
	pauses, problems := movePauses(writesBySpan(records, ks.root), moved)
	m.Pauses = statsOf(gaps(pauses))
	m.ControlGaps = statsOf(controlGaps(records, ks.root, controls))
	for _, p := range slowest(pauses, 5) {
		rc.logf("moves %s: slow: %s", mode, p)
	}
	if len(problems) > 0 {
		for _, p := range problems[:min(5, len(problems))] {
			rc.logf("moves %s: not measurable: %s", mode, p)
		}
		fail("pauses", fmt.Errorf("%d of %d moves not measurable, first: %s", len(problems), len(moved), problems[0]))
	}
	if !drainFrom.IsZero() {
		m.SteadyLag = statsOf(writeLags(records, ks.root, steadyFrom, drainFrom))
		m.DrainLag = statsOf(writeLags(records, ks.root, drainFrom, drainTo.Add(time.Second)))
	}
	// Nothing lost, nothing invented: every source event is in a sink, in order per dispatcher.
	events, err := history(ctx, src, ks.root, rev0, lastRev)
	if err == nil {
		err = etcdcdc.CheckFileSinks(events, records)
	}
	if err != nil {
		fail("sink check", err)
	}
	return m
}
