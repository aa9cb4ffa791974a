package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tidemark/tidemark/dispatcher/etcdcdc"
	"github.com/tidemark/tidemark/etcdutil"
)

// maxDiffLines bounds the differing keys printed as a table; --json lists them all.
const maxDiffLines = 1000

func newDiffCmd(f *ctlFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "diff NAME",
		Short: "Compare an etcd changefeed's mirror with its source at the changefeed checkpoint",
		Long: "diff reads the source's key ranges at the changefeed's checkpoint revision and the mirror's\n" +
			"keys under the sink prefix, and lists every key that is missing, extra or different.\n" +
			"Mirror keys outside the changefeed's key ranges (a range removed from it keeps what it had\n" +
			"mirrored) are counted in a note, not compared.\n" +
			"Exit status 0 when none differ, 1 otherwise. Run it once writes to the source stopped and\n" +
			"the checkpoint caught up; while the source changes, the mirror may be ahead of the checkpoint.",
		Example: "  tidemark ctl diff demo\n  tidemark ctl diff demo --json",
		Args:    exactArgs(1, "one argument, the changefeed name"),
		RunE: func(c *cobra.Command, args []string) error {
			return withCtl(c, f, func(ctx context.Context, env *ctlEnv) error { return diffChangefeed(ctx, env, args[0]) })
		},
	}
}

type diffJSON struct {
	Changefeed         string            `json:"changefeed"`
	Revision           int64             `json:"revision"`
	Keys               int               `json:"keys"`
	Differing          int               `json:"differing"`
	SourceChangedAfter bool              `json:"source_changed_after"`
	Diffs              []etcdcdc.KeyDiff `json:"diffs"`
	// OutsideRanges: mirror keys of no range the changefeed has now (a removed range's), not compared.
	OutsideRanges int      `json:"outside_ranges"`
	OutsideSample []string `json:"outside_sample,omitempty"`
}

func diffChangefeed(ctx context.Context, env *ctlEnv, name string) error {
	info, err := etcdutil.GetChangefeed(ctx, env.cli, env.keys, name)
	if err != nil {
		return notFoundHint(name, err)
	}
	if info.Source == nil || info.Sink == nil || info.Sink.Kind != etcdutil.SinkEtcd {
		return fmt.Errorf("changefeed %s has no etcd mirror to compare (dispatcher %q); diff needs --dispatcher etcd --sink etcd", name, info.DispatcherKind())
	}
	cp, err := etcdutil.GetCheckpoint(ctx, env.cli, env.keys, name)
	if err != nil {
		return fmt.Errorf("changefeed %s: read its checkpoint: %w", name, err)
	}
	rev := int64(max(cp, info.StartTs))
	srcTLS, err := tlsOrNil(info.Source.TLS)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	src, err := etcdutil.Connect(ctx, info.Source.Endpoints, srcTLS, 0)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	defer func() { _ = src.Close() }()
	dstTLS, err := tlsOrNil(info.Sink.TLS)
	if err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	dst, err := etcdutil.Connect(ctx, info.Sink.Endpoints, dstTLS, 0)
	if err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	defer func() { _ = dst.Close() }()
	res, err := etcdcdc.Diff(ctx, src, info.Source, dst, info.Sink.Prefix, rev)
	if err != nil {
		return err
	}
	if env.json {
		if err := env.printJSON(diffJSON{Changefeed: name, Revision: rev, Keys: res.Keys, Differing: len(res.Diffs),
			SourceChangedAfter: res.SourceChangedAfter, Diffs: res.Diffs, OutsideRanges: res.Outside, OutsideSample: res.OutsideSample}); err != nil {
			return err
		}
	} else {
		printDiffs(env, res)
	}
	if len(res.Diffs) > 0 {
		return fmt.Errorf("%d differing keys between changefeed %s's mirror and its source at revision %d", len(res.Diffs), name, rev)
	}
	return nil
}

func printDiffs(env *ctlEnv, res etcdcdc.DiffResult) {
	rows := [][]string{}
	for i, d := range res.Diffs {
		if i == maxDiffLines {
			fmt.Fprintf(env.out, "... and %d more (--json lists all)\n", len(res.Diffs)-i)
			break
		}
		what := "value differs"
		switch {
		case !d.InMirror:
			what = "missing in mirror"
		case !d.InSource:
			what = "only in mirror"
		}
		rows = append(rows, []string{d.SourceKey, d.MirrorKey, what, strconv.Quote(d.Source), strconv.Quote(d.Mirror)})
	}
	if len(rows) > 0 {
		_ = env.printTable([]string{"SOURCE-KEY", "MIRROR-KEY", "DIFFERENCE", "SOURCE", "MIRROR"}, rows)
	}
	fmt.Fprintf(env.out, "%d differing keys (%d source keys compared at revision %d)\n", len(res.Diffs), res.Keys, res.Revision)
	if res.Outside > 0 {
		// Removing a range stops its replication; it never deletes what the mirror holds.
		fmt.Fprintf(env.out, "note: %d mirror keys lie outside the changefeed's key ranges (left by a removed range; not compared), e.g. %s;\n"+
			"      delete them with etcdctl if they are not wanted\n", res.Outside, strings.Join(res.OutsideSample, " "))
	}
	if len(res.Diffs) > 0 && res.SourceChangedAfter {
		fmt.Fprintln(env.out, "note: the source changed after that revision; the mirror may be ahead of the checkpoint. Run diff again once writes stop.")
	}
}
