package etcdcdc

import "time"

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
