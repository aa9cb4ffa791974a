package etcdcdc

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// HistoryEndKey is the key ReadHistory writes to mark where the history it reads ends. It
// lies outside tidemark's keys and outside any sane source or mirror prefix.
const HistoryEndKey = "/tidemark-history-end"

// ReadHistory reads every event of cli's etcd in revisions (from, to] under each of prefixes,
// the way a dispatcher's watch sees them, grouped by prefix (an event under two prefixes is in
// both); to <= 0 means up to now. It is for checkers (CheckHistory, CheckFences) in tests and
// benches: it writes HistoryEndKey first and reads up to that write, so it needs no progress
// notification. Debian's etcd 3.4.23 answers RequestProgress even on a watch still catching
// up, with the current revision, ahead of the older events (etcd#15220), so a reader that
// stopped at a notification could miss events; and a reader that stopped at the first event at
// or above to would hang when no event under the prefixes is at to.
func ReadHistory(ctx context.Context, cli *clientv3.Client, from, to int64, prefixes ...string) (map[string][]Event, error) {
	end, err := cli.Put(ctx, HistoryEndKey, "")
	if err != nil {
		return nil, fmt.Errorf("etcdcdc: history of %v: mark its end: %w", cli.Endpoints(), err)
	}
	if to <= 0 || to > end.Header.Revision {
		to = end.Header.Revision
	}
	out := map[string][]Event{}
	if to <= from {
		return out, nil
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for resp := range cli.Watch(wctx, "\x00", clientv3.WithFromKey(), clientv3.WithRev(from+1)) {
		if err := resp.Err(); err != nil {
			return nil, fmt.Errorf("etcdcdc: history of %v from revision %d: %w", cli.Endpoints(), from+1, err)
		}
		for _, ev := range resp.Events {
			if ev.Kv.ModRevision > to || string(ev.Kv.Key) == HistoryEndKey && ev.Kv.ModRevision == end.Header.Revision {
				return out, nil
			}
			for _, p := range prefixes {
				if strings.HasPrefix(string(ev.Kv.Key), p) {
					out[p] = append(out[p], Event{Key: ev.Kv.Key, Value: ev.Kv.Value,
						Delete: ev.Type == clientv3.EventTypeDelete, Revision: ev.Kv.ModRevision})
				}
			}
		}
	}
	return nil, fmt.Errorf("etcdcdc: history of %v: the watch ended before revision %d: %v", cli.Endpoints(), to, ctx.Err())
}
