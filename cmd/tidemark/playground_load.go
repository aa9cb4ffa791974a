package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/wait"
)

// Defaults of the playground's load on the etcd demo: modest, so that a laptop shows steady
// replication without the load being the whole story.
const (
	defaultLoadRate   = 100
	defaultLoadKeys   = 1000
	defaultLoadDelete = 0.1
	loadWorkers       = 4
)

// demoLoad is the in-process load of the etcd demo: the same writer as `tidemark load`, into
// demoSourcePrefix of the embedded etcd.
type demoLoad struct {
	lf   loadFlags
	st   loadStats
	done chan struct{}
}

// startDemoLoad starts the load unless its rate is 0; it stops when ctx ends or after
// f.loadEvents events (0: no end), and prints a line when it has written them all.
func startDemoLoad(ctx context.Context, cli *clientv3.Client, keys etcdutil.Keys, f playgroundFlags, out io.Writer) *demoLoad {
	if f.dispatcher != etcdutil.EtcdDispatcher || f.loadRate == 0 {
		return nil
	}
	events := f.loadEvents
	if events == 0 {
		events = math.MaxInt
	}
	l := &demoLoad{lf: loadFlags{prefix: demoSourcePrefix, keys: f.loadKeys, events: events, rate: f.loadRate,
		deleteRatio: defaultLoadDelete, workers: loadWorkers, seed: uint64(time.Now().UnixNano()), timeout: 5 * time.Second},
		done: make(chan struct{})}
	go func() {
		defer close(l.done)
		// Start writing once the demo replicates, so the status line shows the events flow
		// rather than a backlog copied in one burst while the nodes were still starting.
		waitDemoReplicating(ctx, cli, keys, loadStartWait)
		writeLoad(ctx, cli, l.lf, &l.st)
		if ctx.Err() == nil {
			fmt.Fprintf(out, "load done: %d events written (%d puts, %d deletes), %d errors; the mirror catches up, then `tidemark ctl diff demo` shows 0 differing keys\n",
				l.st.done(), l.st.puts.Load(), l.st.deletes.Load(), l.st.errors.Load())
		}
	}()
	return l
}

// loadStartWait bounds how long the demo load waits for the changefeed to replicate: past it,
// the load starts anyway (the nodes catch up on what it wrote).
const loadStartWait = 30 * time.Second

// waitDemoReplicating returns once the demo changefeed's published status has every span
// replicating, or after limit, or when ctx ends.
func waitDemoReplicating(ctx context.Context, cli *clientv3.Client, keys etcdutil.Keys, limit time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for ctx.Err() == nil {
		st, err := etcdutil.GetStatus(ctx, cli, keys, demoChangefeed)
		if err == nil && st.Bootstrapped && st.Spans["replicating"] > 0 && st.Spans["absent"] == 0 && st.Spans["scheduling"] == 0 {
			return
		}
		wait.Sleep(ctx, 100*time.Millisecond)
	}
}

// wait returns once the load has stopped (ctx ended or all written).
func (l *demoLoad) wait() {
	if l != nil {
		<-l.done
	}
}

func (l *demoLoad) describe() string {
	if l == nil {
		return "no load (--load-rate 0)"
	}
	n := "until Ctrl-C"
	if l.lf.events != math.MaxInt {
		n = fmt.Sprintf("%d events", l.lf.events)
	}
	return fmt.Sprintf("load: %.0f events/s over %d keys under %s (%.0f%% deletes), %s", l.lf.rate, l.lf.keys, demoSourcePrefix,
		100*l.lf.deleteRatio, n)
}

// dataPlaneMeter turns the nodes' replicated-events counters into events per second between
// status lines, and reads the lag, for the etcd demo's status line.
type dataPlaneMeter struct {
	client   apiClient
	children []*child
	load     *demoLoad

	mu         sync.Mutex
	lastAt     time.Time
	lastEvents float64
	// The published checkpoint and since when it has not moved: the nodes' lag covers only
	// spans that run somewhere, so a span between a dead node and its next one shows here.
	checkpoint uint64
	movedAt    time.Time
}

// stallAfter: a checkpoint that has not moved for this long is shown as stalled (it moves
// about every second even without writes: progress notifications advance idle spans).
const stallAfter = 2500 * time.Millisecond

// part renders "replicated 98 events/s | lag 12 revisions, 0.01s | load 1234 written", given
// the published checkpoint.
func (m *dataPlaneMeter) part(ctx context.Context, cli *clientv3.Client, checkpoint uint64, now time.Time) string {
	addrs := make([]string, 0, len(m.children))
	for _, c := range m.children {
		if ok, _ := c.exited(); !ok {
			addrs = append(addrs, c.statusAddr)
		}
	}
	dp, _ := scrapeDataPlane(ctx, m.client, addrs, demoChangefeed)
	parts := []string{}
	m.mu.Lock()
	rate := "replicated ? events/s"
	// A node that died took its counter with it: the sum drops, and that second is unknown.
	if !m.lastAt.IsZero() && dp.nodes > 0 && dp.events >= m.lastEvents {
		rate = fmt.Sprintf("replicated %.0f events/s", (dp.events-m.lastEvents)/now.Sub(m.lastAt).Seconds())
	}
	if dp.nodes > 0 {
		m.lastAt, m.lastEvents = now, dp.events
	}
	if checkpoint != m.checkpoint || m.movedAt.IsZero() {
		m.checkpoint, m.movedAt = checkpoint, now
	}
	stalled := now.Sub(m.movedAt)
	m.mu.Unlock()
	parts = append(parts, rate)
	// The nodes' own figures: the revisions and seconds their slowest span trails the source.
	// (The published checkpoint is up to a second old, and tidemark's own writes to this etcd,
	// the mirror's among them, move its revision too.)
	lag := "lag ?"
	if dp.nodes > 0 {
		lag = fmt.Sprintf("lag %.0f revisions, %.2fs", dp.lagRevisions, dp.lagSeconds)
	}
	if stalled >= stallAfter && checkpoint > 0 {
		revs := "?"
		if resp, err := cli.Get(ctx, "\x00", clientv3.WithCountOnly()); err == nil {
			revs = fmt.Sprint(max(resp.Header.Revision-int64(checkpoint), 0))
		}
		lag = fmt.Sprintf("lag %s revisions, %.1fs (checkpoint stalled: a span between nodes?)", revs, stalled.Seconds())
	}
	parts = append(parts, lag)
	if m.load != nil {
		parts = append(parts, fmt.Sprintf("load %d written", m.load.st.done()))
	}
	return strings.Join(parts, " | ")
}
