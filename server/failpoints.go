package server

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/pingcap/failpoint"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/failpoints"
	"github.com/tidemark/tidemark/heartbeatpb"
)

// mountFailpoints serves GET/PUT/DELETE /debug/failpoints. In a normal build the markers are
// no-ops, so enabling one changes nothing; the listing says whether they are compiled in.
func (s *Server) mountFailpoints(mux *http.ServeMux) {
	h := failpoints.NewHandler()
	mux.Handle(failpoints.Prefix, h)
	mux.Handle(failpoints.Prefix+"/", h)
}

// afterSend evaluates the failpoints of the steps whose messages were just handed to the
// transport: each operator phase, merges and bootstrap requests. It runs on the maintainer loop,
// so a held failpoint freezes this maintainer right after the step, as a crash there would.
func afterSend(ctx context.Context, msgs []*heartbeatpb.Envelope, log *zap.Logger) {
	for _, env := range msgs {
		// The destination tells a chaos test which node the step involves.
		log, to := log.With(zap.String("to", env.To)), env.To
		switch b := env.Body.(type) {
		case *heartbeatpb.Envelope_BootstrapRequest:
			failpoint.Inject("bootstrap-request-sent", func(v failpoint.Value) {
				holdFailpoint(ctx, log, failpoints.BootstrapSent, to, v)
			})
		case *heartbeatpb.Envelope_Merge:
			failpoint.Inject("operator-merge-sent", func(v failpoint.Value) {
				holdFailpoint(ctx, log, failpoints.MergeSent, to, v)
			})
		case *heartbeatpb.Envelope_Schedule:
			for i := range b.Schedule.Requests {
				afterPhaseSent(ctx, &b.Schedule.Requests[i], to, log)
			}
		}
	}
}

// afterPhaseSent is afterSend for one schedule request: one failpoint per operator kind and phase.
func afterPhaseSent(ctx context.Context, r *heartbeatpb.ScheduleDispatcherRequest, to string, log *zap.Logger) {
	create := r.Action == heartbeatpb.ActionCreate
	switch {
	case r.OperatorType == heartbeatpb.OpAdd:
		failpoint.Inject("operator-add-sent", func(v failpoint.Value) { holdFailpoint(ctx, log, failpoints.AddSent, to, v) })
	case r.OperatorType == heartbeatpb.OpRemove:
		failpoint.Inject("operator-remove-sent", func(v failpoint.Value) { holdFailpoint(ctx, log, failpoints.RemoveSent, to, v) })
	case r.OperatorType == heartbeatpb.OpMove && r.Action == heartbeatpb.ActionPrepare:
		failpoint.Inject("operator-move-prepare-sent", func(v failpoint.Value) { holdFailpoint(ctx, log, failpoints.MovePrepareSent, to, v) })
	case r.OperatorType == heartbeatpb.OpMove && !create:
		failpoint.Inject("operator-move-remove-sent", func(v failpoint.Value) { holdFailpoint(ctx, log, failpoints.MoveRemoveSent, to, v) })
	case r.OperatorType == heartbeatpb.OpMove:
		failpoint.Inject("operator-move-add-sent", func(v failpoint.Value) { holdFailpoint(ctx, log, failpoints.MoveAddSent, to, v) })
	case r.OperatorType == heartbeatpb.OpSplit && !create:
		failpoint.Inject("operator-split-remove-sent", func(v failpoint.Value) { holdFailpoint(ctx, log, failpoints.SplitRemoveSent, to, v) })
	case r.OperatorType == heartbeatpb.OpSplit:
		failpoint.Inject("operator-split-add-sent", func(v failpoint.Value) { holdFailpoint(ctx, log, failpoints.SplitAddSent, to, v) })
	}
}

// holdFailpoint runs when an enabled server failpoint fires: it logs the step (the chaos tests
// wait for this line) and, for the value "hold", blocks until the failpoint is disabled or ctx
// ends; "hold-not:NODE" does so only for steps sent to another node than NODE. pingcap's pause
// would block before anything could be logged.
func holdFailpoint(ctx context.Context, log *zap.Logger, name, to string, v failpoint.Value) {
	s, _ := v.(string)
	if node, ok := strings.CutPrefix(s, failpoints.HoldValue+"-not:"); ok {
		if to == node {
			return
		}
		s = failpoints.HoldValue
	}
	log.Info("failpoint reached", zap.String("failpoint", name), zap.Any("value", v))
	if s != failpoints.HoldValue {
		return
	}
	path := failpoints.MustPath(name)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		terms, err := failpoint.Status(path)
		if err != nil || !strings.Contains(terms, failpoints.HoldValue) {
			log.Info("failpoint released", zap.String("failpoint", name))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// beforePersist and afterPersist mark the changefeed checkpoint's write to etcd.
func beforePersist(ctx context.Context, log *zap.Logger) {
	failpoint.Inject("checkpoint-before-persist", func(v failpoint.Value) {
		holdFailpoint(ctx, log, failpoints.BeforeCheckpointPersist, "", v)
	})
}

func afterPersist(ctx context.Context, log *zap.Logger) {
	failpoint.Inject("checkpoint-after-persist", func(v failpoint.Value) {
		holdFailpoint(ctx, log, failpoints.AfterCheckpointPersist, "", v)
	})
}

// dispatchersClosing marks a dispatcher manager loop that stopped (its session ended, or the
// node stops) just before it closes its dispatchers. sleep(MS) there is a node that acts late
// on a lost session (paused or starved right then): its dispatchers' goroutines still run for
// MS, and only the sinks' own fences keep their late writes out of spans others already own
// (tests/failover cdc-pause-worker-past-ttl).
func dispatchersClosing() {
	failpoint.Inject("dispatchers-close-late", func() {})
}
