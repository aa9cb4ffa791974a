package main

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/dispatcher/etcdcdc"
	"github.com/tidemark/tidemark/etcdutil"
)

// keyspace is one phase's source keys: keys distinct keys spread over ranges key ranges under
// root (one table each, so the three nodes share the spans), e.g. /bench/mirror/03/00001234.
type keyspace struct {
	root   string
	keys   int
	ranges int
}

func (k keyspace) key(i int) string {
	i %= k.keys
	return fmt.Sprintf("%s%02d/%08d", k.root, i%k.ranges, i)
}

// rangeFlags are the --source-range flags of the changefeed over this keyspace.
func (k keyspace) rangeFlags() []string {
	var out []string
	for i := range k.ranges {
		r := etcdutil.PrefixRange(fmt.Sprintf("%s%02d/", k.root, i))
		out = append(out, "--source-range", r.Start+".."+r.End)
	}
	return out
}

// loadSpec is one run of the writer: events puts over ks, perTxn puts to a transaction (one
// source revision), from writers goroutines; rate 0 writes as fast as the source takes them.
type loadSpec struct {
	ks      keyspace
	events  int
	perTxn  int
	writers int
	rate    float64
	// stop, when closed, ends a paced load early (the lag phase runs for a time, not a count).
	stop <-chan struct{}
}

// loadResult is what a load wrote: first and last revision, when it started and ended, and
// the key and value of the highest revision (make-mirror is done once the target holds it).
type loadResult struct {
	firstRev, lastRev  int64
	start, end         time.Time
	written            int
	lastKey, lastValue string
	targetRev          int64 // the target's revision once the mirror caught up (mirror phase only)
}

// value carries the event's sequence number and write time, so that every write is unique
// (the history check is sharp) and the mirror's watcher can compute the lag of each event.
func value(seq int, at time.Time) string {
	return strconv.Itoa(seq) + ":" + strconv.FormatInt(at.UnixNano(), 10)
}

func valueTime(v []byte) (time.Time, bool) {
	_, ns, ok := strings.Cut(string(v), ":")
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	return time.Unix(0, n), err == nil
}

// load writes the events. Sequence numbers are handed out in transaction-sized blocks, and a
// block's keys are consecutive, so a transaction never names a key twice.
func load(ctx context.Context, cli *clientv3.Client, spec loadSpec) (loadResult, error) {
	if spec.perTxn < 1 || spec.perTxn > spec.ks.keys || spec.writers < 1 {
		return loadResult{}, fmt.Errorf("load: %d puts per transaction over %d keys from %d writers", spec.perTxn, spec.ks.keys, spec.writers)
	}
	var (
		next    atomic.Int64
		mu      sync.Mutex
		res     = loadResult{firstRev: math.MaxInt64, start: time.Now()}
		firstEr error
		wg      sync.WaitGroup
	)
	for range spec.writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				from := int(next.Add(int64(spec.perTxn))) - spec.perTxn
				if from >= spec.events {
					return
				}
				to := min(from+spec.perTxn, spec.events)
				if spec.rate > 0 {
					due := res.start.Add(time.Duration(float64(from) / spec.rate * float64(time.Second)))
					select {
					case <-time.After(time.Until(due)):
					case <-spec.stop:
						return
					case <-ctx.Done():
						return
					}
				}
				now := time.Now()
				ops := make([]clientv3.Op, 0, to-from)
				for s := from; s < to; s++ {
					ops = append(ops, clientv3.OpPut(spec.ks.key(s), value(s, now)))
				}
				resp, err := cli.Txn(ctx).Then(ops...).Commit()
				mu.Lock()
				if err != nil {
					if firstEr == nil {
						firstEr = fmt.Errorf("load: write of events %d-%d: %w", from, to-1, err)
					}
					mu.Unlock()
					return
				}
				rev := resp.Header.Revision
				res.written += to - from
				res.firstRev = min(res.firstRev, rev)
				if rev > res.lastRev {
					res.lastRev, res.lastKey, res.lastValue = rev, spec.ks.key(to-1), value(to-1, now)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.end = time.Now()
	if firstEr == nil && spec.stop == nil && res.written != spec.events {
		firstEr = fmt.Errorf("load: wrote %d of %d events", res.written, spec.events)
	}
	return res, firstEr
}

// history reads every event under prefix in revisions (from, to] by a watch, the way the
// dispatchers saw them.
func history(ctx context.Context, cli *clientv3.Client, prefix string, from, to int64) ([]etcdcdc.Event, error) {
	h, err := etcdcdc.ReadHistory(ctx, cli, from, to, prefix)
	return h[prefix], err
}

// lagSample is one event seen in the mirror: when it was written and when it arrived.
type lagSample struct {
	arrived time.Time
	lag     time.Duration
}

// lagWatcher watches the mirror and records, for every event, how long after its write in the
// source it arrived; replays after a handoff count too (they are the lag of the state).
type lagWatcher struct {
	mu      sync.Mutex
	samples []lagSample
	cancel  context.CancelFunc
	done    chan struct{}
}

func watchLag(cli *clientv3.Client, prefix string) *lagWatcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &lagWatcher{cancel: cancel, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(w.done)
		wc := cli.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		close(ready)
		for resp := range wc {
			now := time.Now()
			w.mu.Lock()
			for _, ev := range resp.Events {
				if at, ok := valueTime(ev.Kv.Value); ok && ev.Type == clientv3.EventTypePut {
					w.samples = append(w.samples, lagSample{arrived: now, lag: now.Sub(at)})
				}
			}
			w.mu.Unlock()
		}
	}()
	<-ready
	return w
}

func (w *lagWatcher) stop() []lagSample {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.samples
}

// percentile of the lags (p in [0, 1]); NaN when there are none.
func percentile(samples []lagSample, p float64) float64 {
	if len(samples) == 0 {
		return math.NaN()
	}
	lags := make([]time.Duration, len(samples))
	for i, s := range samples {
		lags[i] = s.lag
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	return lags[min(len(lags)-1, int(p*float64(len(lags))))].Seconds()
}

// recovery is how long after t the last event with a lag of at least limit arrived (0 when
// none did); ok is false when that was within quiet of the end of the samples, so that the
// lag may not have settled.
func recovery(samples []lagSample, t time.Time, limit, quiet time.Duration) (time.Duration, bool) {
	var last, end time.Time
	for _, s := range samples {
		if s.arrived.After(end) {
			end = s.arrived
		}
		if s.arrived.After(t) && s.lag >= limit && s.arrived.After(last) {
			last = s.arrived
		}
	}
	if last.IsZero() {
		return 0, !end.IsZero()
	}
	return last.Sub(t), end.Sub(last) >= quiet
}
