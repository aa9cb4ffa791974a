package etcdcdc

import (
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// eventBatch is one watch response's events (at least one) as a batch through the last one.
func eventBatch(evs []*clientv3.Event) batch {
	b := batch{events: make([]Event, 0, len(evs))}
	for _, ev := range evs {
		b.events = append(b.events, Event{Key: ev.Kv.Key, Value: ev.Kv.Value,
			Delete: ev.Type == clientv3.EventTypeDelete, Revision: ev.Kv.ModRevision})
	}
	b.through = b.events[len(b.events)-1].Revision
	return b
}

// watchOptions watch rng strictly above rev, with progress notifications.
func watchOptions(rng keyRange, rev int64) []clientv3.OpOption {
	opts := []clientv3.OpOption{clientv3.WithRev(rev + 1), clientv3.WithProgressNotify()}
	if rng.end == nil {
		return append(opts, clientv3.WithFromKey())
	}
	return append(opts, clientv3.WithRange(string(rng.end)))
}

// rateMeter turns an event count into events per second, over windows of at least a second.
type rateMeter struct {
	at    time.Time
	count uint64
	rate  uint64
}

func (r *rateMeter) sample(now time.Time, count uint64) uint64 {
	if r.at.IsZero() {
		r.at, r.count = now, count
		return 0
	}
	if dt := now.Sub(r.at); dt >= time.Second {
		r.rate = uint64(float64(count-r.count) / dt.Seconds())
		r.at, r.count = now, count
	}
	return r.rate
}
