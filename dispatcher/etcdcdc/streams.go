package etcdcdc

import (
	"context"
	"errors"
	"sync/atomic"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// watchStreams: a node's watches of one source are spread over this many gRPC watch streams
// rather than all on one. The etcd client registers the watches of a stream one at a time (the
// next create goes out once etcd confirmed the last), and asks progress per stream; etcd 3.5+
// answers a progress request on a stream only when every watch on it is synced. With 33,000
// watches a node on one stream, one put into each of 100,000 tables took 54 s to be covered by
// the changefeed checkpoint (two runs of tests/bench -scenarios cdcscale); on 16 streams 23 and
// 29 s. Cold start and failover did not change beyond the runs' spread.
const watchStreams = 16

// streamPicker hands out the streams round robin and remembers how many were opened, so that
// progress is asked on each of them. A stream is a clientv3.Watcher of its own on the factory's
// one client (one connection): a Watcher keeps one stream per distinct outgoing metadata of the
// contexts it is given, so a metadata value per stream would do too, but the client formats a
// context's metadata into its stream key on every Watch call, and at 16,000 watches opened on
// a node after a failover that formatting was a tenth of the node's CPU.
type streamPicker struct {
	watchers [watchStreams]clientv3.Watcher
	next     atomic.Uint64
	// asked counts the progress requests sent, for the debug log and for tests that check a
	// factory advancing by reads never sends one (progressmode.go).
	asked atomic.Uint64
}

func newStreamPicker(cli *clientv3.Client) *streamPicker {
	s := &streamPicker{}
	for i := range s.watchers {
		s.watchers[i] = clientv3.NewWatcher(cli) // no stream until its first Watch
	}
	return s
}

// watch opens a watch on the next stream.
func (s *streamPicker) watch(ctx context.Context, key string, opts ...clientv3.OpOption) clientv3.WatchChan {
	return s.watchers[(s.next.Add(1)-1)%watchStreams].Watch(ctx, key, opts...)
}

// opened is how many streams carry watches (or did): at most watchStreams.
func (s *streamPicker) opened() int { return int(min(s.next.Load(), watchStreams)) }

// requestProgress asks every opened stream for a progress notification of its watches.
func (s *streamPicker) requestProgress(ctx context.Context) {
	for i := range s.opened() {
		// An error shows in the probe.
		_ = s.watchers[i].RequestProgress(ctx)
		s.asked.Add(1)
	}
}

// close ends every stream and the watches on them.
func (s *streamPicker) close() error {
	var errs []error
	for _, w := range s.watchers {
		errs = append(errs, w.Close())
	}
	return errors.Join(errs...)
}
