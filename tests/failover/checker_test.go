package failover

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/dispatcher/sinkcheck"
	"github.com/tidemark/tidemark/etcdutil"
)

// converged is I6 as seen in the published status: bootstrapped, every span replicating, no
// operator in flight, spans only on live nodes, every live node busy and the counts balanced
// (the balance scheduler stops at a difference of one; two allows for a redo-mode remainder).
func converged(live []string) func(etcdutil.ChangefeedStatus) bool {
	return func(st etcdutil.ChangefeedStatus) bool {
		if !st.Bootstrapped || st.Operators != 0 || st.Spans["replicating"] == 0 {
			return false
		}
		for state, n := range st.Spans {
			if state != "replicating" && n > 0 {
				return false
			}
		}
		isLive := setOf(live)
		for id, n := range st.NodeSpans {
			if n > 0 && !isLive[id] {
				return false
			}
		}
		lo, hi := -1, 0
		for _, id := range live {
			n := st.NodeSpans[id]
			if lo < 0 || n < lo {
				lo = n
			}
			hi = max(hi, n)
		}
		return lo > 0 && hi-lo <= 2
	}
}

func setOf(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// storedCheckpoint mirrors the JSON etcdutil writes at the checkpoint key.
type storedCheckpoint struct {
	CheckpointTs uint64 `json:"checkpoint_ts"`
	Epoch        uint64 `json:"epoch"`
}

// history replays every version key ever had, from the first revision, through an etcd watch.
func history(ctx context.Context, cli *clientv3.Client, key string) ([][]byte, error) {
	resp, err := cli.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	last := resp.Kvs[0].ModRevision
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out [][]byte
	for wr := range cli.Watch(wctx, key, clientv3.WithRev(1)) {
		if err := wr.Err(); err != nil {
			return nil, err
		}
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypePut {
				out = append(out, ev.Kv.Value)
			}
			if ev.Kv.ModRevision >= last {
				return out, nil
			}
		}
	}
	return nil, fmt.Errorf("watch of %s ended early", key)
}

// checkEtcdHistory is I3 and the etcd side of I5 over the whole run: the persisted checkpoint
// and the published status never went back, and the epoch of whoever wrote them never went back
// (a fenced old maintainer could not write after a newer one). It returns the number of versions.
// The status checkpoint once went back (random-chaos): a runner acknowledged a failed checkpoint
// CAS, so the core published a checkpoint etcd did not hold; see CheckpointNotPersisted.
func checkEtcdHistory(ctx context.Context, cli *clientv3.Client, k etcdutil.Keys, cf string) (int, error) {
	cps, err := history(ctx, cli, k.Checkpoint(cf))
	if err != nil {
		return 0, fmt.Errorf("checkpoint history: %w", err)
	}
	var prev storedCheckpoint
	for i, raw := range cps {
		var cur storedCheckpoint
		if err := json.Unmarshal(raw, &cur); err != nil {
			return 0, fmt.Errorf("checkpoint version %d: %w", i, err)
		}
		if cur.CheckpointTs < prev.CheckpointTs {
			return 0, fmt.Errorf("I3: checkpoint went back from %d (epoch %d) to %d (epoch %d) at version %d",
				prev.CheckpointTs, prev.Epoch, cur.CheckpointTs, cur.Epoch, i)
		}
		if cur.Epoch != 0 && cur.Epoch < prev.Epoch {
			return 0, fmt.Errorf("I5: checkpoint written by epoch %d after epoch %d", cur.Epoch, prev.Epoch)
		}
		prev = cur
	}
	sts, err := history(ctx, cli, k.ChangefeedStatus(cf))
	if err != nil {
		return 0, fmt.Errorf("status history: %w", err)
	}
	var last etcdutil.ChangefeedStatus
	for i, raw := range sts {
		var cur etcdutil.ChangefeedStatus
		if err := json.Unmarshal(raw, &cur); err != nil {
			return 0, fmt.Errorf("status version %d: %w", i, err)
		}
		if cur.Epoch < last.Epoch {
			return 0, fmt.Errorf("I5: status published by %s epoch %d after %s epoch %d", cur.Maintainer, cur.Epoch, last.Maintainer, last.Epoch)
		}
		if cur.CheckpointTs < last.CheckpointTs {
			return 0, fmt.Errorf("I3: status checkpoint went back from %d (%s epoch %d) to %d (%s epoch %d); the checkpoint key's last value is %d",
				last.CheckpointTs, last.Maintainer, last.Epoch, cur.CheckpointTs, cur.Maintainer, cur.Epoch, prev.CheckpointTs)
		}
		last = cur
	}
	return len(cps) + len(sts), nil
}

// verifySinks is I1 and I2 over every record every node ever wrote for cf.
func (c *cluster) verifySinks(cf string, startTs uint64, tables []int64) (sinkcheck.Report, error) {
	records := c.records(cf)
	report, err := sinkcheck.Check(records, startTs, tables...)
	if err != nil {
		return report, fmt.Errorf("sink records: %w", err)
	}
	return report, report.Err()
}

// opSampler is I4 sampled from outside: it polls every node's status API and records any moment
// at which one maintainer listed two in-flight operators on the same span and mode.
type opSampler struct {
	c    *cluster
	cf   string
	stop chan struct{}
	done sync.WaitGroup

	mu         sync.Mutex
	samples    int
	operators  int // operator listings seen over all samples
	violations []string
}

func (c *cluster) startOpSampler(cf string) *opSampler {
	s := &opSampler{c: c, cf: cf, stop: make(chan struct{})}
	// A snapshot of addresses, so the sampler never reads what the scenario changes; paused and
	// dead nodes just fail to answer.
	var nodes []node
	for _, id := range c.ids() {
		nodes = append(nodes, node{id: id, statusAddr: c.nodes[id].statusAddr})
	}
	s.done.Add(1)
	go s.run(nodes)
	return s
}

// nodeOps is the slice of /api/v1/status the sampler reads.
type nodeOps struct {
	Changefeeds []struct {
		ID         string `json:"id"`
		Maintainer *struct {
			Epoch     uint64 `json:"epoch"`
			Operators []struct {
				Kind  string   `json:"kind"`
				Spans []string `json:"spans"`
				Mode  string   `json:"mode"`
			} `json:"operators"`
		} `json:"maintainer"`
	} `json:"changefeeds"`
}

func (s *opSampler) run(nodes []node) {
	defer s.done.Done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		for i := range nodes {
			n := &nodes[i]
			var st nodeOps
			if err := s.c.httpJSON(n, http.MethodGet, "/api/v1/status", "", &st); err != nil {
				continue
			}
			s.check(n.id, st)
		}
	}
}

func (s *opSampler) check(id string, st nodeOps) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cf := range st.Changefeeds {
		if cf.ID != s.cf || cf.Maintainer == nil {
			continue
		}
		s.samples++
		type owned struct {
			kind string
			op   int
			r    keyRange
		}
		var seen []owned
		s.operators += len(cf.Maintainer.Operators)
		for i, op := range cf.Maintainer.Operators {
			for _, sp := range op.Spans {
				r, ok := parseSpan(op.Mode, sp)
				if !ok {
					continue
				}
				for _, o := range seen {
					if o.op != i && o.r.overlaps(r) && len(s.violations) < 10 {
						s.violations = append(s.violations, fmt.Sprintf("I4: maintainer %s epoch %d runs %s on %s and %s on %s",
							id, cf.Maintainer.Epoch, o.kind, o.r, op.Kind, r))
					}
				}
				seen = append(seen, owned{op.Kind, i, r})
			}
		}
	}
}

// keyRange is a span as the status API prints it, "TABLE[STARTHEX,ENDHEX)", with its mode. Hex
// strings compare in the same order as the bytes they encode.
type keyRange struct {
	mode, table, start, end string
}

func (r keyRange) String() string { return r.mode + " " + r.table + "[" + r.start + "," + r.end + ")" }

func (r keyRange) overlaps(o keyRange) bool {
	return r.mode == o.mode && r.table == o.table && r.start < o.end && o.start < r.end
}

func parseSpan(mode, s string) (keyRange, bool) {
	table, rest, ok := strings.Cut(s, "[")
	if !ok || !strings.HasSuffix(rest, ")") {
		return keyRange{}, false
	}
	start, end, ok := strings.Cut(strings.TrimSuffix(rest, ")"), ",")
	return keyRange{mode: mode, table: table, start: start, end: end}, ok
}

// finish stops sampling and returns the number of samples and operator listings seen, and the
// violations.
func (s *opSampler) finish() (int, int, error) {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.done.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.violations) > 0 {
		sort.Strings(s.violations)
		return s.samples, s.operators, fmt.Errorf("%s", strings.Join(s.violations, "; "))
	}
	return s.samples, s.operators, nil
}
