package server

import (
	"context"
	"sync"

	"go.uber.org/zap"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/heartbeatpb"
)

// inboxSize bounds each loop's inbox. A burst beyond it is dropped and resent by its sender.
const inboxSize = 8192

// worker is one changefeed on this node: its dispatcher manager loop and its campaign (which
// runs the maintainer loop while this node leads the changefeed).
type worker struct {
	id              string
	info            *latest[etcdutil.ChangefeedInfo]
	dmInbox         chan *heartbeatpb.Envelope
	maintainerInbox chan *heartbeatpb.Envelope
	cancel          context.CancelFunc
	done            chan struct{}

	views *views // snapshots for the status API, written by the loops
}

// workerSet maps changefeed IDs to workers. The transport's receive path reads it; the session
// loop changes it.
type workerSet struct {
	mu sync.RWMutex
	m  map[string]*worker
	// stopping holds the workers told to stop whose dispatchers may still be closing. The status
	// API lists them, so `ctl changefeed pause` returns only once nothing of the changefeed runs.
	stopping map[string]*worker
}

func newWorkerSet() *workerSet {
	return &workerSet{m: map[string]*worker{}, stopping: map[string]*worker{}}
}

// listStopping is the IDs of the changefeeds whose workers are still winding down.
func (ws *workerSet) listStopping() []string {
	ws.mu.RLock()
	defer ws.mu.RUnlock()
	out := make([]string, 0, len(ws.stopping))
	for id := range ws.stopping {
		out = append(out, id)
	}
	return out
}

func (ws *workerSet) get(id string) *worker {
	ws.mu.RLock()
	defer ws.mu.RUnlock()
	return ws.m[id]
}

func (ws *workerSet) list() []*worker {
	ws.mu.RLock()
	defer ws.mu.RUnlock()
	out := make([]*worker, 0, len(ws.m))
	for _, w := range ws.m {
		out = append(out, w)
	}
	return out
}

// reconcile starts a worker for every runnable changefeed that has none, stops those whose
// changefeed is gone or paused, and hands changed infos to running workers.
func (ws *workerSet) reconcile(ctx context.Context, wg *sync.WaitGroup, env *sessionEnv, feeds map[string]etcdutil.ChangefeedInfo) {
	log := env.server.log
	var stopped []*worker
	ws.mu.Lock()
	defer func() {
		ws.mu.Unlock()
		// Wait outside the lock: the receive path must not stall while a worker winds down.
		for _, w := range stopped {
			<-w.done
		}
		ws.mu.Lock()
		for _, w := range stopped {
			delete(ws.stopping, w.id)
		}
		ws.mu.Unlock()
	}()
	for id, w := range ws.m {
		info, ok := feeds[id]
		if ok && info.State != "paused" {
			w.info.Set(info)
			continue
		}
		log.Info("stopping changefeed worker", zap.String("changefeed", id), zap.Bool("removed", !ok))
		w.cancel()
		stopped = append(stopped, w)
		delete(ws.m, id)
		ws.stopping[id] = w
	}
	for id, info := range feeds {
		if _, running := ws.m[id]; running || info.State == "paused" {
			continue
		}
		if err := info.Validate(); err != nil {
			log.Error("changefeed info in etcd is invalid; not running it", zap.String("changefeed", id), zap.Error(err))
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		w := &worker{
			id:              id,
			info:            newLatest(info),
			dmInbox:         make(chan *heartbeatpb.Envelope, inboxSize),
			maintainerInbox: make(chan *heartbeatpb.Envelope, inboxSize),
			cancel:          cancel,
			done:            make(chan struct{}),
			views:           &views{},
		}
		ws.m[id] = w
		log.Info("starting changefeed worker", zap.String("changefeed", id), zap.Int("tables", len(info.Tables)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(w.done)
			w.run(wctx, env)
		}()
	}
}

// stopAll stops every worker and waits for them.
func (ws *workerSet) stopAll() {
	ws.mu.Lock()
	all := ws.m
	ws.m = map[string]*worker{}
	ws.mu.Unlock()
	for _, w := range all {
		w.cancel()
	}
	for _, w := range all {
		<-w.done
	}
}

// run runs the dispatcher manager loop and the campaign side by side until ctx ends.
func (w *worker) run(ctx context.Context, env *sessionEnv) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); w.runDispatcherManager(ctx, env) }()
	go func() { defer wg.Done(); w.runCampaign(ctx, env) }()
	wg.Wait()
}
