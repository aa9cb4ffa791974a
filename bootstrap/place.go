package bootstrap

// Placing what the nodes reported: which working dispatchers the plan keeps, which overlapping
// ones it removes (Conflicts), and which key ranges nobody serves (Absent) with the ts each
// resumes from. Restore (restore.go) collects the reports first.

import (
	"bytes"
	"slices"
	"sort"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// place keeps the working dispatchers no operator owns, group by group: one that overlaps a
// claim is a conflict; among the rest, overlapping ones are resolved by priority.
//
// Replicating is written over the index's array as the groups are read, in the same group
// order: what a group keeps is never more than it holds, so the list never overtakes what is
// still to be read. The index is not searched any more.
func (c *collector) place() {
	groups := c.index.groups()
	c.plan.Replicating = c.index.all[:0]
	c.keptFrom = make([]int32, groups+1)
	for g := 0; g < groups; g++ {
		c.keptFrom[g] = int32(len(c.plan.Replicating))
		free := c.index.placements(g)
		if len(free) == 0 {
			continue
		}
		if c.touched[g] {
			// Filtered in place.
			claims := c.claims[c.index.key(g)]
			all := free
			free = free[:0]
			for _, p := range all {
				switch {
				case named(c.owned, p.Dispatcher, p.Node):
				case overlapsAny(claims, p.Span):
					c.plan.Conflicts = append(c.plan.Conflicts, Conflict{Placement: p, Reason: ConflictOperator})
				default:
					free = append(free, p)
				}
			}
		}
		var conflicts []Conflict
		c.plan.Replicating, conflicts = pickNonOverlapping(c.plan.Replicating, free)
		c.plan.Conflicts = append(c.plan.Conflicts, conflicts...)
	}
	c.keptFrom[groups] = int32(len(c.plan.Replicating))
}

// sortClaims orders each group's claims by span, once every operator has claimed.
func (c *collector) sortClaims() {
	for _, claims := range c.claims {
		slices.SortFunc(claims, span.Compare)
	}
}

// overlapsAny reports whether s overlaps one of sorted (which do not overlap each other).
func overlapsAny(sorted []heartbeatpb.TableSpan, s heartbeatpb.TableSpan) bool {
	i := sort.Search(len(sorted), func(i int) bool { return string(sorted[i].EndKey) > string(s.StartKey) })
	return i < len(sorted) && span.Overlap(sorted[i], s)
}

// better orders candidates by priority: highest checkpoint, then node ID, then dispatcher ID.
func better(a, b Placement) bool {
	if a.Checkpoint != b.Checkpoint {
		return a.Checkpoint > b.Checkpoint
	}
	if a.Node != b.Node {
		return a.Node < b.Node
	}
	return a.Dispatcher.Less(b.Dispatcher)
}

// pickNonOverlapping appends to kept the candidates of one group (sorted by span) that do not
// overlap a better one. Overlapping candidates form runs (clusters); a run of one is kept at
// once, a longer run is resolved greedily by priority. Linear for the usual case of no overlap.
// kept may share cands' array, ending at or before cands[0] (place): each append writes at
// most as far as it has read, and a cluster is copied before it is resolved.
func pickNonOverlapping(kept, cands []Placement) ([]Placement, []Conflict) {
	var conflicts []Conflict
	for i := 0; i < len(cands); {
		j, end := i+1, string(cands[i].Span.EndKey)
		for j < len(cands) && string(cands[j].Span.StartKey) < end {
			end = max(end, string(cands[j].Span.EndKey))
			j++
		}
		if j == i+1 {
			kept = append(kept, cands[i])
		} else {
			k, c := resolveCluster(cands[i:j])
			slices.SortFunc(k, func(a, b Placement) int { return span.Compare(a.Span, b.Span) })
			kept = append(kept, k...)
			conflicts = append(conflicts, c...)
		}
		i = j
	}
	return kept, conflicts
}

// resolveCluster keeps candidates by priority unless they overlap one already kept.
func resolveCluster(cluster []Placement) (kept []Placement, conflicts []Conflict) {
	byPrio := append([]Placement(nil), cluster...)
	sort.Slice(byPrio, func(i, j int) bool { return better(byPrio[i], byPrio[j]) })
	for _, p := range byPrio {
		clash := false
		for _, k := range kept {
			if span.Overlap(k.Span, p.Span) {
				clash = true
				break
			}
		}
		if clash {
			conflicts = append(conflicts, Conflict{Placement: p, Reason: ConflictOverlap})
			continue
		}
		kept = append(kept, p)
	}
	return kept, conflicts
}

// absentPieces returns every key range of every configured table and mode that nothing covers:
// no kept dispatcher, no operator's claim. A piece resumes from the plan's checkpoint, or from
// the final checkpoint of a Stopped record that covers the whole piece when that is higher:
// that record proves the range was processed up to there.
func (c *collector) absentPieces() []Absent {
	// The groups that may have a gap are found in one pass (at a million one-span tables the
	// usual case is none, and no keys to build), and out is sized by them: grown by appends, a
	// million absent tables were 160 MB of copying. Their keys come from one arena (span.KeyArena).
	var arena span.KeyArena
	var gapped []int32
	for g := 0; g < c.index.groups(); g++ {
		if !c.wholeKept(g) {
			gapped = append(gapped, int32(g))
		}
	}
	out := make([]Absent, 0, len(gapped))
	for _, g := range gapped {
		key := c.index.key(int(g))
		kept := c.plan.Replicating[c.keptFrom[g]:c.keptFrom[g+1]]
		var claims []heartbeatpb.TableSpan
		if c.touched[g] {
			claims = c.claims[key]
		}
		for _, gap := range gaps(arena.TableSpan(key.table), kept, claims) {
			out = append(out, Absent{Span: gap, Mode: key.mode, ResumeTs: resumeTs(c.stoppedBy[key], gap, c.plan.Checkpoint)})
		}
	}
	return out
}

// wholeKept says whether group g is one kept span of its whole table with no claim on it, so
// it has no gap.
func (c *collector) wholeKept(g int) bool {
	kept := c.plan.Replicating[c.keptFrom[g]:c.keptFrom[g+1]]
	if len(kept) != 1 || !span.IsWholeTable(kept[0].Span) {
		return false
	}
	return !c.touched[g] || len(c.claims[c.index.key(g)]) == 0
}

// gaps returns the pieces of whole, a table's span, that neither kept (sorted, disjoint) nor
// claims (sorted) cover, merging the two lists in one sweep.
func gaps(whole heartbeatpb.TableSpan, kept []Placement, claims []heartbeatpb.TableSpan) []heartbeatpb.TableSpan {
	table := whole.TableId
	var out []heartbeatpb.TableSpan
	reached := whole.StartKey
	visit := func(s heartbeatpb.TableSpan) {
		if bytes.Compare(s.StartKey, reached) > 0 {
			out = append(out, heartbeatpb.TableSpan{TableId: table, StartKey: reached, EndKey: s.StartKey})
		}
		if bytes.Compare(s.EndKey, reached) > 0 {
			reached = s.EndKey
		}
	}
	i, j := 0, 0
	for i < len(kept) || j < len(claims) {
		if j == len(claims) || (i < len(kept) && span.Compare(kept[i].Span, claims[j]) <= 0) {
			visit(kept[i].Span)
			i++
		} else {
			visit(claims[j])
			j++
		}
	}
	if bytes.Compare(reached, whole.EndKey) < 0 {
		out = append(out, heartbeatpb.TableSpan{TableId: table, StartKey: reached, EndKey: whole.EndKey})
	}
	return out
}

func stoppedByGroup(stopped []Placement) map[groupKey][]Placement {
	out := make(map[groupKey][]Placement)
	for _, p := range stopped {
		g := groupKey{p.Span.TableId, p.Mode}
		out[g] = append(out[g], p)
	}
	return out
}

// resumeTs is the highest of floor and the final checkpoints of records covering all of s.
func resumeTs(records []Placement, s heartbeatpb.TableSpan, floor uint64) uint64 {
	resume := floor
	for _, r := range records {
		if span.Contains(r.Span, s) && r.Checkpoint > resume {
			resume = r.Checkpoint
		}
	}
	return resume
}

// named reports whether m lists node for dispatcher id.
func named(m map[heartbeatpb.DispatcherID][]string, id heartbeatpb.DispatcherID, node string) bool {
	for _, n := range m[id] {
		if n == node {
			return true
		}
	}
	return false
}
