package span

import (
	"bytes"
	"sort"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// Coverage describes how a set of spans covers one table: the key ranges nobody covers and the
// key ranges covered more than once.
type Coverage struct {
	Gaps     []heartbeatpb.TableSpan
	Overlaps []heartbeatpb.TableSpan
}

// Exact reports whether the table is covered exactly once.
func (c Coverage) Exact() bool { return len(c.Gaps) == 0 && len(c.Overlaps) == 0 }

// CheckCoverage reports how spans (all of table) cover the table's whole range. Spans of other
// tables are ignored.
func CheckCoverage(table int64, spans []heartbeatpb.TableSpan) Coverage {
	t := TableSpan(table)
	own := make([]heartbeatpb.TableSpan, 0, len(spans))
	for _, s := range spans {
		if s.TableId == table {
			own = append(own, s)
		}
	}
	sort.Slice(own, func(i, j int) bool { return Compare(own[i], own[j]) < 0 })
	var c Coverage
	reached := t.StartKey // every key below reached is covered at least once
	for _, s := range own {
		if bytes.Compare(s.StartKey, reached) > 0 {
			c.Gaps = append(c.Gaps, heartbeatpb.TableSpan{TableId: table, StartKey: reached, EndKey: s.StartKey})
		} else if bytes.Compare(s.StartKey, reached) < 0 {
			end := s.EndKey
			if bytes.Compare(reached, end) < 0 {
				end = reached
			}
			c.Overlaps = append(c.Overlaps, heartbeatpb.TableSpan{TableId: table, StartKey: s.StartKey, EndKey: end})
		}
		if bytes.Compare(s.EndKey, reached) > 0 {
			reached = s.EndKey
		}
	}
	if bytes.Compare(reached, t.EndKey) < 0 {
		c.Gaps = append(c.Gaps, heartbeatpb.TableSpan{TableId: table, StartKey: reached, EndKey: t.EndKey})
	}
	return c
}
