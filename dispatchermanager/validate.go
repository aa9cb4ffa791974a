package dispatchermanager

import (
	"errors"
	"fmt"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// checkHeader rejects envelopes that are not maintainer-to-node traffic for this manager.
func (c *Config) checkHeader(env *heartbeatpb.Envelope) error {
	if err := env.CheckRoute(c.ClusterID, c.Changefeed, c.NodeID); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	switch {
	case env.Epoch == 0:
		return fmt.Errorf("%w: from %s: epoch 0", ErrInvalid, env.From)
	case env.Seq == 0:
		return fmt.Errorf("%w: from %s: seq 0", ErrInvalid, env.From)
	}
	switch env.Body.(type) {
	case *heartbeatpb.Envelope_BootstrapRequest, *heartbeatpb.Envelope_Schedule,
		*heartbeatpb.Envelope_Merge, *heartbeatpb.Envelope_HeartbeatResponse:
		return nil
	case nil:
		return fmt.Errorf("%w: from %s: no body", ErrInvalid, env.From)
	default:
		return fmt.Errorf("%w: from %s: %T is not sent to a node", ErrInvalid, env.From, env.Body)
	}
}

// checkBody validates the body completely before anything is applied, so that a batch is either
// malformed as a whole (nothing changes) or every request in it is well formed.
func (c *Config) checkBody(env *heartbeatpb.Envelope) error {
	var err error
	switch b := env.Body.(type) {
	case *heartbeatpb.Envelope_BootstrapRequest:
		err = c.checkBootstrap(b.BootstrapRequest)
	case *heartbeatpb.Envelope_Schedule:
		err = checkSchedule(b.Schedule)
	case *heartbeatpb.Envelope_Merge:
		err = checkMerge(b.Merge)
	case *heartbeatpb.Envelope_HeartbeatResponse:
		if b.HeartbeatResponse == nil {
			err = errors.New("nil heartbeat response")
		}
	}
	if err != nil {
		return fmt.Errorf("%w: from %s seq %d: %v", ErrInvalid, env.From, env.Seq, err)
	}
	return nil
}

func (c *Config) checkBootstrap(req *heartbeatpb.MaintainerBootstrapRequest) error {
	if req == nil {
		return fmt.Errorf("nil bootstrap request")
	}
	if req.Config.Id != c.Changefeed {
		return fmt.Errorf("bootstrap config of changefeed %q", req.Config.Id)
	}
	if c := req.Config.Catalogue; c != nil && len(c.Ranges) > 0 {
		if err := c.Check(); err != nil {
			return fmt.Errorf("bootstrap config: %v", err)
		}
		return nil
	}
	tables := req.Config.Tables
	ascending := true // the maintainer sends them in ID order: no set needed to find a repeat
	for i, t := range tables {
		if err := span.Validate(span.TableSpan(t.TableId)); err != nil {
			return fmt.Errorf("bootstrap config: table %d: %v", t.TableId, err)
		}
		ascending = ascending && (i == 0 || tables[i-1].TableId < t.TableId)
	}
	if ascending {
		return nil
	}
	seen := make(map[int64]bool, len(tables))
	for _, t := range tables {
		if seen[t.TableId] {
			return fmt.Errorf("bootstrap config: table %d listed twice", t.TableId)
		}
		seen[t.TableId] = true
	}
	return nil
}

func checkSchedule(b *heartbeatpb.ScheduleDispatcherRequests) error {
	if b == nil || len(b.Requests) == 0 {
		return fmt.Errorf("empty schedule batch")
	}
	for i := range b.Requests {
		if err := checkScheduleRequest(&b.Requests[i]); err != nil {
			return fmt.Errorf("schedule request %d: %w", i, err)
		}
	}
	return nil
}

func checkScheduleRequest(r *heartbeatpb.ScheduleDispatcherRequest) error {
	if err := checkCommon(r.Config.Id, r.Config.Span, r.Config.Mode, &r.Operator); err != nil {
		return err
	}
	if r.Operator.Kind != r.OperatorType {
		return fmt.Errorf("operator type %s but descriptor kind %s", r.OperatorType, r.Operator.Kind)
	}
	if r.Operator.Mode != r.Config.Mode {
		return fmt.Errorf("mode %s but descriptor mode %s", r.Config.Mode, r.Operator.Mode)
	}
	switch r.Action {
	case heartbeatpb.ActionCreate:
		switch r.OperatorType {
		case heartbeatpb.OpAdd, heartbeatpb.OpMove, heartbeatpb.OpSplit:
			return nil
		}
	case heartbeatpb.ActionRemove:
		switch r.OperatorType {
		// An Add removes only to take back its own create (its table left, or its phase timed
		// out); refusing that as malformed refused the whole envelope (sim seed 68640).
		case heartbeatpb.OpRemove, heartbeatpb.OpMove, heartbeatpb.OpSplit, heartbeatpb.OpAdd:
			return nil
		}
	case heartbeatpb.ActionPrepare:
		if r.OperatorType == heartbeatpb.OpMove && r.Operator.MakeBeforeBreak {
			return nil
		}
	default:
		return fmt.Errorf("unknown action %d", r.Action)
	}
	return fmt.Errorf("%s cannot be part of operator type %s", r.Action, r.OperatorType)
}

func checkMerge(b *heartbeatpb.MergeDispatcherRequests) error {
	if b == nil || len(b.Requests) == 0 {
		return fmt.Errorf("empty merge batch")
	}
	for i := range b.Requests {
		r := &b.Requests[i]
		if err := checkMergeRequest(r); err != nil {
			return fmt.Errorf("merge request %d: %w", i, err)
		}
	}
	return nil
}

func checkMergeRequest(r *heartbeatpb.MergeDispatcherRequest) error {
	if err := checkCommon(r.MergedId, r.MergedSpan, r.Mode, &r.Operator); err != nil {
		return err
	}
	if r.Operator.Kind != heartbeatpb.OpMerge || r.Operator.Mode != r.Mode {
		return fmt.Errorf("merge carries descriptor %s/%s", r.Operator.Kind, r.Operator.Mode)
	}
	if len(r.SourceIds) < 2 {
		return fmt.Errorf("merge needs at least 2 sources, got %d", len(r.SourceIds))
	}
	seen := make(map[heartbeatpb.DispatcherID]bool, len(r.SourceIds))
	for _, id := range r.SourceIds {
		if seen[id] || id == r.MergedId || id == (heartbeatpb.DispatcherID{}) {
			return fmt.Errorf("merge source %s repeated, zero or equal to the merged id", dispatcher.FormatID(id))
		}
		seen[id] = true
	}
	return nil
}

// checkCommon validates what schedule and merge requests share.
func checkCommon(id heartbeatpb.DispatcherID, s heartbeatpb.TableSpan, mode heartbeatpb.Mode,
	op *heartbeatpb.OperatorDescriptor) error {
	if id == (heartbeatpb.DispatcherID{}) {
		return fmt.Errorf("zero dispatcher id")
	}
	if op.Id == (heartbeatpb.OperatorID{}) {
		return fmt.Errorf("dispatcher %s: zero operator id", dispatcher.FormatID(id))
	}
	if err := span.Validate(s); err != nil {
		return fmt.Errorf("dispatcher %s: %v", dispatcher.FormatID(id), err)
	}
	if _, ok := heartbeatpb.Mode_name[int32(mode)]; !ok {
		return fmt.Errorf("dispatcher %s: unknown mode %d", dispatcher.FormatID(id), mode)
	}
	if _, ok := heartbeatpb.OperatorType_name[int32(op.Kind)]; !ok || op.Kind == heartbeatpb.OpUnknown {
		return fmt.Errorf("dispatcher %s: unknown operator kind %d", dispatcher.FormatID(id), op.Kind)
	}
	return nil
}

// tablesOf is the catalogue of a checked bootstrap config: its catalogue when it has ranges,
// else the per-table list of a maintainer that predates catalogues, folded into one.
func tablesOf(cfg *heartbeatpb.ChangefeedConfig) heartbeatpb.TableCatalogue {
	if c := cfg.Catalogue; c != nil && len(c.Ranges) > 0 {
		return *c
	}
	return heartbeatpb.CompactTables(cfg.Tables)
}
