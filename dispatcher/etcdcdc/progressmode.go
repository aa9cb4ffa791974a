package etcdcdc

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// How idle spans advance, and why not always by progress notifications
//
// clientv3 resumes a broken watch stream by itself, from the revision after the last response
// it received, a progress notification's included. etcd before the fix of its issue 15220
// (3.4.24, 3.5.8; Debian's 3.4.23 is before it) answers RequestProgress at once with the
// store's revision, ahead of events it still owes a watch (watch.go). If the stream breaks
// between such an answer and those events, the client resumes above them and they never
// arrive: the gate in watch.go keeps the checkpoint below them, but the data is gone. The
// failover suite saw this on Debian's etcd when it killed the etcd leader: a key's first put
// never reached the mirror.
//
// So the factory asks for progress only while every source endpoint it is configured with has
// told it (Maintenance Status) that it runs a fixed version. Otherwise, and until it knows, it
// never sends RequestProgress, and the client's resume point then only ever follows events (a
// server's own periodic notifications go to synced watches in order with their events). An
// idle span advances by reading instead: every progress interval the factory ticks, and a
// dispatcher whose watch delivered nothing since the last tick reads in one transaction
// whether its range changed between its last revision and now (quietRange); if not, the
// checkpoint moves to the transaction's revision. What the read cannot see is a key created
// and deleted inside that window: its two events are still delivered by the watch and
// written, but after the checkpoint passed them. The reads cost one transaction per idle span
// per interval, so the interval stretches with the node's watches (readPerWatch).

// readPerWatch stretches the progress interval by the node's watches while idle spans advance
// by reads: a transaction per idle span, at most about 1,000 a second a node.
const readPerWatch = time.Millisecond

// versionCheckEvery: the source endpoints' versions are asked at the first probe and then every
// this many probes (an upgrade is seen within that many probe intervals).
const versionCheckEvery = 10

// progressRequestsSafe reports whether an etcd server of version v orders the answers to
// RequestProgress with the events a watch is owed: 3.4.24 and later 3.4, 3.5.8 and later
// 3.5, and every version from 3.6 on. An unparsable version is not safe.
func progressRequestsSafe(v string) bool {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return false
	}
	nums := make([]int, 3)
	for i, p := range parts {
		if i == 2 {
			// A patch version may carry a suffix (3.5.9-rc.0, 3.4.24+dfsg): its leading digits count.
			end := 0
			for end < len(p) && p[end] >= '0' && p[end] <= '9' {
				end++
			}
			p = p[:end]
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return false
		}
		nums[i] = n
	}
	if len(parts) < 3 {
		return false
	}
	major, minor, patch := nums[0], nums[1], nums[2]
	switch {
	case major != 3:
		return major > 3
	case minor == 4:
		return patch >= 24
	case minor == 5:
		return patch >= 8
	default:
		return minor > 5
	}
}

// progressPin fixes a factory's progress mode (tests).
type progressPin int

const (
	pinNone     progressPin = iota // by the source's versions
	pinRequests                    // progress requests whatever the versions
	pinReads                       // reads whatever the versions
)

// progressMode is how the factory's idle spans advance now: by requested progress
// notifications, or by reads on the ticks of a broadcast channel.
type progressMode struct {
	byReads atomic.Bool
	tick    atomic.Pointer[chan struct{}]
	// pinned: a test fixed the mode; the version checks leave it.
	pinned bool
	probes int // probes so far (the factory's run goroutine only)
	// checking: a version check is under way; versions, the last version each source endpoint
	// reported, belongs to it (an endpoint that never answered is absent).
	checking atomic.Bool
	versions map[string]string
	verdict  versionVerdict // what the last check concluded (its goroutine only)
	checks   atomic.Int64   // version checks completed
}

// versionVerdict is what a version check concluded, logged whenever it changes.
type versionVerdict int

const (
	verdictNone    versionVerdict = iota // no check yet
	verdictFixed                         // every endpoint runs a fixed etcd
	verdictUnknown                       // some endpoint never told its version; none is unfixed
	verdictUnfixed                       // some endpoint runs an etcd without the fix
)

func newProgressMode() *progressMode {
	m := &progressMode{versions: map[string]string{}}
	m.byReads.Store(true) // until every endpoint said it is fixed
	ch := make(chan struct{})
	m.tick.Store(&ch)
	return m
}

// ticks is the channel closed at the next read tick.
func (m *progressMode) ticks() <-chan struct{} { return *m.tick.Load() }

// ticked wakes every dispatcher waiting on ticks.
func (m *progressMode) ticked() {
	ch := make(chan struct{})
	close(*m.tick.Swap(&ch))
}

// pin fixes the mode before the factory runs (tests).
func (m *progressMode) pin(byReads bool) {
	m.pinned = true
	m.byReads.Store(byReads)
}

// checkVersions asks each source endpoint its version, on the first probe and every
// versionCheckEvery after, and sets the mode: progress requests only when every endpoint
// answered, now or before, with a fixed version. The asking runs beside the factory's loop (a
// dead endpoint takes probeTimeout to give up on, and the ticks must go on meanwhile), one at
// a time.
func (f *Factory) checkVersions(ctx context.Context) {
	m := f.mode
	if m.probes++; m.pinned || (m.probes-1)%versionCheckEvery != 0 || !m.checking.CompareAndSwap(false, true) {
		return
	}
	f.bg.Add(1)
	go func() {
		defer f.bg.Done()
		defer m.checking.Store(false)
		defer m.checks.Add(1)
		f.askVersions(ctx)
	}()
}

// askVersions asks every endpoint at once and sets the mode; it logs when its verdict changes
// (an endpoint silent at first that later reports an unfixed etcd gets its warning then).
func (f *Factory) askVersions(ctx context.Context) {
	m := f.mode
	eps := f.cli.Endpoints()
	answers := make([]string, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			if st, err := f.cli.Status(sctx, ep); err == nil {
				answers[i] = st.Version
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	for i, ep := range eps {
		if answers[i] != "" {
			m.versions[ep] = answers[i]
		}
	}
	verdict, unknown := judgeVersions(eps, m.versions)
	m.byReads.Store(verdict != verdictFixed)
	if verdict == m.verdict {
		return
	}
	m.verdict = verdict
	fields := []zap.Field{zap.Any("versions", m.versions)}
	switch verdict {
	case verdictFixed:
		f.log.Info("every source endpoint runs an etcd that orders progress notifications with events: idle spans advance by progress notifications", fields...)
	case verdictUnknown:
		f.log.Info("some source endpoints did not tell their etcd version yet: idle spans advance by reading their ranges until they do",
			append(fields, zap.Strings("unknown", unknown))...)
	default:
		f.log.Warn("a source endpoint runs an etcd that can answer progress requests ahead of a watch's events "+
			"(etcd-io/etcd#15220, fixed in 3.4.24 and 3.5.8), after which a broken watch stream skips them: "+
			"idle spans advance by reading their ranges instead (a transaction per idle span per interval). Upgrade the source etcd", fields...)
	}
}

// judgeVersions concludes from the last version each endpoint reported (versions) whether
// progress requests are safe on every one of eps, and names the endpoints never heard from. One
// unfixed endpoint outweighs any silent ones.
func judgeVersions(eps []string, versions map[string]string) (versionVerdict, []string) {
	verdict := verdictFixed
	var unknown []string
	for _, ep := range eps {
		v, ok := versions[ep]
		switch {
		case !ok:
			unknown = append(unknown, ep)
			verdict = max(verdict, verdictUnknown)
		case !progressRequestsSafe(v):
			verdict = verdictUnfixed
		}
	}
	return verdict, unknown
}

// readProgress, at a read tick, proves by a read how far the span's idle range is quiet and
// returns the revision the checkpoint may move to, or 0. A watch that delivered something since
// the last tick is not idle: its events move the checkpoint, and the read would only find them.
func readProgress(ctx context.Context, cli *clientv3.Client, rng keyRange, log *zap.Logger, g *progressGate) int64 {
	if g.last != g.lastRead {
		g.lastRead = g.last
		return 0
	}
	through, ok := quietRange(ctx, cli, rng, log, g.last, 0)
	if !ok {
		return 0
	}
	return g.proven(through)
}
