package etcdcdc

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/span"
)

// CheckHistory checks invariant I8 on a mirror from the histories themselves: source holds
// every source event of the replicated ranges in (start, end] in revision order, mirror every
// event the target saw under the destination prefix in the same time, keys mapped back
// through toSource. Per key, the mirror's events must be the source's in order, where a
// replay (a successor starting below what its predecessor wrote) may go back to an earlier
// source event and repeat from there, and a delete of a key the mirror does not hold leaves no
// event. Any source event that never reached the mirror, or a mirror event the source never
// had at that point, is reported. Values should be unique per write for the check to be sharp.
func CheckHistory(source, mirror []Event, toSource func(k []byte) (string, bool)) error {
	src := map[string][]Event{}
	for _, e := range source {
		src[string(e.Key)] = append(src[string(e.Key)], e)
	}
	dst := map[string][]Event{}
	for _, e := range mirror {
		k, ok := toSource(e.Key)
		if !ok {
			return fmt.Errorf("etcdcdc: history check: mirror key %q maps to no source key", e.Key)
		}
		dst[k] = append(dst[k], e)
	}
	keys := make([]string, 0, len(src)+len(dst))
	for k := range src {
		keys = append(keys, k)
	}
	for k := range dst {
		if _, ok := src[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var problems []string
	for _, k := range keys {
		if err := checkKey(src[k], dst[k]); err != nil {
			problems = append(problems, fmt.Sprintf("key %q: %v", k, err))
		}
	}
	if len(problems) > 0 {
		if len(problems) > 20 {
			problems = append(problems[:20], fmt.Sprintf("... and %d more keys", len(problems)-20))
		}
		return fmt.Errorf("etcdcdc: history check: %d keys differ:\n%s", len(problems), strings.Join(problems, "\n"))
	}
	return nil
}

func sameOp(a, b Event) bool {
	return a.Delete == b.Delete && (a.Delete || bytes.Equal(a.Value, b.Value))
}

func describeEvent(e Event) string {
	if e.Delete {
		return fmt.Sprintf("delete@%d", e.Revision)
	}
	return fmt.Sprintf("put %q@%d", e.Value, e.Revision)
}

// checkKey walks one key's mirror events against its source events.
func checkKey(s, t []Event) error {
	p := 0
	absent := true // the mirror holds no value for the key
	skipDeletes := func() {
		for absent && p < len(s) && s[p].Delete {
			p++
		}
	}
	for _, e := range t {
		skipDeletes()
		if p < len(s) && sameOp(e, s[p]) {
			p++
			absent = e.Delete
			continue
		}
		j := p - 1
		for j >= 0 && !sameOp(e, s[j]) {
			j--
		}
		if j < 0 {
			want := "nothing more"
			if p < len(s) {
				want = describeEvent(s[p])
			}
			return fmt.Errorf("mirror wrote %s (target revision %d) where the source's next event is %s", describeEvent(e), e.Revision, want)
		}
		p, absent = j+1, e.Delete // a replay from source event j
	}
	skipDeletes()
	if p < len(s) {
		return fmt.Errorf("source event %s and %d after it never reached the mirror", describeEvent(s[p]), len(s)-p-1)
	}
	return nil
}

// CheckFileSinks checks I8 on file sinks: every source event of the replicated ranges in
// (start, end] is in some node's records with its value, no record holds an event the source
// never had, and each dispatcher wrote each key's events in revision order. Repeats (replays
// after a handoff) are allowed.
func CheckFileSinks(source []Event, records []Record) error {
	type evKey struct {
		key string
		rev int64
	}
	src := make(map[evKey]Event, len(source))
	for _, e := range source {
		src[evKey{string(e.Key), e.Revision}] = e
	}
	seen := make(map[evKey]bool, len(source))
	last := map[string]int64{} // dispatcher + key -> last revision written
	var problems []string
	for _, r := range records {
		e := r.Event()
		k := evKey{string(e.Key), e.Revision}
		want, ok := src[k]
		if !ok || !sameOp(e, want) {
			problems = append(problems, fmt.Sprintf("record of dispatcher %s: %s of %q is no source event", r.Dispatcher, describeEvent(e), e.Key))
			continue
		}
		seen[k] = true
		dk := r.Dispatcher + "\x00" + string(e.Key)
		if e.Revision < last[dk] {
			problems = append(problems, fmt.Sprintf("dispatcher %s wrote %q at revision %d after revision %d", r.Dispatcher, e.Key, e.Revision, last[dk]))
		}
		last[dk] = e.Revision
	}
	for _, e := range source {
		if !seen[evKey{string(e.Key), e.Revision}] {
			problems = append(problems, fmt.Sprintf("source event %s of %q is in no sink", describeEvent(e), e.Key))
		}
	}
	if len(problems) > 0 {
		if len(problems) > 20 {
			problems = append(problems[:20], fmt.Sprintf("... and %d more", len(problems)-20))
		}
		return fmt.Errorf("etcdcdc: file sink check: %d problems:\n%s", len(problems), strings.Join(problems, "\n"))
	}
	return nil
}

// CheckFences checks the mirror's fence from the target's own history: fences are the events
// of the fence keys under root (FenceRoot) and mirror the events under the destination prefix,
// with target revisions. Every mirror event must come from a transaction that also rewrote a
// fence key (every mirror write does), and no fence key may be rewritten by a dispatcher older
// than one that had already claimed an overlapping span of the same table: a deposed or paused
// dispatcher's late write that the target let through shows as exactly that.
func CheckFences(root string, fences, mirror []Event) error {
	type claimed struct {
		table int64
		owner fenceOwner
		rev   int64 // the first target revision it wrote
	}
	var owners []claimed // each dispatcher once, as it first appears
	known := map[string]bool{}
	written := map[int64]bool{}
	var problems []string
	for _, e := range fences {
		if e.Delete {
			continue // a claim removes the fences of older overlapping spans
		}
		rest, ok := strings.CutPrefix(string(e.Key), root+"fence/")
		table, err := strconv.ParseInt(strings.SplitN(rest, "/", 2)[0], 10, 64)
		if !ok || err != nil {
			return fmt.Errorf("etcdcdc: fence check: %q is no fence key under %s", e.Key, root)
		}
		o, err := parseFence(e.Value)
		if err != nil {
			return fmt.Errorf("etcdcdc: fence check: fence %s at revision %d: %v", e.Key, e.Revision, err)
		}
		o.span.TableId = table
		written[e.Revision] = true
		for _, c := range owners {
			if c.table == table && c.rev < e.Revision && lessID(o.id, c.owner.id) && span.Overlap(o.span, c.owner.span) {
				problems = append(problems, fmt.Sprintf("target revision %d: dispatcher %s wrote span %s after dispatcher %s had claimed overlapping span %s at revision %d",
					e.Revision, dispatcher.FormatID(o.id), span.String(o.span), dispatcher.FormatID(c.owner.id), span.String(c.owner.span), c.rev))
			}
		}
		if id := dispatcher.FormatID(o.id); !known[id] {
			known[id] = true
			owners = append(owners, claimed{table: table, owner: o, rev: e.Revision})
		}
	}
	for _, e := range mirror {
		if !written[e.Revision] {
			problems = append(problems, fmt.Sprintf("mirror %s of %q at target revision %d rewrote no fence: an unfenced write", describeEvent(e), e.Key, e.Revision))
		}
	}
	if len(problems) > 0 {
		if len(problems) > 20 {
			problems = append(problems[:20], fmt.Sprintf("... and %d more", len(problems)-20))
		}
		return fmt.Errorf("etcdcdc: fence check: %d problems:\n%s", len(problems), strings.Join(problems, "\n"))
	}
	return nil
}
