package etcdcdc

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/etcdutil"
)

// diffPage is how many keys one read of a diff takes.
const diffPage = 1000

// KeyDiff is one key where the mirror and the source disagree.
type KeyDiff struct {
	SourceKey, MirrorKey string
	InSource, InMirror   bool
	Source, Mirror       string // the values, when present
}

// DiffResult is what Diff found.
type DiffResult struct {
	Revision int64 // the source revision compared against
	Keys     int   // source keys compared
	Diffs    []KeyDiff
	// Outside counts the mirror keys whose source key lies in none of the changefeed's ranges
	// now: a range removed from the changefeed stops being replicated but keeps what it had
	// mirrored (removing a range never deletes data in the target), so those keys are not
	// compared. OutsideSample holds the first few, in key order.
	Outside       int
	OutsideSample []string
	// SourceChangedAfter: the source's ranges changed above Revision, so a difference may be
	// the mirror being ahead of the checkpoint, not behind.
	SourceChangedAfter bool
}

// Diff compares the mirror under destPrefix in dst with src's tables at revision rev: every
// source key must be in the mirror with its value, and the mirror must hold nothing else in
// the image of the changefeed's ranges. Mirror keys outside that image (a removed range's)
// are counted apart, not compared.
func Diff(ctx context.Context, src *clientv3.Client, cfg *etcdutil.SourceConfig, dst *clientv3.Client, destPrefix string, rev int64) (DiffResult, error) {
	res := DiffResult{Revision: rev}
	want := map[string]KeyDiff{} // by mirror key
	strip := cfg.MirrorSource()
	for _, r := range cfg.ScanRanges() {
		err := scan(ctx, src, r, rev, func(k, v []byte) {
			if _, ok := cfg.TableOf(string(k)); !ok {
				return // under a TableKeys prefix but not a table's key
			}
			mk := destPrefix + string(k[len(strip):])
			want[mk] = KeyDiff{SourceKey: string(k), MirrorKey: mk, InSource: true, Source: string(v)}
			res.Keys++
		})
		if err != nil {
			return res, fmt.Errorf("etcdcdc: diff: read source %v at revision %d: %w", src.Endpoints(), rev, err)
		}
		// Not a count: etcd counts before it filters by revision. Keys deleted since are
		// not seen here; the note this drives is a hint, not a verdict.
		changed, err := src.Get(ctx, r.Start, rangeEnd(r), clientv3.WithKeysOnly(), clientv3.WithMinModRev(rev+1))
		if err != nil {
			return res, fmt.Errorf("etcdcdc: diff: read source %v: %w", src.Endpoints(), err)
		}
		res.SourceChangedAfter = res.SourceChangedAfter || len(changed.Kvs) > 0
	}
	err := scan(ctx, dst, etcdutil.PrefixRange(destPrefix), 0, func(k, v []byte) {
		d, ok := want[string(k)]
		if ok && d.Source == string(v) {
			delete(want, string(k))
			return
		}
		if !ok {
			d = KeyDiff{SourceKey: strip + string(k[len(destPrefix):]), MirrorKey: string(k)}
			if _, in := cfg.TableOf(d.SourceKey); !in {
				if res.Outside++; len(res.OutsideSample) < outsideSample {
					res.OutsideSample = append(res.OutsideSample, d.MirrorKey)
				}
				return
			}
		}
		d.InMirror, d.Mirror = true, string(v)
		res.Diffs = append(res.Diffs, d)
		delete(want, string(k))
	})
	if err != nil {
		return res, fmt.Errorf("etcdcdc: diff: read mirror %v: %w", dst.Endpoints(), err)
	}
	for _, d := range want {
		res.Diffs = append(res.Diffs, d)
	}
	sortDiffs(res.Diffs)
	return res, nil
}

// outsideSample is how many keys outside the ranges a DiffResult names.
const outsideSample = 5

func rangeEnd(r etcdutil.KeyRange) clientv3.OpOption {
	if r.End == "" {
		return clientv3.WithFromKey()
	}
	return clientv3.WithRange(r.End)
}

// scan calls fn with every key of r at rev (0: now), in pages.
func scan(ctx context.Context, cli *clientv3.Client, r etcdutil.KeyRange, rev int64, fn func(k, v []byte)) error {
	start := r.Start
	for {
		opts := []clientv3.OpOption{rangeEnd(r), clientv3.WithLimit(diffPage), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := cli.Get(ctx, start, opts...)
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			fn(kv.Key, kv.Value)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		if rev == 0 {
			rev = resp.Header.Revision // the later pages read the same snapshot
		}
		start = string(append(bytes.Clone(resp.Kvs[len(resp.Kvs)-1].Key), 0))
	}
}

func sortDiffs(ds []KeyDiff) {
	sort.Slice(ds, func(i, j int) bool { return ds[i].MirrorKey < ds[j].MirrorKey })
}
