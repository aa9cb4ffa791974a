package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/ts"
)

// printIntro prints, once, how to reach the playground.
func printIntro(out io.Writer, f playgroundFlags, dir string, certs playgroundTLS, children []*child, load *demoLoad) {
	ctlFlags := ""
	if f.etcdURL != defaultEtcd {
		ctlFlags = " --etcd " + f.etcdURL
	}
	// With TLS the status API is HTTPS: ctl's spans and operators need the CA and the ctl
	// certificate; status and nodes read etcd only but take the same flags.
	ctlFlags += certs.ctlArgs()
	tls := ""
	if certs.on() {
		tls = ", mutual TLS (certificates in " + certs.dir + ")"
	}
	over := fmt.Sprintf("over %d tables", f.tables)
	if f.dispatcher == etcdutil.EtcdDispatcher {
		over = "replicating " + demoSourcePrefix + " to the " + f.sink + " sink"
	}
	fmt.Fprintf(out, "tidemark playground: %d nodes, changefeed %q %s%s\n", f.nodes, demoChangefeed, over, tls)
	fmt.Fprintf(out, "  data and logs:  %s\n", dir)
	if f.dispatcher == etcdutil.EtcdDispatcher {
		fmt.Fprintf(out, "  %s\n", load.describe())
		if f.sink == etcdutil.SinkEtcd {
			fmt.Fprintf(out, "  compare:        tidemark ctl diff demo%s; etcdctl --endpoints %s get --prefix %s\n", ctlFlags, f.etcdURL, demoMirrorPrefix)
		}
	}
	fmt.Fprintf(out, "  status:         tidemark ctl status%s\n", ctlFlags)
	fmt.Fprintf(out, "  nodes:          tidemark ctl nodes%s\n", ctlFlags)
	fmt.Fprintf(out, "  spans:          tidemark ctl spans%s\n", ctlFlags)
	fmt.Fprintf(out, "  etcd:           etcdctl --endpoints %s get --prefix /tidemark/%s/\n", f.etcdURL, playgroundCluster)
	for _, c := range children {
		fmt.Fprintf(out, "  %s pid %d  grpc %s  %s://%s/api/v1/status  log %s\n",
			c.id, c.cmd.Process.Pid, c.addr, certs.scheme(), c.statusAddr, c.logPath)
	}
	fmt.Fprintln(out, "Kill a node to watch failover (nothing is restarted); Ctrl-C stops everything.")
}

// watchStatus prints a status line every second until ctx ends.
// meter, for the etcd demo, adds events/s replicated and the lag.
func watchStatus(ctx context.Context, cli *clientv3.Client, keys etcdutil.Keys, children []*child, meter *dataPlaneMeter, out io.Writer) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			fmt.Fprintln(out, statusLine(ctx, cli, keys, children, meter, now))
		}
	}
}

// statusLine reads the demo changefeed's status and the registry and renders one line, e.g.
//
//	11:02:03 spans 1000/1000 replicating | maintainer node-2 epoch 57 | checkpoint lag 0.4s | nodes 2/3 up, gone: node-1 (signal: killed)
func statusLine(ctx context.Context, cli *clientv3.Client, keys etcdutil.Keys, children []*child, meter *dataPlaneMeter, now time.Time) string {
	ctx, cancel := context.WithTimeout(ctx, 900*time.Millisecond)
	defer cancel()
	parts := []string{now.Format(time.TimeOnly)}
	st, err := etcdutil.GetStatus(ctx, cli, keys, demoChangefeed)
	switch {
	case errors.Is(err, etcdutil.ErrNotFound):
		parts = append(parts, "no status yet (waiting for a maintainer)")
	case err != nil:
		parts = append(parts, "status unreadable: "+err.Error())
	default:
		spans := fmt.Sprintf("spans %d/%d replicating", st.Spans["replicating"],
			st.Spans["absent"]+st.Spans["scheduling"]+st.Spans["replicating"])
		if !st.Bootstrapped {
			spans = "bootstrapping"
		}
		parts = append(parts, spans,
			fmt.Sprintf("operators %d", st.Operators),
			fmt.Sprintf("maintainer %s epoch %d", dash(st.Maintainer), st.Epoch),
			checkpointLag(st.CheckpointTs, now))
		if meter != nil {
			parts = append(parts, meter.part(ctx, cli, st.CheckpointTs, now))
		}
		if len(st.SpanErrors) > 0 {
			parts = append(parts, spanErrorsSummary(st.SpanErrors))
		}
		// A maintainer publishes every second; an older status means it is gone and nobody has
		// taken over yet, which is the interesting moment of a failover.
		if age := now.Sub(st.UpdatedAt); !st.UpdatedAt.IsZero() && age > 3*time.Second {
			parts = append(parts, fmt.Sprintf("status %.0fs old", age.Seconds()))
		}
	}
	parts = append(parts, nodesSummary(ctx, cli, keys, children))
	if marks, err := etcdutil.ListUnhealthy(ctx, cli, keys); err == nil && len(marks) > 0 {
		names := make([]string, 0, len(marks))
		for _, m := range marks {
			names = append(names, m.Node)
		}
		parts = append(parts, "unhealthy: "+strings.Join(names, ", "))
	}
	return strings.Join(parts, " | ")
}

// nodesSummary says how many children run and are registered, and how the gone ones ended.
func nodesSummary(ctx context.Context, cli *clientv3.Client, keys etcdutil.Keys, children []*child) string {
	registered := map[string]bool{}
	if nodes, err := etcdutil.ListNodes(ctx, cli, keys); err == nil {
		for _, n := range nodes {
			registered[n.ID] = true
		}
	}
	up, regs := 0, 0
	var gone []string
	for _, c := range children {
		if registered[c.id] {
			regs++
		}
		if ok, err := c.exited(); ok {
			gone = append(gone, fmt.Sprintf("%s (%v)", c.id, exitText(err)))
			continue
		}
		up++
	}
	sort.Strings(gone)
	s := fmt.Sprintf("nodes %d/%d up, %d registered", up, len(children), regs)
	if len(gone) > 0 {
		s += ", gone: " + strings.Join(gone, ", ")
	}
	return s
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// maxRevision: a checkpoint below it is a source revision (no TSO of this century is that
// small: they start near 1<<58).
const maxRevision = 1 << 48

// checkpointLag renders how far the checkpoint trails now; a maintainer that has not computed
// one yet publishes 0, which is "unknown", not 56 years of lag.
func checkpointLag(cp uint64, now time.Time) string {
	if cp == 0 {
		return "checkpoint lag -"
	}
	if cp < maxRevision {
		// An etcd-dispatcher demo: its ts are source revisions, not clock readings.
		return fmt.Sprintf("checkpoint revision %d", cp)
	}
	return fmt.Sprintf("checkpoint lag %.1fs", ts.Lag(cp, now).Seconds())
}

// spanErrorsSummary names each node whose spans report errors, e.g.
// "sink errors: node-2 75 spans (write /d/sink/demo.jsonl: no space left on device)".
func spanErrorsSummary(errs map[string]etcdutil.NodeSpanErrors) string {
	nodes := make([]string, 0, len(errs))
	for n := range errs {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		msg := errs[n].Error
		if i := strings.LastIndex(msg, ": write "); i >= 0 {
			msg = msg[i+2:] // the cause, without the wrapping prefixes
		}
		out = append(out, fmt.Sprintf("%s %d spans (%s)", n, errs[n].Spans, msg))
	}
	return "sink errors: " + strings.Join(out, ", ")
}
