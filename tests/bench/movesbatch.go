package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/admin"
	"github.com/tidemark/tidemark/api"
	"github.com/tidemark/tidemark/etcdutil"
)

// The moves scenario's batches: the admin moves, the hot load that resolves each pause, and
// the placement the next batch starts from.

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
		// The hot load starts slow: each span of the batch gets an event every hotSlow until
		// the changefeed checkpoint passes the first one, which says every origin wrote a hot
		// event and its watch is delivering. Only the moves' window runs at the fast rate that
		// resolves a pause (stop 21's full-size run wrote 60,000 events a batch at the fast
		// rate throughout, most of them while waiting for the checkpoint, and its sink check
		// then did not finish in 12 minutes).
		hotStart := time.Now()
		hot := startHot(ctx, src, ks, append(append([]int(nil), batch...), control...), hotSlow)
		if err := hot.waitFirst(ctx); err != nil {
			return moved, controls, err
		}
		if err := c.waitCheckpoint(cfMoves, hot.first.Load(), hotWait); err != nil {
			fmt.Fprintf(os.Stderr, "moves: batch %d: %v; origins that wrote no hot event are reported not measurable\n", b/mc.batch, err)
		}
		// The origins get a few events at the fast rate before the moves are asked, so a pause
		// is measured from a write at most one fast interval before the origin stopped. An
		// origin that wrote none of them (stalled for the whole lead) is measured from its last
		// slow-rate write: that gap is a true stall with events waiting, counted against the
		// move, up to hotSlow more than it was (stop 22's run saw 4 in 1,000 such moves).
		// The controls' window, the noise floor, is the fast rate's alone.
		hotFrom := hot.setEvery(mc.hot)
		time.Sleep(10 * mc.hot)
		var wg sync.WaitGroup
		errs := make([]error, len(batch))
		first := len(moved)
		for i, rng := range batch {
			if next[where[rng]] == "" {
				hot.stop()
				return moved, controls, fmt.Errorf("range %d is on %q, no node of this cluster", rng, where[rng])
			}
			moved = append(moved, movedSpan{rng: rng, asked: time.Now()})
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
		// The load drops back to hotSlow for that wait: a destination that had not resumed by
		// then is resolved to hotSlow, and the controls' window (the noise floor) ends here.
		time.Sleep(max(10*mc.hot, hotTail))
		fastEnd := time.Now()
		hot.setEvery(hotSlow)
		if err := c.waitCheckpoint(cfMoves, hot.rev.Load(), hotWait); err != nil {
			fmt.Fprintf(os.Stderr, "moves: batch %d: %v; its slow destinations are reported not measurable\n", b/mc.batch, err)
		}
		if err := hot.stop(); err != nil {
			return moved, controls, err
		}
		hotEnd := time.Now()
		for i := first; i < len(moved); i++ {
			moved[i].hotFrom, moved[i].hotEnd = hotStart, hotEnd
		}
		for _, rng := range control {
			controls = append(controls, movedSpan{rng: rng, hotFrom: hotFrom, hotEnd: fastEnd})
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

// settledPlacement waits for a quiet, balanced schedule (waitBalanced) and returns the
// placement then.
func (c *cluster) settledPlacement(rc runConfig, spans int) (map[int]string, error) {
	if err := waitBalanced(c, cfMoves, spans, rc.timeout); err != nil {
		return nil, err
	}
	return c.placement(rc)
}

// waitBalanced waits until cf's schedule is quiet with even counts, seen in two successive
// published statuses, so the balancer has nothing to do.
func waitBalanced(c *cluster, cf string, spans int, d time.Duration) error {
	var seen time.Time
	return c.waitFor(cf+": a quiet, balanced schedule", d, func() (bool, error) {
		st, ok := c.status(cf)
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

// hotWriter writes one event to each of its ranges every interval (setEvery changes it), one
// transaction each time.
type hotWriter struct {
	done  chan struct{}
	quit  chan struct{}
	every chan time.Duration // a new interval, taken at once
	err   error
	rev   atomic.Int64 // revision of the last transaction
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
	h := &hotWriter{done: make(chan struct{}), quit: make(chan struct{}), every: make(chan time.Duration), firstDone: make(chan struct{})}
	go func() {
		defer close(h.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-h.quit:
				return
			case d := <-h.every:
				t.Reset(d)
				continue
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

// setEvery makes the writer write every d from now on and returns when it took the change (the
// first transaction at the new rate is d later). A writer that ended takes nothing.
func (h *hotWriter) setEvery(d time.Duration) time.Time {
	select {
	case h.every <- d:
	case <-h.done:
	}
	return time.Now()
}

func (h *hotWriter) stop() error {
	close(h.quit)
	<-h.done
	return h.err
}
