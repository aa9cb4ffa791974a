package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/dispatcher/etcdcdc"
	"github.com/tidemark/tidemark/etcdutil"
)

// EtcdDispatcher is the built-in kind "etcd": every span watches its key range of the
// changefeed's source etcd and writes the changes to its sink, JSON-lines files under
// DataDir/cdc or a mirror in a target etcd.
func EtcdDispatcher(env DispatcherEnv) (dispatcher.Factory, io.Closer, error) {
	info := env.Changefeed
	if info.Source == nil || info.Sink == nil {
		return nil, nil, fmt.Errorf("%w: changefeed %s has dispatcher etcd but no source or sink", dispatcher.ErrInvalid, info.ID)
	}
	srcTLS, err := tlsOf(info.Source.TLS)
	if err != nil {
		return nil, nil, fmt.Errorf("source: %w", err)
	}
	var c closers
	var sink etcdcdc.Sink
	switch info.Sink.Kind {
	case etcdutil.SinkFile:
		fs, err := etcdcdc.NewFileSink(filepath.Join(env.DataDir, "cdc"), info.ID, info.Sink.FileMaxBytes, false)
		if err != nil {
			return nil, nil, err
		}
		sink = fs
		c = append(c, fs)
	case etcdutil.SinkEtcd:
		dstTLS, err := tlsOf(info.Sink.TLS)
		if err != nil {
			return nil, nil, fmt.Errorf("sink: %w", err)
		}
		// Not dialled here: an unreachable target is an error of every span, retried.
		cli, err := clientv3.New(clientv3.Config{Endpoints: info.Sink.Endpoints, TLS: dstTLS, Logger: zap.NewNop()})
		if err != nil {
			return nil, nil, fmt.Errorf("sink etcd at %v: %w", info.Sink.Endpoints, err)
		}
		c = append(c, cli)
		ms, err := etcdcdc.NewMirrorSink(etcdcdc.MirrorConfig{Client: cli, FenceRoot: etcdcdc.FenceRoot(env.ClusterID, info.ID),
			SourcePrefix: info.Source.MirrorSource(), DestPrefix: info.Sink.Prefix})
		if err != nil {
			_ = c.Close()
			return nil, nil, err
		}
		sink = ms
	default:
		return nil, nil, fmt.Errorf("%w: changefeed %s: unknown sink kind %q", dispatcher.ErrInvalid, info.ID, info.Sink.Kind)
	}
	f, err := etcdcdc.NewFactory(etcdcdc.FactoryConfig{Node: env.Node, Changefeed: info.ID, Source: info.Source,
		SourceTLS: srcTLS, Sink: sink, Logger: env.Logger, DataPlane: env.DataPlane})
	if err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	// The factory's source client goes before the sink and its client.
	return f, append(closers{f}, c...), nil
}

func tlsOf(files *etcdutil.TLSFiles) (*tls.Config, error) {
	if files == nil {
		return nil, nil
	}
	return etcdutil.ClientTLS(*files)
}

// closers closes each in order and joins the errors.
type closers []io.Closer

func (c closers) Close() error {
	var errs []error
	for _, x := range c {
		errs = append(errs, x.Close())
	}
	return errors.Join(errs...)
}
