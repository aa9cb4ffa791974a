package bootstrap

import (
	"fmt"
	"sort"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// groupKey is one table in one mode: overlaps only matter inside a group.
type groupKey struct {
	table int64
	mode  heartbeatpb.Mode
}

// Restore turns the bootstrap responses into a plan. Every Working dispatcher of a configured
// table becomes a replicating span unless it overlaps a better one (higher checkpoint, then lower
// node ID, then lower dispatcher ID), in which case it is a Conflict; the rest of each table is
// absent. It fails only on a malformed config; bad records in responses become plan entries.
func Restore(cfg *heartbeatpb.ChangefeedConfig, responses map[string]*heartbeatpb.MaintainerBootstrapResponse,
	persistedCheckpoint uint64) (*Plan, error) {
	if err := ValidateConfig(cfg); err != nil {
		return nil, err
	}
	c := &collector{
		cfg:        cfg,
		tables:     make(map[int64]bool, len(cfg.Tables)),
		plan:       &Plan{Checkpoint: maxTs(persistedCheckpoint, cfg.StartTs)},
		candidates: make(map[groupKey][]Placement),
		seen:       make(map[reportKey]bool),
	}
	for _, t := range cfg.Tables {
		c.tables[t.TableId] = true
	}
	nodes := make([]string, 0, len(responses))
	for n := range responses {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, node := range nodes {
		if resp := responses[node]; resp != nil {
			c.collect(node, resp)
		}
	}
	plan := c.plan
	for _, g := range sortedGroups(c.candidates) {
		kept, conflicts := pickNonOverlapping(c.candidates[g])
		plan.Replicating = append(plan.Replicating, kept...)
		plan.Conflicts = append(plan.Conflicts, conflicts...)
	}
	plan.Absent = absentPieces(cfg, plan.Replicating, c.stopped, plan.Checkpoint)
	sortPlan(plan)
	return plan, nil
}

// reportKey is one dispatcher as reported by one node.
type reportKey struct {
	node string
	id   heartbeatpb.DispatcherID
}

// collector sorts the records of the responses into plan entries and overlap candidates.
type collector struct {
	cfg        *heartbeatpb.ChangefeedConfig
	tables     map[int64]bool
	plan       *Plan
	candidates map[groupKey][]Placement
	stopped    []Unresolved
	seen       map[reportKey]bool
}

func (c *collector) collect(node string, resp *heartbeatpb.MaintainerBootstrapResponse) {
	plan := c.plan
	plan.Checkpoint = maxTs(plan.Checkpoint, resp.CheckpointTs)
	for i := range resp.Dispatchers {
		st := &resp.Dispatchers[i]
		p := Placement{Span: st.Span, Mode: st.Mode, Node: node, Dispatcher: st.Id, Checkpoint: st.CheckpointTs}
		u, bad := malformed(p, st.State)
		if k := (reportKey{node, st.Id}); !bad && c.seen[k] {
			// Acting on a repeat would remove the dispatcher as its own conflict.
			u.Detail, bad = "dispatcher reported twice by its node", true
		} else {
			c.seen[k] = true
		}
		if bad {
			plan.Unresolved = append(plan.Unresolved, u)
			continue
		}
		switch st.State {
		case heartbeatpb.StateWorking:
			switch {
			case !c.tables[st.Span.TableId]:
				plan.Conflicts = append(plan.Conflicts, Conflict{Placement: p, Reason: ConflictTableRemoved})
			case st.Mode == heartbeatpb.ModeRedo && !c.cfg.Redo:
				plan.Conflicts = append(plan.Conflicts, Conflict{Placement: p, Reason: ConflictModeOff})
			default:
				g := groupKey{st.Span.TableId, st.Mode}
				c.candidates[g] = append(c.candidates[g], p)
			}
		case heartbeatpb.StateStopped:
			u := Unresolved{Kind: UnresolvedStopped, Node: node, Span: st.Span, Mode: st.Mode,
				Dispatcher: st.Id, Checkpoint: st.CheckpointTs, Detail: "stopped record awaiting acknowledgement"}
			c.stopped = append(c.stopped, u)
			plan.Unresolved = append(plan.Unresolved, u)
		case heartbeatpb.StateRemoved:
			// Already gone and released by the node: nothing to keep or undo.
		}
	}
	plan.Unresolved = append(plan.Unresolved, journal(node, resp)...)
}

// ValidateConfig reports why cfg cannot be restored, or nil.
func ValidateConfig(cfg *heartbeatpb.ChangefeedConfig) error {
	if cfg == nil {
		return fmt.Errorf("%w: nil changefeed config", ErrInvalid)
	}
	if cfg.Id == "" {
		return fmt.Errorf("%w: changefeed config without id", ErrInvalid)
	}
	seen := make(map[int64]bool, len(cfg.Tables))
	for _, t := range cfg.Tables {
		if err := span.Validate(span.TableSpan(t.TableId)); err != nil {
			return fmt.Errorf("%w: changefeed %s: table id %d out of range", ErrInvalid, cfg.Id, t.TableId)
		}
		if seen[t.TableId] {
			return fmt.Errorf("%w: changefeed %s: table %d listed twice", ErrInvalid, cfg.Id, t.TableId)
		}
		seen[t.TableId] = true
	}
	return nil
}

// malformed reports a dispatcher record the plan cannot place anywhere.
func malformed(p Placement, state heartbeatpb.ComponentState) (Unresolved, bool) {
	u := Unresolved{Kind: UnresolvedMalformed, Node: p.Node, Span: p.Span, Mode: p.Mode,
		Dispatcher: p.Dispatcher, Checkpoint: p.Checkpoint}
	if err := span.Validate(p.Span); err != nil {
		u.Detail = err.Error()
		return u, true
	}
	if p.Mode != heartbeatpb.ModeDefault && p.Mode != heartbeatpb.ModeRedo {
		u.Detail = fmt.Sprintf("unknown mode %d", p.Mode)
		return u, true
	}
	if state < heartbeatpb.StateWorking || state > heartbeatpb.StateRemoved {
		u.Detail = fmt.Sprintf("unknown state %d", state)
		return u, true
	}
	return u, false
}

// journal lists a node's in-flight requests; restoring them as operators is later work.
func journal(node string, resp *heartbeatpb.MaintainerBootstrapResponse) []Unresolved {
	var out []Unresolved
	for _, op := range resp.Operators {
		r := op.Request
		out = append(out, Unresolved{Kind: UnresolvedJournal, Node: node, Operator: r.Operator.Id,
			Span: r.Config.Span, Mode: r.Config.Mode, Dispatcher: r.Config.Id, Checkpoint: op.FinalCheckpointTs,
			Detail: fmt.Sprintf("%v %v stage %v", r.OperatorType, r.Action, op.Stage)})
	}
	for _, m := range resp.MergeOperators {
		r := m.Request
		out = append(out, Unresolved{Kind: UnresolvedMerge, Node: node, Operator: r.Operator.Id,
			Span: r.MergedSpan, Mode: r.Mode, Dispatcher: r.MergedId, Checkpoint: m.MergedCheckpointTs,
			Detail: fmt.Sprintf("merge of %d stage %v", len(r.SourceIds), m.Stage)})
	}
	return out
}

func sortedGroups(m map[groupKey][]Placement) []groupKey {
	out := make([]groupKey, 0, len(m))
	for g := range m {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].table != out[j].table {
			return out[i].table < out[j].table
		}
		return out[i].mode < out[j].mode
	})
	return out
}

// better orders candidates by priority: highest checkpoint, then node ID, then dispatcher ID.
func better(a, b Placement) bool {
	if a.Checkpoint != b.Checkpoint {
		return a.Checkpoint > b.Checkpoint
	}
	if a.Node != b.Node {
		return a.Node < b.Node
	}
	if a.Dispatcher.Hi != b.Dispatcher.Hi {
		return a.Dispatcher.Hi < b.Dispatcher.Hi
	}
	return a.Dispatcher.Lo < b.Dispatcher.Lo
}

// pickNonOverlapping keeps candidates of one group greedily by priority: a candidate that
// overlaps an already kept one is a conflict. Kept spans stay sorted by key, so each check is a
// binary search plus a look at both neighbours.
func pickNonOverlapping(cands []Placement) (kept []Placement, conflicts []Conflict) {
	sort.Slice(cands, func(i, j int) bool { return better(cands[i], cands[j]) })
	for _, c := range cands {
		i := sort.Search(len(kept), func(i int) bool { return span.Compare(kept[i].Span, c.Span) >= 0 })
		if (i > 0 && span.Overlap(kept[i-1].Span, c.Span)) || (i < len(kept) && span.Overlap(kept[i].Span, c.Span)) {
			conflicts = append(conflicts, Conflict{Placement: c, Reason: ConflictOverlap})
			continue
		}
		kept = append(kept, Placement{})
		copy(kept[i+1:], kept[i:])
		kept[i] = c
	}
	return kept, conflicts
}

// absentPieces returns every key range of every configured table and mode that no kept
// dispatcher serves. A piece resumes from checkpoint, or from the final checkpoint of a Stopped
// record that covers the whole piece when that is higher: that record proves the range was
// processed up to there.
func absentPieces(cfg *heartbeatpb.ChangefeedConfig, kept []Placement, stopped []Unresolved, checkpoint uint64) []Absent {
	byGroup := make(map[groupKey][]heartbeatpb.TableSpan)
	for _, p := range kept {
		g := groupKey{p.Span.TableId, p.Mode}
		byGroup[g] = append(byGroup[g], p.Span)
	}
	stoppedBy := make(map[groupKey][]Unresolved)
	for _, u := range stopped {
		g := groupKey{u.Span.TableId, u.Mode}
		stoppedBy[g] = append(stoppedBy[g], u)
	}
	modes := []heartbeatpb.Mode{heartbeatpb.ModeDefault}
	if cfg.Redo {
		modes = append(modes, heartbeatpb.ModeRedo)
	}
	var out []Absent
	for _, t := range cfg.Tables {
		for _, mode := range modes {
			g := groupKey{t.TableId, mode}
			for _, gap := range span.CheckCoverage(t.TableId, byGroup[g]).Gaps {
				resume := checkpoint
				for _, u := range stoppedBy[g] {
					if span.Contains(u.Span, gap) && u.Checkpoint > resume {
						resume = u.Checkpoint
					}
				}
				out = append(out, Absent{Span: gap, Mode: mode, ResumeTs: resume})
			}
		}
	}
	return out
}

func sortPlan(p *Plan) {
	sort.Slice(p.Replicating, func(i, j int) bool { return lessPlacement(p.Replicating[i], p.Replicating[j]) })
	sort.Slice(p.Absent, func(i, j int) bool {
		if c := span.Compare(p.Absent[i].Span, p.Absent[j].Span); c != 0 {
			return c < 0
		}
		return p.Absent[i].Mode < p.Absent[j].Mode
	})
	sort.SliceStable(p.Conflicts, func(i, j int) bool {
		return lessPlacement(p.Conflicts[i].Placement, p.Conflicts[j].Placement)
	})
	sort.SliceStable(p.Unresolved, func(i, j int) bool {
		a, b := p.Unresolved[i], p.Unresolved[j]
		if a.Node != b.Node {
			return a.Node < b.Node
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return span.Compare(a.Span, b.Span) < 0
	})
}

func lessPlacement(a, b Placement) bool {
	if c := span.Compare(a.Span, b.Span); c != 0 {
		return c < 0
	}
	if a.Mode != b.Mode {
		return a.Mode < b.Mode
	}
	if a.Node != b.Node {
		return a.Node < b.Node
	}
	return a.Dispatcher.Lo < b.Dispatcher.Lo
}

func maxTs(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}
