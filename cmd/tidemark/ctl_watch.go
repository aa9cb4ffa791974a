package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/wait"
)

// redrawCoalesce gathers the events of one burst (a maintainer's status, checkpoint and the
// registry often change together) into one redraw.
const redrawCoalesce = 100 * time.Millisecond

// clearScreen moves the cursor home and clears the terminal (ANSI), before each redraw.
const clearScreen = "\x1b[H\x1b[2J"

// followStatus prints the status, then follows every key of the cluster with one etcd watch and
// redraws after each change, until the command's context ends (Ctrl-C). It never polls.
func followStatus(c *cobra.Command, f *ctlFlags) error {
	ctx, stop := signalContext(c.Context())
	defer stop()
	cctx, cancel := context.WithTimeout(ctx, f.timeout)
	env, err := connectCtl(cctx, c, f)
	cancel()
	if err != nil {
		return err
	}
	defer func() { _ = env.cli.Close() }()
	rev, err := drawStatus(ctx, env, f.timeout)
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		changed := waitChange(wctx, env.cli, env.keys.Root(), rev)
		wcancel()
		if ctx.Err() != nil {
			break
		}
		if !changed {
			// The watch broke (compaction, etcd leader change): redraw and watch again.
			wait.Sleep(ctx, time.Second)
		}
		if rev, err = drawStatus(ctx, env, f.timeout); err != nil {
			fmt.Fprintf(env.out, "\nredraw failed: %v (retrying on the next change)\n", err)
		}
	}
	return nil
}

// waitChange blocks until a key under prefix changes after rev (true) or the watch fails
// (false), then lets the burst settle for redrawCoalesce.
func waitChange(ctx context.Context, cli *clientv3.Client, prefix string, rev int64) bool {
	wch := cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for resp := range wch {
		if resp.Err() != nil || resp.Canceled {
			return false
		}
		if len(resp.Events) > 0 {
			wait.Sleep(ctx, redrawCoalesce)
			return true
		}
	}
	return false
}

// drawStatus collects the status and draws it in one write (so the terminal never shows half a
// frame), returning the etcd revision it is as new as.
func drawStatus(ctx context.Context, env *ctlEnv, timeout time.Duration) (int64, error) {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The revision is read first: a change after it shows in the watch, so none is missed.
	resp, err := env.cli.Get(dctx, env.keys.Root(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("cannot read etcd: %w", err)
	}
	st, err := collectStatus(dctx, env, time.Now())
	if err != nil {
		return resp.Header.Revision, err
	}
	var buf bytes.Buffer
	frame := &ctlEnv{cli: env.cli, keys: env.keys, json: env.json, out: &buf}
	if env.json {
		b, err := json.Marshal(st)
		if err != nil {
			return 0, err
		}
		buf.Write(append(b, '\n'))
	} else {
		buf.WriteString(clearScreen)
		if err := printStatus(frame, st); err != nil {
			return 0, err
		}
		fmt.Fprintf(&buf, "\nrevision %d at %s; redrawn on every change in etcd, Ctrl-C to stop\n",
			resp.Header.Revision, time.Now().Format(time.TimeOnly))
	}
	_, err = env.out.Write(buf.Bytes())
	return resp.Header.Revision, err
}
