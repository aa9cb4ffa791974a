package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tidemark/tidemark/api"
	"github.com/tidemark/tidemark/etcdutil"
)

// stopPollInterval is how often `pause` and `remove` ask the nodes whether they still run a
// changefeed.
const stopPollInterval = 100 * time.Millisecond

// waitStopped returns once no live node runs changefeed cf any more, as each node's status API
// says (a node lists a changefeed until its dispatchers have closed). The state change in etcd
// is only a request: nodes act on it when their watch delivers it, so without this wait a user
// who pauses a changefeed and then writes to its source cannot know whether those writes were
// replicated. A node that left the registry has lost its lease and runs nothing; a node that
// serves no status API cannot be asked, and is named in a warning.
func waitStopped(ctx context.Context, env *ctlEnv, cf string) error {
	warned := map[string]bool{}
	for {
		running, err := nodesRunning(ctx, env, cf, warned)
		if err == nil && len(running) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("changefeed %s: the state is stored, but whether every node stopped it is unknown: %w", cf, err)
			}
			return fmt.Errorf("changefeed %s: the state is stored, but %s still ran it when --timeout ran out; "+
				"it stops there once that node sees the change or loses its lease (see `tidemark ctl nodes`)",
				cf, strings.Join(running, ", "))
		case <-time.After(stopPollInterval):
		}
	}
}

// nodesRunning is the registered nodes whose status API lists cf, running or stopping.
func nodesRunning(ctx context.Context, env *ctlEnv, cf string, warned map[string]bool) ([]string, error) {
	nodes, err := etcdutil.ListNodes(ctx, env.cli, env.keys)
	if err != nil {
		return nil, fmt.Errorf("cannot list nodes: %w", err)
	}
	var running []string
	var lastErr error
	for _, n := range nodes {
		if n.StatusAddr == "" {
			if !warned[n.ID] {
				warned[n.ID] = true
				fmt.Fprintf(env.errOut(), "warning: node %s serves no status API (--status-addr); cannot confirm it stopped %s\n", n.ID, cf)
			}
			continue
		}
		var feeds []api.ChangefeedSummary
		if err := env.getAPI(ctx, env.api().scheme+"://"+n.StatusAddr, "/api/v1/changefeeds", &feeds); err != nil {
			running, lastErr = append(running, n.ID), fmt.Errorf("node %s: %w", n.ID, err)
			continue
		}
		for _, f := range feeds {
			if f.ID == cf {
				running = append(running, n.ID)
				break
			}
		}
	}
	sort.Strings(running)
	if lastErr != nil {
		return running, lastErr
	}
	return running, nil
}
