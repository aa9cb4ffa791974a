package etcdcdc

import (
	"context"
	"strconv"
	"sync/atomic"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"
)

// watchStreams: a node's watches of one source are spread over this many gRPC watch streams
// rather than all on one. The etcd client registers the watches of a stream one at a time (the
// next create goes out once etcd confirmed the last), and asks progress per stream; etcd 3.5+
// answers a progress request on a stream only when every watch on it is synced. With 33,000
// watches a node on one stream, one put into each of 100,000 tables took 54 s to be covered by
// the changefeed checkpoint (two runs of tests/bench -scenarios cdcscale); on 16 streams 23 and
// 29 s. Cold start and failover did not change beyond the runs' spread. The client keys its
// streams by the context's outgoing metadata, so a watch picks its stream with a metadata value.
const watchStreams = 16

// watchStreamKey is the metadata key that picks a watch's stream (sent to etcd, which ignores it).
const watchStreamKey = "tidemark-watch-stream"

// streamPicker hands out the streams round robin and remembers how many were opened, so that
// progress is asked on each of them (the client asks on one stream per request).
type streamPicker struct {
	next atomic.Uint64
}

// watchCtx is parent with the metadata of the next stream.
func (s *streamPicker) watchCtx(parent context.Context) context.Context {
	return streamCtx(parent, int((s.next.Add(1)-1)%watchStreams))
}

// opened is how many streams carry watches (or did): at most watchStreams.
func (s *streamPicker) opened() int { return int(min(s.next.Load(), watchStreams)) }

func streamCtx(parent context.Context, i int) context.Context {
	return metadata.AppendToOutgoingContext(parent, watchStreamKey, strconv.Itoa(i))
}

// requestProgress asks every opened stream for a progress notification of its watches.
func (s *streamPicker) requestProgress(ctx context.Context, cli *clientv3.Client) {
	for i := range s.opened() {
		// An error shows in the probe.
		_ = cli.RequestProgress(streamCtx(ctx, i))
	}
}
