package node

import (
	"context"
	"fmt"
	"sort"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/server"
)

// Config is a node's configuration; see server.Config for every field.
type Config = server.Config

// Kind builds the dispatcher factory of one changefeed on this node; see server.DispatcherKind.
type Kind = server.DispatcherKind

// Env is what a Kind is given: the node, the changefeed's definition, the data dir, a logger
// and a hook that counts sink errors in the node's metrics.
type Env = server.DispatcherEnv

// Builtin is the name of the built-in simulated kind, the one a changefeed without a
// "dispatcher" field runs.
const Builtin = etcdutil.DefaultDispatcher

// New checks cfg and kinds and prepares a node without connecting anywhere; (*server.Server).Run
// runs it. Use it when the program needs the node's ID before it runs; Run otherwise.
func New(cfg Config, kinds map[string]Kind) (*server.Server, error) {
	merged := make(map[string]Kind, len(cfg.Dispatchers)+len(kinds))
	for name, k := range cfg.Dispatchers {
		merged[name] = k
	}
	for _, name := range sortedNames(kinds) {
		if _, dup := merged[name]; dup {
			return nil, fmt.Errorf("node: dispatcher kind %q is given twice, in Config.Dispatchers and in kinds", name)
		}
		merged[name] = kinds[name]
	}
	cfg.Dispatchers = merged
	return server.New(cfg) // validates the names and constructors
}

// Run runs a node with the built-in kinds and kinds until ctx ends. It returns nil after a
// graceful stop, or the error that keeps the node from running (a bad config, a kind without a
// constructor, etcd unreachable at start).
func Run(ctx context.Context, cfg Config, kinds map[string]Kind) error {
	srv, err := New(cfg, kinds)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

func sortedNames(kinds map[string]Kind) []string {
	names := make([]string, 0, len(kinds))
	for name := range kinds {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
