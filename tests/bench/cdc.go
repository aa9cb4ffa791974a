package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/dispatcher/etcdcdc"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
)

// cdcConfig is the data-plane scenario: the same load replicated by tidemark into the file
// sink, by tidemark into an etcd mirror, and by `etcdctl make-mirror`, then the mirror's lag at
// a steady rate and through a kill -9 of a worker.
type cdcConfig struct {
	events, keys, perTxn, ranges, writers int
	lagRate                               float64
	lagWindow                             time.Duration
	kill                                  bool
	etcdctl                               string
}

// cdcResult holds the data-plane figures; NaN is a figure that could not be measured.
type cdcResult struct {
	Events int `json:"events"`
	// FileRate, MirrorRate, MakeMirrorRate: events per second from the first write of the load
	// to the last event durable (tidemark: the changefeed checkpoint covers the last revision;
	// make-mirror: the target holds the last revision's value).
	FileRate float64 `json:"file_events_per_s"`
	// MirrorPerTxn, MakeMirrorPerTxn: events per target transaction (target revisions used).
	MirrorPerTxn, MakeMirrorPerTxn float64
	MirrorRate                     float64 `json:"mirror_events_per_s"`
	MakeMirrorRate                 float64 `json:"make_mirror_events_per_s"`
	// LoadRate: how fast the source took the mirror phase's writes (a ceiling for the others).
	LoadRate float64 `json:"load_events_per_s"`
	// LagP50, LagP99: seconds from a write to the source until the mirror shows it, at LagRate.
	LagP50, LagP99 float64
	LagRate        float64 `json:"lag_rate_events_per_s"`
	// KillRecovery: kill -9 of a worker to the last event arriving 1 s or more late.
	KillRecovery float64  `json:"kill_recovery_s"`
	Errors       []string `json:"errors,omitempty"`
}

const (
	cfFile   = "cdcfile"
	cfMirror = "cdcmirror"
	// Destination prefixes in the target: tidemark's mirror and make-mirror's.
	tmPrefix = "/tm/"
	mmPrefix = "/mm/"
)

// runCDC measures the data plane on a fresh cluster with a source and a target etcd of its
// own (embedded here, so the servers and etcdctl reach them over the network like any other).
func runCDC(rc runConfig, cc cdcConfig) cdcResult {
	r := cdcResult{Events: cc.events, FileRate: math.NaN(), MirrorRate: math.NaN(), MakeMirrorRate: math.NaN(),
		LoadRate: math.NaN(), MirrorPerTxn: math.NaN(), MakeMirrorPerTxn: math.NaN(), LagP50: math.NaN(), LagP99: math.NaN(), LagRate: cc.lagRate, KillRecovery: math.NaN()}
	fail := func(what string, err error) { r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", what, err)) }
	srcSrv, src, err := startEtcd(rc.dir, "source")
	if err != nil {
		fail("source etcd", err)
		return r
	}
	defer srcSrv.Close()
	defer src.Close()
	dstSrv, dst, err := startEtcd(rc.dir, "target")
	if err != nil {
		fail("target etcd", err)
		return r
	}
	defer dstSrv.Close()
	defer dst.Close()
	ctx := context.Background()
	c, err := startCluster(rc, rc.nodes)
	if err != nil {
		fail("start", err)
		return r
	}
	defer c.close()
	srcURLs, dstURLs := strings.Join(srcSrv.ClientURLs(), ","), strings.Join(dstSrv.ClientURLs(), ",")
	spec := func(root string) loadSpec {
		return loadSpec{ks: keyspace{root: root, keys: cc.keys, ranges: cc.ranges}, events: cc.events, perTxn: cc.perTxn, writers: cc.writers}
	}

	// (a) the file sink.
	fileSpec := spec("/bench/file/")
	if rate, err := c.replicate(rc, cfFile, fileSpec, src, append([]string{"--source-etcd", srcURLs}, append(fileSpec.ks.rangeFlags(), "--sink", "file")...),
		func(lr loadResult) error { return checkFiles(ctx, c, src, fileSpec.ks.root, lr) }); err != nil {
		fail("file sink", err)
	} else {
		r.FileRate = rate
	}
	if _, err := c.ctl(rc.timeout, "changefeed", "remove", cfFile); err != nil {
		fail("remove", err)
	}

	// (b) the etcd mirror; the changefeed stays for the lag phase.
	mirrorSpec := spec("/bench/mirror/")
	var mirrorLoad loadResult
	dstRev0 := targetRev(ctx, dst)
	if rate, err := c.replicate(rc, cfMirror, mirrorSpec, src, append([]string{"--source-etcd", srcURLs}, append(mirrorSpec.ks.rangeFlags(),
		"--sink", "etcd", "--sink-etcd", dstURLs, "--sink-prefix", tmPrefix)...),
		func(lr loadResult) error {
			mirrorLoad = lr
			mirrorLoad.targetRev = targetRev(ctx, dst)
			return checkMirror(ctx, c, rc, src, dst, mirrorSpec.ks.root, lr)
		}); err != nil {
		fail("mirror sink", err)
	} else {
		r.MirrorRate = rate
		r.LoadRate = float64(mirrorLoad.written) / mirrorLoad.end.Sub(mirrorLoad.start).Seconds()
		r.MirrorPerTxn = float64(mirrorLoad.written) / float64(mirrorLoad.targetRev-dstRev0)
	}

	// (c) etcdctl make-mirror, same source etcd, same target etcd, same load shape.
	if rate, perTxn, err := makeMirror(ctx, rc, cc, src, dst, srcURLs, dstURLs, spec("/bench/mm/")); err != nil {
		fail("make-mirror", err)
	} else {
		r.MakeMirrorRate, r.MakeMirrorPerTxn = rate, perTxn
	}
	rc.logf("data plane: file %.0f, mirror %.0f, make-mirror %.0f events/s (load %.0f); events per target transaction: mirror %.1f, make-mirror %.1f",
		r.FileRate, r.MirrorRate, r.MakeMirrorRate, r.LoadRate, r.MirrorPerTxn, r.MakeMirrorPerTxn)

	if err := c.lagPhase(ctx, rc, cc, src, dst, mirrorSpec.ks, &r); err != nil {
		fail("lag", err)
	}
	return r
}

// startEtcd starts an embedded etcd of its own under dir/name (a source or a target the
// servers reach over the network like any other) and connects to it.
func startEtcd(dir, name string) (*embedetcd.Server, *clientv3.Client, error) {
	srv, err := embedetcd.Start(embedetcd.Config{Dir: filepath.Join(dir, name), Name: name, LogLevel: "panic"})
	if err != nil {
		return nil, nil, err
	}
	cli, err := etcdutil.Connect(context.Background(), srv.ClientURLs(), nil, 5*time.Second)
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	return srv, cli, nil
}

// replicate creates changefeed cf, waits for its spans, runs the load and returns events per
// second until the checkpoint covers the load's last revision; check then verifies the sink.
func (c *cluster) replicate(rc runConfig, cf string, spec loadSpec, src *clientv3.Client, flags []string, check func(loadResult) error) (float64, error) {
	args := append([]string{"changefeed", "create", cf, "--dispatcher", "etcd"}, flags...)
	if _, err := c.ctl(rc.timeout, args...); err != nil {
		return 0, err
	}
	if err := c.waitSpans(cf, spec.ks.ranges, rc.timeout); err != nil {
		return 0, err
	}
	lr, err := load(context.Background(), src, spec)
	if err != nil {
		return 0, err
	}
	rc.logf("%s: %d events written in %.1fs, revisions %d-%d", cf, lr.written, lr.end.Sub(lr.start).Seconds(), lr.firstRev, lr.lastRev)
	if err := c.waitCheckpoint(cf, lr.lastRev, rc.timeout); err != nil {
		return 0, err
	}
	took := time.Since(lr.start)
	rc.logf("%s: checkpoint covers revision %d after %.1fs, %.1fs after the last write", cf, lr.lastRev, took.Seconds(), time.Since(lr.end).Seconds())
	if err := check(lr); err != nil {
		return 0, err
	}
	return float64(lr.written) / took.Seconds(), nil
}

// waitSpans waits until cf's maintainer has at least n spans replicating and nothing in flight.
func (c *cluster) waitSpans(cf string, n int, d time.Duration) error {
	return c.waitFor(cf+" spans replicating", d, func() (bool, error) {
		st, ok := c.status(cf)
		return ok && st.Bootstrapped && st.Spans["replicating"] >= n && st.Operators == 0, nil
	})
}

func (c *cluster) waitCheckpoint(cf string, rev int64, d time.Duration) error {
	var last uint64
	err := c.waitFor(fmt.Sprintf("%s checkpoint at revision %d", cf, rev), d, func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		cp, err := etcdutil.GetCheckpoint(ctx, c.cli, c.keys, cf)
		last = cp
		return err == nil && cp >= uint64(rev), err
	})
	if err != nil {
		return fmt.Errorf("%w (checkpoint %d)", err, last)
	}
	return nil
}

// checkFiles reads every node's file sink and checks that every source event of the load is
// in one, with its value, in revision order per dispatcher and key.
func checkFiles(ctx context.Context, c *cluster, src *clientv3.Client, root string, lr loadResult) error {
	events, err := history(ctx, src, root, lr.firstRev-1, lr.lastRev)
	if err != nil {
		return err
	}
	records, err := c.readFileSinks(cfFile)
	if err != nil {
		return err
	}
	return checkFileEvents(events, records, lr.written)
}

// readFileSinks reads cf's file sink records of every node that ever ran, a killed one
// included (kill forgets the node, its data dir stays).
func (c *cluster) readFileSinks(cf string) ([]etcdcdc.Record, error) {
	dirs, err := filepath.Glob(filepath.Join(c.dir, "*", "cdc"))
	if err != nil {
		return nil, err
	}
	var records []etcdcdc.Record
	for _, dir := range dirs {
		recs, err := etcdcdc.ReadFileSink(dir, cf)
		if err != nil {
			return nil, err
		}
		records = append(records, recs...)
	}
	return records, nil
}

// checkFileEvents is the file sink's verdict: the source history must hold the load and every
// event of it must be in a record.
func checkFileEvents(events []etcdcdc.Event, records []etcdcdc.Record, written int) error {
	if len(events) != written {
		return fmt.Errorf("the source history holds %d events, the load wrote %d", len(events), written)
	}
	return etcdcdc.CheckFileSinks(events, records)
}

// checkMirror runs `ctl diff` (the mirror equals the source at the checkpoint) and the history
// check (every source event reached the mirror, in order per key).
func checkMirror(ctx context.Context, c *cluster, rc runConfig, src, dst *clientv3.Client, root string, lr loadResult) error {
	out, err := c.ctl(rc.timeout, "diff", cfMirror)
	if err != nil {
		return err
	}
	if !strings.Contains(out, "0 differing keys") {
		return fmt.Errorf("ctl diff: %s", strings.TrimSpace(out))
	}
	events, err := history(ctx, src, root, lr.firstRev-1, lr.lastRev)
	if err != nil {
		return err
	}
	top, err := dst.Get(ctx, tmPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(1),
		clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend))
	if err != nil || len(top.Kvs) == 0 {
		return fmt.Errorf("read the mirror's last revision: %v (%d keys)", err, len(top.Kvs))
	}
	mirror, err := history(ctx, dst, tmPrefix, 0, top.Kvs[0].ModRevision)
	if err != nil {
		return err
	}
	if len(events) != lr.written {
		return fmt.Errorf("the source history holds %d events, the load wrote %d", len(events), lr.written)
	}
	return etcdcdc.CheckHistory(events, mirror, func(k []byte) (string, bool) {
		s, ok := strings.CutPrefix(string(k), tmPrefix)
		return s, ok
	})
}

// findEtcdctl is the etcdctl to compare with: the -etcdctl flag's, else the one on PATH. Without
// one the make-mirror rows cannot be measured, and the error says how to get it rather than
// the bare exec failure a hard-coded path gave on a machine without Debian's etcd-client.
func findEtcdctl(flag string) (string, error) {
	name := flag
	if name == "" {
		name = "etcdctl"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("no etcdctl to compare with (%v): install Debian's etcd-client (make bench does when it runs as root) or pass -etcdctl PATH", err)
	}
	return p, nil
}

// makeMirror runs `etcdctl make-mirror` from the source's root to mmPrefix in the target,
// waits until it is watching (a marker key arrived), then times the same load until the
// target holds the last revision's value, and checks the copy with the diff tidemark uses.
func makeMirror(ctx context.Context, rc runConfig, cc cdcConfig, src, dst *clientv3.Client, srcURLs, dstURLs string, spec loadSpec) (rate, perTxn float64, err error) {
	root := spec.ks.root
	bin, err := findEtcdctl(cc.etcdctl)
	if err != nil {
		return 0, 0, err
	}
	logFile, err := os.Create(filepath.Join(rc.dir, "make-mirror.log"))
	if err != nil {
		return 0, 0, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "--endpoints", srcURLs, "make-mirror", "--prefix", root, "--dest-prefix", mmPrefix, dstURLs)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", bin, err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGKILL); _ = cmd.Wait() }()
	holds := func(key, val string) func() (bool, error) {
		return func() (bool, error) {
			resp, err := dst.Get(ctx, mmPrefix+strings.TrimPrefix(key, root))
			return err == nil && len(resp.Kvs) == 1 && string(resp.Kvs[0].Value) == val, err
		}
	}
	if _, err := src.Put(ctx, root+"ready", "1:0"); err != nil {
		return 0, 0, err
	}
	if err := waitUntil("make-mirror watching", rc.timeout, holds(root+"ready", "1:0")); err != nil {
		return 0, 0, err
	}
	rev0 := targetRev(ctx, dst)
	lr, err := load(ctx, src, spec)
	if err != nil {
		return 0, 0, err
	}
	if err := waitUntil("make-mirror holding the last revision", rc.timeout, holds(lr.lastKey, lr.lastValue)); err != nil {
		return 0, 0, err
	}
	took := time.Since(lr.start)
	perTxn = float64(lr.written) / float64(targetRev(ctx, dst)-rev0)
	rc.logf("make-mirror: the target holds revision %d after %.1fs, %.1fs after the last write (source took %.0f events/s)",
		lr.lastRev, took.Seconds(), time.Since(lr.end).Seconds(), float64(lr.written)/lr.end.Sub(lr.start).Seconds())
	res, err := etcdcdc.Diff(ctx, src, &etcdutil.SourceConfig{Prefix: root}, dst, mmPrefix, lr.lastRev)
	if err != nil {
		return 0, 0, err
	}
	if len(res.Diffs) > 0 {
		return 0, 0, fmt.Errorf("make-mirror's copy differs in %d keys, first %+v", len(res.Diffs), res.Diffs[0])
	}
	return float64(lr.written) / took.Seconds(), perTxn, nil
}

func waitUntil(what string, d time.Duration, cond func() (bool, error)) error {
	return (&cluster{}).waitFor(what, d, cond)
}

// targetRev is the target's current revision: each transaction adds one.
func targetRev(ctx context.Context, cli *clientv3.Client) int64 {
	resp, err := cli.Get(ctx, "\x00", clientv3.WithCountOnly())
	if err != nil {
		return 0
	}
	return resp.Header.Revision
}
