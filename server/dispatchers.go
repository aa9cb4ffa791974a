package server

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/etcdutil"
)

// DispatcherEnv is what a dispatcher kind is given to build the factory of one changefeed on
// this node.
type DispatcherEnv struct {
	ClusterID  string
	Node       string
	Changefeed etcdutil.ChangefeedInfo
	// DataDir is this node's data directory; file sinks write below it.
	DataDir string
	Logger  *zap.Logger
	// OnSinkError counts a failed sink write in the node's metrics.
	OnSinkError func(error)
	// DataPlane reports replicated events and bytes, source and sink errors and the lag to
	// the node's metrics (tidemark_replicated_*, tidemark_source_errors_total,
	// tidemark_sink_errors_total, tidemark_replication_lag_*), labelled with the changefeed.
	DataPlane dispatcher.DataPlane
}

// DispatcherKind builds the dispatcher factory of one changefeed on this node. The closer, if
// any, runs after the changefeed's dispatchers are closed on this node (its sink, its source
// connections).
type DispatcherKind func(env DispatcherEnv) (dispatcher.Factory, io.Closer, error)

// SimDispatcher is the built-in kind "sim": simulated dispatchers that write their ts ranges to
// a JSON-lines file per changefeed under DataDir/sink, which the sink checker reads.
func SimDispatcher(env DispatcherEnv) (dispatcher.Factory, io.Closer, error) {
	sinkDir := filepath.Join(env.DataDir, "sink")
	if err := os.MkdirAll(sinkDir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("create sink dir: %w", err)
	}
	sink, err := dispatcher.NewFileSink(filepath.Join(sinkDir, env.Changefeed.ID+".jsonl"),
		dispatcher.WithSinkLogger(env.Logger), dispatcher.WithErrorHook(env.OnSinkError))
	if err != nil {
		return nil, nil, fmt.Errorf("open sink: %w", err)
	}
	factory, err := dispatcher.NewSimFactory(dispatcher.SimFactoryConfig{
		Node: env.Node, Changefeed: env.Changefeed.ID, Sink: sink, Logger: env.Logger,
	})
	if err != nil {
		_ = sink.Close()
		return nil, nil, err
	}
	return factory, sink, nil
}

// defaultDispatchers are the kinds every node knows; Config.Dispatchers adds to them.
func defaultDispatchers() map[string]DispatcherKind {
	return map[string]DispatcherKind{etcdutil.DefaultDispatcher: SimDispatcher, etcdutil.EtcdDispatcher: EtcdDispatcher}
}
