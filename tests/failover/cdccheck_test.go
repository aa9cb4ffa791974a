package failover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/dispatcher/etcdcdc"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/failpoints"
)

// stopLoad interrupts the load (SIGINT) and checks that it wrote and reported what it wrote.
func (e *env) stopLoad() {
	e.t.Helper()
	load := e.cdc.load
	// A scenario may end before a slow machine's load has written much: give it the events the
	// floor in checkCDC asks for, so a short scenario still checks data rather than nothing.
	e.waitSourceEvents(2*minSourceEvents, 30*time.Second) // with a margin: the floor counts only the changefeed's ranges
	load.signal(syscall.SIGINT)
	if !load.waitFor(15 * time.Second) {
		e.t.Errorf("tidemark load ignored SIGINT for 15s")
		load.signal(syscall.SIGKILL)
		load.wait()
	}
	b, _ := os.ReadFile(e.cdc.loadLog)
	summary, ok := logLastLine(e.cdc.loadLog, []string{"wrote ", " events ("})
	// Exit 1 with "interrupted" is how the SIGINT ends it; anything else is a failure.
	if code := load.cmd.ProcessState.ExitCode(); !ok || code != 0 && !strings.Contains(string(b), "interrupted after") {
		e.t.Errorf("tidemark load exited %d:\n%s", code, tail(b, 1024))
		return
	}
	e.t.Logf("load: %s", summary)
}

// minSourceEvents is the fewest source events a run's data check must cover.
const minSourceEvents = 100

// waitSourceEvents returns once the source has had n events under cdcSource since the
// changefeed was created, or after limit (the floor check then names the shortfall).
func (e *env) waitSourceEvents(n int, limit time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	seen := 0
	for resp := range e.cli.Watch(ctx, cdcSource, clientv3.WithPrefix(), clientv3.WithRev(e.cdc.created+1)) {
		if seen += len(resp.Events); seen >= n {
			return
		}
	}
}

// cdcBeforeStop stops the load, waits for the changefeed checkpoint to pass its last write,
// then runs `ctl diff` on a mirror (0 differing keys). It returns the final checkpoint.
func (e *env) cdcBeforeStop() int64 {
	e.t.Helper()
	e.stopLoad()
	end := e.revision()
	st, took, ok := e.poll(e.cf, 30*time.Second, func(st etcdutil.ChangefeedStatus) bool { return int64(st.CheckpointTs) >= end })
	if !ok {
		e.t.Errorf("I6 violated: checkpoint stuck at revision %d, below the load's end %d", st.CheckpointTs, end)
	} else {
		e.t.Logf("I6: checkpoint passed the load's last write (revision %d) %v after it ended", end, took.Round(10*time.Millisecond))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	cp, err := etcdutil.GetCheckpoint(ctx, e.cli, e.keys, e.cf)
	cancel()
	if err != nil {
		e.t.Fatalf("final checkpoint: %v", err)
	}
	if e.info.Sink.Kind != etcdutil.SinkEtcd {
		return int64(cp)
	}
	out, err := e.ctl("diff", e.cf)
	switch {
	case e.sc.mutation:
		// A dropped event that a later write of its key overwrote leaves the mirror equal:
		// only the history check must see it.
		e.t.Logf("ctl diff with the mutation (%v): %s", err, tail([]byte(strings.TrimSpace(out)), 512))
	case err != nil || !strings.Contains(out, "0 differing keys"):
		// A table removed during the run (kill-maintainer-mid-remove) keeps what it had
		// mirrored; ctl diff counts those keys in a note, outside the comparison.
		e.t.Errorf("ctl diff %s after the load (checkpoint %d): %v\n%s", e.cf, cp, err, tail([]byte(out), 2048))
	default:
		e.t.Logf("ctl diff: %s", strings.TrimSpace(out))
	}
	return int64(cp)
}

// cdcCheck checks the data over the whole run, once every node stopped: every source event in
// (start, final checkpoint] of the changefeed's ranges reached the sink. On a mirror, per key
// in revision order with repeats only as replays (etcdcdc.CheckHistory), and every mirror
// write fenced with no dispatcher writing after a newer owner of an overlapping span claimed
// it (etcdcdc.CheckFences); in file sinks, each dispatcher in revision order per key
// (etcdcdc.CheckFileSinks). A mutation scenario must fail the check, naming a dropped event.
func (e *env) cdcCheck(checkpoint int64) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	root := etcdcdc.FenceRoot(e.clusterID, e.cf)
	_, cli := e.dataEtcd()
	hist, err := etcdcdc.ReadHistory(ctx, cli, e.cdc.created, 0, cdcSource, cdcMirror, root+"fence/")
	if err != nil {
		e.t.Fatalf("read the run's history: %v", err)
	}
	// A table removed during the run (kill-maintainer-mid-remove) is no longer replicated:
	// only the ranges configured at the end are checked.
	var src []etcdcdc.Event
	for _, ev := range hist[cdcSource] {
		if ev.Revision <= checkpoint && e.inSource(ev.Key) {
			src = append(src, ev)
		}
	}
	toSource := func(k []byte) (string, bool) { return strings.CutPrefix(string(k), cdcMirror) }
	var dataErr error
	var what string
	if e.info.Sink.Kind == etcdutil.SinkFile {
		records, nodes := e.fileRecords()
		dataErr = etcdcdc.CheckFileSinks(src, records)
		what = fmt.Sprintf("%d source events in (%d, %d], each in a file sink (%d records on %d nodes, %d repeats)",
			len(src), e.cdc.created, checkpoint, len(records), nodes, len(records)-len(src))
	} else {
		var dst []etcdcdc.Event
		for _, ev := range hist[cdcMirror] {
			if k, ok := toSource(ev.Key); !ok || e.inSource([]byte(k)) {
				dst = append(dst, ev)
			}
		}
		dataErr = etcdcdc.CheckHistory(src, dst, toSource)
		what = fmt.Sprintf("%d source events in (%d, %d], all in the mirror in order per key (%d mirror events, %d of them replays)",
			len(src), e.cdc.created, checkpoint, len(dst), replays(dst))
		if err := etcdcdc.CheckFences(root, hist[root+"fence/"], hist[cdcMirror]); err != nil {
			e.t.Errorf("mirror fence violated: %v", err)
		} else {
			e.t.Logf("fence: %d fence writes, every mirror write fenced, none after a newer owner's claim", len(hist[root+"fence/"]))
		}
	}
	switch {
	case e.sc.mutation:
		e.mutationCaught(dataErr)
	case dataErr != nil:
		e.t.Errorf("I8 violated: %v", dataErr)
	default:
		e.t.Logf("I8: %s", what)
	}
	// A floor, not a rate: etcd-outages freezes the source too, and a busy machine slows the load.
	if len(src) < minSourceEvents {
		e.t.Errorf("only %d source events under the checkpoint: the load did not run", len(src))
	}
}

// inSource reports whether key is in one of the changefeed's source ranges now.
func (e *env) inSource(key []byte) bool {
	k := string(key)
	for _, r := range e.info.Source.TableRanges() {
		if k >= r.Start && (r.End == "" || k < r.End) {
			return true
		}
	}
	return false
}

// fileRecords reads every node's file sink of the changefeed, keeping the ranges checked, and
// says how many nodes had one.
func (e *env) fileRecords() (out []etcdcdc.Record, nodes int) {
	e.t.Helper()
	for _, id := range e.ids() {
		rs, err := etcdcdc.ReadFileSink(filepath.Join(e.nodes[id].dataDir, "cdc"), e.cf)
		if errors.Is(err, os.ErrNotExist) {
			continue // the node never ran a dispatcher of cf
		}
		if err != nil {
			e.t.Fatalf("file sink of %s: %v", id, err)
		}
		if len(rs) > 0 {
			nodes++
		}
		for _, r := range rs {
			if e.inSource(r.Event().Key) {
				out = append(out, r)
			}
		}
	}
	return out, nodes
}

// mutationCaught asserts that the data check failed on an event the skip-first-event
// failpoint dropped (logged by the dropping dispatcher with its key and revision).
func (e *env) mutationCaught(dataErr error) {
	e.t.Helper()
	var dropped []string
	for _, id := range e.ids() {
		b, _ := os.ReadFile(e.nodes[id].logPath)
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, "skip-first-event: event dropped") {
				continue
			}
			var l struct {
				Key      string `json:"key"`
				Revision int64  `json:"revision"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Key != "" {
				dropped = append(dropped, fmt.Sprintf("%q", l.Key))
			}
		}
	}
	if len(dropped) == 0 {
		e.t.Errorf("the mutation dropped no event: nothing to catch")
		return
	}
	if dataErr == nil {
		e.t.Errorf("MUTATION NOT CAUGHT: the data check passed although %v dropped events %v", failpoints.SkipFirstEvent, dropped)
		return
	}
	for _, k := range dropped {
		if strings.Contains(dataErr.Error(), k) {
			e.t.Logf("MUTATION caught: the data check names dropped key %s:\n%s", k, tail([]byte(dataErr.Error()), 1024))
			return
		}
	}
	e.t.Errorf("the data check failed, but on no dropped key %v: %v", dropped, dataErr)
}

// replays counts the mirror's puts of a value the key already had before: values are unique
// per load write, so each is a replay after a handoff.
func replays(mirror []etcdcdc.Event) int {
	seen := map[string]bool{}
	n := 0
	for _, e := range mirror {
		k := string(e.Key) + "\x00" + string(e.Value)
		if !e.Delete && seen[k] {
			n++
		}
		seen[k] = true
	}
	return n
}
