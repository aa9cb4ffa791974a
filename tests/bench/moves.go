package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/admin"
	"github.com/tidemark/tidemark/api"
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

// hotTail: how long a batch's hot load goes on after its moves are done, at least; hotWait:
// how long it may go on for the destinations to write (see moveBatches).
const (
	hotTail = 300 * time.Millisecond
	hotWait = 15 * time.Second
)

var moveModes = []string{"bbm", "mbb"}

// runMoves starts the source etcd (shared by the modes, each on its own keys and cluster) and
// measures both modes one after the other.
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
	for _, mode := range moveModes {
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
	if len(res.Modes) == 2 {
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
	if mode == "mbb" {
		args = append(args, "--make-before-break")
	}
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

// moveBatches moves mc.moves spans, mc.batch at a time, each to the next node (in name order)
// after the one holding it. Each batch starts from a settled schedule.
// It returns the moves asked, with when each request was queued.
//
// Each batch also gives the hot load to as many spans that are not moved (controls, returned
// second): the gaps between their writes are what a pause measures when nothing moves.
func (c *cluster) moveBatches(ctx context.Context, rc runConfig, mc movesConfig, ks keyspace, src *clientv3.Client) (moved, controls []movedSpan, err error) {
	var where map[int]string
	ids := make([]string, 0, len(c.nodes))
	for id := range c.nodes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	next := map[string]string{}
	for i, id := range ids {
		next[id] = ids[(i+1)%len(ids)]
	}
	perm := rand.New(rand.NewSource(1)).Perm(mc.spans)
	order, unmoved := perm[:mc.moves], perm[mc.moves:]
	moved = make([]movedSpan, 0, len(order)) // no reallocation: the movers hold pointers into it
	for b := 0; b < len(order); b += mc.batch {
		// The balancer evens the counts out after a batch that left them uneven; a move of
		// its own on a span of the next batch would refuse that span's admin move as busy.
		if where, err = c.settledPlacement(rc, mc.spans); err != nil {
			return moved, controls, err
		}
		batch := order[b:min(b+mc.batch, len(order))]
		var control []int
		for i := range min(len(batch), len(unmoved)) {
			control = append(control, unmoved[(b+i)%len(unmoved)])
		}
		hotFrom := time.Now()
		hot := startHot(ctx, src, ks, append(append([]int(nil), batch...), control...), mc.hot)
		// Each origin must have written a hot event before its move is asked, or its last
		// write is the span's previous steady-load event (seconds back at 10,000 spans) and
		// the pause would be measured from there: the changefeed checkpoint passing the first
		// hot revision says every span wrote it.
		if err := hot.waitFirst(ctx); err != nil {
			return moved, controls, err
		}
		if err := c.waitCheckpoint(cfMoves, hot.first.Load(), hotWait); err != nil {
			fmt.Fprintf(os.Stderr, "moves: batch %d: %v; origins that wrote no hot event are reported not measurable\n", b/mc.batch, err)
		}
		var wg sync.WaitGroup
		errs := make([]error, len(batch))
		first := len(moved)
		for i, rng := range batch {
			if next[where[rng]] == "" {
				hot.stop()
				return moved, controls, fmt.Errorf("range %d is on %q, no node of this cluster", rng, where[rng])
			}
			moved = append(moved, movedSpan{rng: rng, asked: time.Now(), hotFrom: hotFrom})
			wg.Add(1)
			go func(m *movedSpan, from string) {
				defer wg.Done()
				errs[i] = c.moveOnce(ctx, rc, m, from, next)
			}(&moved[first+i], where[rng])
		}
		wg.Wait()
		// A move is done when the destination reports Working, which may be before it wrote:
		// the hot load goes on until the destinations wrote a hot event from after the moves,
		// or a pause would end at the span's next steady-load event (seconds later at 10,000
		// spans). The changefeed checkpoint passing that event's revision says they did; on a
		// slow machine that can take seconds, so a fixed tail lost moves to "not measurable".
		time.Sleep(max(10*mc.hot, hotTail))
		if err := c.waitCheckpoint(cfMoves, hot.rev.Load(), hotWait); err != nil {
			fmt.Fprintf(os.Stderr, "moves: batch %d: %v; its slow destinations are reported not measurable\n", b/mc.batch, err)
		}
		if err := hot.stop(); err != nil {
			return moved, controls, err
		}
		hotEnd := time.Now()
		for i := first; i < len(moved); i++ {
			moved[i].hotEnd = hotEnd
		}
		for _, rng := range control {
			controls = append(controls, movedSpan{rng: rng, hotFrom: hotFrom, hotEnd: hotEnd})
		}
		for _, err := range errs {
			if err != nil {
				return moved, controls, err
			}
		}
	}
	return moved, controls, nil
}

// moveOnce moves m's span from the node holding it to the next one. A busy refusal means a
// move of the balancer's came first (it acts whenever the schedule is quiet and the counts
// uneven, so between two of a batch's moves too): it waits for that to finish and asks again
// from wherever the span is then, the ask's time reset so the pause measured is its own.
func (c *cluster) moveOnce(ctx context.Context, rc runConfig, m *movedSpan, from string, next map[string]string) error {
	for try := 0; ; try++ {
		err := c.adminMove(ctx, rc, strconv.Itoa(m.rng+1), next[from])
		if !errors.Is(err, errSpanBusy) || try == 20 {
			return err
		}
		time.Sleep(200 * time.Millisecond)
		where, perr := c.placement(rc)
		if perr != nil {
			return perr
		}
		from = where[m.rng]
		m.asked = time.Now()
	}
}

// settledPlacement waits until the schedule is quiet with even counts, seen in two successive
// published statuses, so the balancer has nothing to do, and returns the placement then.
func (c *cluster) settledPlacement(rc runConfig, spans int) (map[int]string, error) {
	var seen time.Time
	err := c.waitFor("a quiet, balanced schedule", rc.timeout, func() (bool, error) {
		st, ok := c.status(cfMoves)
		if !ok || st.Operators > 0 || !evenCounts(st.NodeSpans, spans) {
			seen = time.Time{}
			return false, nil
		}
		if seen.IsZero() {
			seen = st.UpdatedAt
			return false, nil
		}
		return st.UpdatedAt.After(seen), nil
	})
	if err != nil {
		return nil, err
	}
	return c.placement(rc)
}

// evenCounts: the counts hold spans in all and differ by at most one, as the balancer leaves them.
func evenCounts(counts map[string]int, spans int) bool {
	lo, hi, sum := spans, 0, 0
	for _, n := range counts {
		lo, hi, sum = min(lo, n), max(hi, n), sum+n
	}
	return sum == spans && hi-lo <= 1
}

// errSpanBusy: the admin move was refused because another operator holds the span.
var errSpanBusy = errors.New("span busy")

// adminMove queues one admin move request, as `ctl move` does, and waits for its outcome.
func (c *cluster) adminMove(ctx context.Context, rc runConfig, table, to string) error {
	ctx, cancel := context.WithTimeout(ctx, rc.timeout)
	defer cancel()
	req := etcdutil.AdminRequest{ID: etcdutil.NewAdminID(time.Now()), Changefeed: cfMoves, Kind: admin.Move, Spans: []string{table}, Node: to}
	if err := etcdutil.SubmitAdminRequest(ctx, c.cli, c.keys, req, rc.timeout+5*time.Second); err != nil {
		return err
	}
	res, err := etcdutil.WaitAdminResult(ctx, c.cli, c.keys, req.ID)
	if err != nil {
		return fmt.Errorf("move of table %s to %s: %w", table, to, err)
	}
	if res.Outcome == admin.Refused && res.Reason == admin.SpanBusy {
		return fmt.Errorf("move of table %s to %s: %w: %s", table, to, errSpanBusy, res.Message)
	}
	if res.Outcome != admin.Done {
		return fmt.Errorf("move of table %s to %s: %s: %s", table, to, res.Outcome, res.Message)
	}
	return nil
}

// placement maps range index (table - 1) to the node replicating it, from `ctl spans`.
func (c *cluster) placement(rc runConfig) (map[int]string, error) {
	out, err := c.ctl(rc.timeout, "spans", "--changefeed", cfMoves, "--limit", "0", "--json")
	if err != nil {
		return nil, err
	}
	var page struct {
		Spans []api.SpanInfo `json:"spans"`
	}
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		return nil, fmt.Errorf("ctl spans --json: %w", err)
	}
	where := map[int]string{}
	for _, s := range page.Spans {
		where[int(s.Table-1)] = s.Node
	}
	return where, nil
}

// drainMost drains the worker (not the maintainer) holding the most spans, waits for the
// drain to finish (ctl drain returns then), and cancels it; it returns the spans moved.
func (c *cluster) drainMost(rc runConfig) (int, error) {
	st, ok := c.status(cfMoves)
	if !ok {
		return 0, fmt.Errorf("no status of %s", cfMoves)
	}
	victim := ""
	for id, n := range st.NodeSpans {
		if id != st.Maintainer && (victim == "" || n > st.NodeSpans[victim]) {
			victim = id
		}
	}
	if victim == "" {
		return 0, fmt.Errorf("no worker: %v (maintainer %s)", st.NodeSpans, st.Maintainer)
	}
	n := st.NodeSpans[victim]
	if _, err := c.ctl(rc.timeout, "drain", victim); err != nil {
		return n, err
	}
	_, err := c.ctl(rc.timeout, "drain", victim, "--cancel")
	return n, err
}

// hotWriter writes one event to each of its ranges every interval, one transaction each time.
type hotWriter struct {
	done chan struct{}
	quit chan struct{}
	err  error
	rev  atomic.Int64 // revision of the last transaction
	// first is the revision of the first transaction, once firstDone is closed.
	first     atomic.Int64
	firstDone chan struct{}
}

// waitFirst waits for the first hot transaction (or the writer's end).
func (h *hotWriter) waitFirst(ctx context.Context) error {
	select {
	case <-h.firstDone:
		return nil
	case <-h.done:
		return h.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

var hotSeq atomic.Int64

func startHot(ctx context.Context, cli *clientv3.Client, ks keyspace, ranges []int, every time.Duration) *hotWriter {
	h := &hotWriter{done: make(chan struct{}), quit: make(chan struct{}), firstDone: make(chan struct{})}
	go func() {
		defer close(h.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-h.quit:
				return
			case <-t.C:
			}
			now := time.Now()
			ops := make([]clientv3.Op, 0, len(ranges))
			for _, r := range ranges {
				ops = append(ops, clientv3.OpPut(ks.key(r), value(int(hotSeq.Add(1)), now)))
			}
			resp, err := cli.Txn(ctx).Then(ops...).Commit()
			if err != nil {
				h.err = fmt.Errorf("hot load: %w", err)
				return
			}
			h.rev.Store(resp.Header.Revision)
			if h.first.CompareAndSwap(0, resp.Header.Revision) {
				close(h.firstDone)
			}
		}
	}()
	return h
}

func (h *hotWriter) stop() error {
	close(h.quit)
	<-h.done
	return h.err
}
