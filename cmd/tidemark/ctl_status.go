package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/ts"
)

// nodeJSON is one node in `ctl nodes --json` and `ctl status --json`. A node is alive while its
// leased registry key exists; a node that only appears as a maintainer or span owner in a
// published status, with no registry key, is listed with alive=false.
type nodeJSON struct {
	ID         string    `json:"id"`
	Addr       string    `json:"addr"`
	StatusAddr string    `json:"status_addr,omitempty"`
	PID        int       `json:"pid"`
	Version    string    `json:"version,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	UptimeSec  float64   `json:"uptime_seconds"`
	// Spans counts the spans on the node over every changefeed, from the published statuses.
	Spans   int  `json:"spans"`
	Alive   bool `json:"alive"`
	Drained bool `json:"drained"`
	// Unhealthy: the node marked itself so (a sink failing too long); its spans move away.
	// Kept apart from Drained, which is an operator's request.
	Unhealthy       bool       `json:"unhealthy"`
	UnhealthySince  *time.Time `json:"unhealthy_since,omitempty"`
	UnhealthyReason string     `json:"unhealthy_reason,omitempty"`
}

// statusJSON is the output of `ctl status --json`.
type statusJSON struct {
	Cluster     string         `json:"cluster"`
	Nodes       []nodeJSON     `json:"nodes"`
	Changefeeds []cfStatusJSON `json:"changefeeds"`
}

// cfStatusJSON is one changefeed in `ctl status --json`.
type cfStatusJSON struct {
	ID                   string         `json:"id"`
	Tables               int            `json:"tables"`
	Maintainer           maintainerJSON `json:"maintainer"`
	CheckpointTs         uint64         `json:"checkpoint_ts"`
	CheckpointLagSeconds float64        `json:"checkpoint_lag_seconds"`
	// For an etcd-dispatcher changefeed, whose ts are source revisions: the revisions the
	// source is ahead of the checkpoint (absent when the source cannot be read), and the
	// revision below which the source may be compacted (the checkpoint). Source revisions
	// carry no time: checkpoint_lag_seconds is then the worst tidemark_replication_lag_seconds
	// of the nodes' /metrics (how long the oldest change a node saw has waited for the sink),
	// and lag_seconds_error says why it is 0 when no node answered.
	LagRevisions    *int64 `json:"lag_revisions,omitempty"`
	LagSecondsError string `json:"lag_seconds_error,omitempty"`
	CompactBelow    uint64 `json:"compact_below,omitempty"`
	SourceError     string `json:"source_error,omitempty"`
	// SpanErrors: per node, the spans whose dispatcher reports an error, and the message.
	SpanErrors   map[string]etcdutil.NodeSpanErrors `json:"span_errors,omitempty"`
	Spans        map[string]int                     `json:"spans"`
	Operators    int                                `json:"operators"`
	NodeSpans    map[string]int                     `json:"node_spans"`
	Bootstrapped bool                               `json:"bootstrapped"`
	UpdatedAt    time.Time                          `json:"updated_at"`
}

// maintainerJSON names a changefeed's maintainer; empty while no node has won the election.
type maintainerJSON struct {
	Node       string `json:"node"`
	Epoch      uint64 `json:"epoch"`
	StatusAddr string `json:"status_addr,omitempty"`
}

func newStatusCmd(f *ctlFlags) *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "status [--watch]",
		Short: "Show nodes and, per changefeed, maintainer, checkpoint, spans and operators",
		Long: "status prints the cluster once. With --watch it follows the cluster's keys in etcd and\n" +
			"redraws on every change (a maintainer publishes its status every second), until Ctrl-C;\n" +
			"--timeout then bounds each redraw, and --json prints one JSON document per line per change.",
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if watch {
				return followStatus(c, f)
			}
			return withCtl(c, f, func(ctx context.Context, env *ctlEnv) error {
				st, err := collectStatus(ctx, env, time.Now())
				if err != nil {
					return err
				}
				if env.json {
					return env.printJSON(st)
				}
				return printStatus(env, st)
			})
		},
	}
	cmd.Flags().BoolVar(&watch, "watch", false, "follow etcd and redraw on every change until Ctrl-C")
	return cmd
}

// collectStatus reads the registry and every changefeed's published status.
func collectStatus(ctx context.Context, env *ctlEnv, now time.Time) (statusJSON, error) {
	st := statusJSON{Cluster: env.keys.Cluster, Changefeeds: []cfStatusJSON{}}
	nodes, err := listNodes(ctx, env)
	if err != nil {
		return st, err
	}
	infos, err := etcdutil.ListChangefeeds(ctx, env.cli, env.keys)
	if err != nil {
		return st, fmt.Errorf("cannot list changefeeds: %w", err)
	}
	known := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		known[n.ID] = true
	}
	var addrs []string
	for _, n := range nodes {
		if n.StatusAddr != "" {
			addrs = append(addrs, n.StatusAddr)
		}
	}
	for _, info := range infos {
		cs, err := changefeedStatus(ctx, env, info, now)
		if err != nil {
			return st, err
		}
		if info.Source != nil {
			nodeLagSeconds(ctx, env, &cs, addrs)
		}
		// A maintainer or owner that is missing from the registry is dead or cut off, and
		// that is exactly what an operator reading the status needs to see.
		for _, id := range append([]string{cs.Maintainer.Node}, sortedKeys(cs.NodeSpans)...) {
			if id != "" && !known[id] {
				known[id] = true
				nodes = append(nodes, nodeJSON{ID: id, Alive: false})
			}
		}
		st.Changefeeds = append(st.Changefeeds, cs)
	}
	st.Nodes = nodes
	return st, nil
}

func changefeedStatus(ctx context.Context, env *ctlEnv, info etcdutil.ChangefeedInfo, now time.Time) (cfStatusJSON, error) {
	cs := cfStatusJSON{ID: info.ID, Tables: len(info.Tables), Spans: map[string]int{}, NodeSpans: map[string]int{}}
	pub, err := etcdutil.GetStatus(ctx, env.cli, env.keys, info.ID)
	switch {
	case errors.Is(err, etcdutil.ErrNotFound):
		// No maintainer has published yet: all spans still count as absent.
		cs.Spans["absent"] = len(info.Tables)
	case err != nil:
		return cs, fmt.Errorf("cannot read the status of changefeed %s: %w", info.ID, err)
	default:
		cs.Maintainer = maintainerJSON{Node: pub.Maintainer, Epoch: pub.Epoch, StatusAddr: pub.MaintainerStatusAddr}
		cs.CheckpointTs = pub.CheckpointTs
		cs.Operators = pub.Operators
		cs.Bootstrapped = pub.Bootstrapped
		cs.UpdatedAt = pub.UpdatedAt
		for k, v := range pub.Spans {
			cs.Spans[k] = v
		}
		for k, v := range pub.NodeSpans {
			cs.NodeSpans[k] = v
		}
		cs.SpanErrors = pub.SpanErrors
	}
	// The persisted checkpoint is the authoritative one; the status copy may be older.
	cp, err := etcdutil.GetCheckpoint(ctx, env.cli, env.keys, info.ID)
	if err != nil {
		return cs, fmt.Errorf("cannot read the checkpoint of changefeed %s: %w", info.ID, err)
	}
	cs.CheckpointTs = max(cs.CheckpointTs, cp)
	if cs.CheckpointTs == 0 {
		cs.CheckpointTs = info.StartTs
	}
	if info.Source != nil {
		sourceLag(ctx, &cs, info.Source)
		return cs, nil
	}
	cs.CheckpointLagSeconds = ts.Lag(cs.CheckpointTs, now).Seconds()
	return cs, nil
}

// sourceLag fills the revision lag of an etcd-dispatcher changefeed from its source's current
// revision; an unreadable source leaves the lag out and says why.
func sourceLag(ctx context.Context, cs *cfStatusJSON, src *etcdutil.SourceConfig) {
	cs.CompactBelow = cs.CheckpointTs
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	rev, err := sourceStartRevision(ctx, src)
	if err != nil {
		cs.SourceError = err.Error()
		return
	}
	lag := max(int64(rev)-int64(cs.CheckpointTs), 0)
	cs.LagRevisions = &lag
}

func printStatus(env *ctlEnv, st statusJSON) error {
	fmt.Fprintf(env.out, "cluster %s: %d of %d nodes alive\n\n", st.Cluster, countAlive(st.Nodes), len(st.Nodes))
	if err := printNodes(env, st.Nodes); err != nil {
		return err
	}
	fmt.Fprintln(env.out)
	rows := make([][]string, 0, len(st.Changefeeds))
	for _, c := range st.Changefeeds {
		lag := (time.Duration(c.CheckpointLagSeconds * float64(time.Second))).Round(100 * time.Millisecond).String()
		if c.CompactBelow > 0 {
			revs := "?"
			if c.LagRevisions != nil {
				revs = strconv.FormatInt(*c.LagRevisions, 10)
			}
			// The nodes' lag is of writes to a sink: milliseconds, not tenths, are its scale.
			lag = (time.Duration(c.CheckpointLagSeconds * float64(time.Second))).Round(time.Millisecond).String()
			if c.LagSecondsError != "" {
				lag = "?s"
			}
			lag = revs + " revisions, " + lag
		}
		rows = append(rows, []string{c.ID, dash(c.Maintainer.Node), strconv.FormatUint(c.Maintainer.Epoch, 10),
			strconv.FormatUint(c.CheckpointTs, 10), lag,
			strconv.Itoa(c.Spans["replicating"]), strconv.Itoa(c.Spans["scheduling"]), strconv.Itoa(c.Spans["absent"]),
			strconv.Itoa(c.Operators)})
	}
	if err := env.printTable([]string{"CHANGEFEED", "MAINTAINER", "EPOCH", "CHECKPOINT-TS", "LAG",
		"REPLICATING", "SCHEDULING", "ABSENT", "OPERATORS"}, rows); err != nil {
		return err
	}
	for _, c := range st.Changefeeds {
		if c.CompactBelow > 0 {
			fmt.Fprintf(env.out, "changefeed %s: its source may be compacted below revision %d", c.ID, c.CompactBelow)
			if c.SourceError != "" {
				fmt.Fprintf(env.out, " (source unreadable: %s)", c.SourceError)
			}
			fmt.Fprintln(env.out)
		}
	}
	printProblems(env, st, time.Now())
	return nil
}

// printProblems names every node whose spans report errors or that marked itself unhealthy,
// with the message: the first thing an operator needs when the checkpoint lag grows.
func printProblems(env *ctlEnv, st statusJSON, now time.Time) {
	var lines []string
	for _, c := range st.Changefeeds {
		for _, node := range slices.Sorted(maps.Keys(c.SpanErrors)) {
			e := c.SpanErrors[node]
			lines = append(lines, fmt.Sprintf("  changefeed %s: node %s: %d spans in error: %s", c.ID, node, e.Spans, e.Error))
		}
	}
	for _, n := range st.Nodes {
		if n.Unhealthy {
			since := ""
			if n.UnhealthySince != nil {
				since = fmt.Sprintf(" for %s", now.Sub(*n.UnhealthySince).Round(time.Second))
			}
			lines = append(lines, fmt.Sprintf("  node %s unhealthy (sink failing%s; its spans move to healthy nodes): %s",
				n.ID, since, n.UnhealthyReason))
		}
	}
	if len(lines) > 0 {
		fmt.Fprintf(env.out, "\nproblems:\n%s\n", strings.Join(lines, "\n"))
	}
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
