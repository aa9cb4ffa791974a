package bootstrap

import (
	"fmt"
	"sort"
	"time"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// groupKey is one table in one mode: overlaps only matter inside a group.
type groupKey struct {
	table int64
	mode  heartbeatpb.Mode
}

// reportKey is one dispatcher as reported by one node.
type reportKey struct {
	node string
	id   heartbeatpb.DispatcherID
}

// Restore turns the bootstrap responses into a plan. In order:
//
//  1. Every operator found in a journal is rebuilt (operator.Restore) from its descriptor and
//     the statuses reported for its dispatchers; nodes that did not answer count as lost. Newer
//     operators (higher ID) claim their spans first: a finished one claims what its result binds
//     or leaves absent, a running one the spans it holds. An operator whose claim overlaps an
//     earlier claim, whose table left the changefeed, or whose descriptor cannot be rebuilt is
//     not resumed but listed (Unresolved) and acknowledged.
//  2. Every other Working dispatcher of a configured table becomes a replicating span unless it
//     overlaps a claim or a better dispatcher (higher checkpoint, then lower node ID, then lower
//     dispatcher ID); then it is a Conflict.
//  3. The rest of each table is absent, resuming from the persisted checkpoint or from the
//     final checkpoint of a Stopped record that covers the whole piece, when that is higher.
//
// now is only the creation time of the rebuilt operators. Restore fails only on a malformed
// config; bad records in responses become plan entries.
func Restore(cfg *heartbeatpb.ChangefeedConfig, responses map[string]*heartbeatpb.MaintainerBootstrapResponse,
	persistedCheckpoint uint64) (*Plan, error) {
	return RestoreAt(cfg, responses, persistedCheckpoint, time.Time{})
}

// RestoreAt is Restore with the time the rebuilt operators are created at.
func RestoreAt(cfg *heartbeatpb.ChangefeedConfig, responses map[string]*heartbeatpb.MaintainerBootstrapResponse,
	persistedCheckpoint uint64, now time.Time) (*Plan, error) {
	tables, err := indexConfig(cfg)
	if err != nil {
		return nil, err
	}
	c := newCollector(cfg, tables, responses, persistedCheckpoint)
	// Journals first: they name the few dispatchers whose reports operators need, so only
	// those are kept in a map, not every one of a million.
	for _, node := range c.nodes {
		c.collectJournal(node, responses[node])
	}
	c.wantedFilter = newIDFilter(c.wanted)
	c.index.reserve(responses)
	for _, node := range c.nodes {
		c.collectDispatchers(node, responses[node])
	}
	c.index.seal()
	c.restoreOperators(now)
	c.sortClaims()
	c.place()
	c.plan.Absent = append(c.plan.Absent, c.absentPieces()...)
	sortPlan(c.plan)
	return c.plan, nil
}

// collector sorts the records of the responses into plan entries, candidates and operators.
type collector struct {
	cfg       *heartbeatpb.ChangefeedConfig
	nodes     []string // answering nodes, sorted
	live      map[string]bool
	plan      *Plan
	reports   map[reportKey]*heartbeatpb.DispatcherStatus
	stopped   []Placement // Stopped records: their final checkpoints
	stoppedBy map[groupKey][]Placement
	index     workingIndex // working dispatchers of configured tables and modes
	keptFrom  []int32      // group g kept plan.Replicating[keptFrom[g]:keptFrom[g+1]] (place)
	ops       map[heartbeatpb.OperatorID]*journaled
	// wanted: the nodes each dispatcher some journaled operator names is named on. Keyed by ID
	// alone: checked for every reported dispatcher, a string in the key would cost a hash each.
	wanted       map[heartbeatpb.DispatcherID][]string
	wantedFilter idFilter                              // says "no" for nearly every ID wanted does not hold, without a hash lookup
	owned        map[heartbeatpb.DispatcherID][]string // working dispatchers a kept operator owns, with their nodes
	claims       map[groupKey][]heartbeatpb.TableSpan
	// touched marks, by group number, the groups with a claim or an owned dispatcher. A million
	// groups and a few thousand operators: looking claims and owned up for every group and every
	// placement was a sixth of a restore, and nearly every answer was "none".
	touched []bool
}

func newCollector(cfg *heartbeatpb.ChangefeedConfig, tables tableIndex,
	responses map[string]*heartbeatpb.MaintainerBootstrapResponse, persisted uint64) *collector {
	modes := 1
	if cfg.Redo {
		modes = 2
	}
	c := &collector{
		cfg:     cfg,
		live:    make(map[string]bool, len(responses)),
		plan:    &Plan{Checkpoint: max(persisted, cfg.StartTs)},
		reports: make(map[reportKey]*heartbeatpb.DispatcherStatus),
		ops:     make(map[heartbeatpb.OperatorID]*journaled),
		owned:   make(map[heartbeatpb.DispatcherID][]string),
		claims:  make(map[groupKey][]heartbeatpb.TableSpan),
		wanted:  make(map[heartbeatpb.DispatcherID][]string),
		index:   newWorkingIndex(tables, modes),
	}
	c.touched = make([]bool, c.index.groups())
	for n, resp := range responses {
		if resp != nil {
			c.nodes = append(c.nodes, n)
			c.live[n] = true
		}
	}
	sort.Strings(c.nodes)
	return c
}

// collectJournal records a node's in-flight operators and the dispatchers they name.
func (c *collector) collectJournal(node string, resp *heartbeatpb.MaintainerBootstrapResponse) {
	c.plan.Checkpoint = max(c.plan.Checkpoint, resp.CheckpointTs)
	for i := range resp.Operators {
		c.journal(node, &resp.Operators[i].Request.Operator, &resp.Operators[i].Request)
	}
	for i := range resp.MergeOperators {
		c.journalMerge(node, &resp.MergeOperators[i])
	}
}

// collectDispatchers sorts a node's dispatchers into candidates, conflicts, records and
// malformed entries.
func (c *collector) collectDispatchers(node string, resp *heartbeatpb.MaintainerBootstrapResponse) {
	plan := c.plan
	dup := duplicates(resp.Dispatchers)
	for i := range resp.Dispatchers {
		st := &resp.Dispatchers[i]
		p := Placement{Span: st.Span, Mode: st.Mode, Node: node, Dispatcher: st.Id, Checkpoint: st.CheckpointTs}
		u, bad := c.malformed(p, st.State)
		if !bad && dup[i] {
			// Acting on a repeat would remove the dispatcher as its own conflict.
			u.Detail, bad = "dispatcher reported twice by its node", true
		}
		if bad {
			plan.Unresolved = append(plan.Unresolved, u)
			continue
		}
		if c.wantedFilter.mayHold(st.Id) && named(c.wanted, st.Id, node) {
			c.reports[reportKey{node, st.Id}] = st
		}
		switch st.State {
		case heartbeatpb.StateWorking:
			g, ok := c.index.group(st.Span.TableId, st.Mode)
			switch {
			case !c.index.tables.has(st.Span.TableId):
				plan.Conflicts = append(plan.Conflicts, Conflict{Placement: p, Reason: ConflictTableRemoved})
			case st.Mode == heartbeatpb.ModeRedo && !c.cfg.Redo:
				plan.Conflicts = append(plan.Conflicts, Conflict{Placement: p, Reason: ConflictModeOff})
			case !ok || !c.index.add(g, p):
				u.Detail = "not in the index reserved for the response" // reserve counts every status
				plan.Unresolved = append(plan.Unresolved, u)
			}
		case heartbeatpb.StateStopped:
			c.stopped = append(c.stopped, p)
		case heartbeatpb.StateRemoved:
			// Already gone and released by the node: nothing to keep or undo.
		}
	}
}

// duplicates marks every repeat of an earlier ID in list. Nodes report in ID order, so a
// strictly increasing list (the usual case) needs no map.
func duplicates(list []heartbeatpb.DispatcherStatus) []bool {
	sorted := true
	for i := 1; i < len(list) && sorted; i++ {
		sorted = list[i-1].Id.Less(list[i].Id)
	}
	if sorted {
		return make([]bool, len(list))
	}
	dup := make([]bool, len(list))
	seen := make(map[heartbeatpb.DispatcherID]bool, len(list))
	for i := range list {
		dup[i] = seen[list[i].Id]
		seen[list[i].Id] = true
	}
	return dup
}

// ValidateConfig reports why cfg cannot be restored, or nil.
func ValidateConfig(cfg *heartbeatpb.ChangefeedConfig) error {
	_, err := indexConfig(cfg)
	return err
}

// indexConfig validates cfg and numbers its tables.
func indexConfig(cfg *heartbeatpb.ChangefeedConfig) (tableIndex, error) {
	if cfg == nil {
		return tableIndex{}, fmt.Errorf("%w: nil changefeed config", ErrInvalid)
	}
	if cfg.Id == "" {
		return tableIndex{}, fmt.Errorf("%w: changefeed config without id", ErrInvalid)
	}
	var tables tableIndex
	var err error
	if c := cfg.CatalogueOnly(); c != nil {
		tables, err = newCatalogueIndex(c) // a maintainer's copy of a large changefeed (maintainer compactConfig)
	} else {
		tables, err = newTableIndex(cfg.Tables)
	}
	if err != nil {
		return tableIndex{}, fmt.Errorf("%w: changefeed %s: %v", ErrInvalid, cfg.Id, err)
	}
	return tables, nil
}

// malformed reports a dispatcher record the plan cannot place anywhere. span.InTable checks
// without building keys; span.Validate, which does, only runs to say what is wrong.
func (c *collector) malformed(p Placement, state heartbeatpb.ComponentState) (Unresolved, bool) {
	u := Unresolved{Kind: UnresolvedMalformed, Node: p.Node, Span: p.Span, Mode: p.Mode,
		Dispatcher: p.Dispatcher, Checkpoint: p.Checkpoint}
	if !span.InTable(p.Span) {
		if err := span.Validate(p.Span); err != nil {
			u.Detail = err.Error()
			return u, true
		}
	}
	if p.Mode != heartbeatpb.ModeDefault && p.Mode != heartbeatpb.ModeRedo {
		u.Detail = fmt.Sprintf("unknown mode %d", p.Mode)
		return u, true
	}
	if state < heartbeatpb.StateWorking || state > heartbeatpb.StatePrepared {
		u.Detail = fmt.Sprintf("unknown state %d", state)
		return u, true
	}
	return u, false
}
