package maintainer

import (
	"slices"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// mirrored is one dispatcher's last reported state and what it said it serves (a fingerprint of
// span and mode, servesPrint), so a watermark never advances a span its dispatcher does not
// serve. Packed in one word, the state in the low byte, the fingerprint's upper 56 bits above
// it: a mirror holds one per dispatcher of the changefeed, a million in all.
type mirrored uint64

func newMirrored(state heartbeatpb.ComponentState, serves uint64) mirrored {
	return mirrored(serves&^0xff | uint64(uint8(state)))
}

func (m mirrored) state() heartbeatpb.ComponentState { return heartbeatpb.ComponentState(uint8(m)) }

// serves says whether the dispatcher said it serves the span and mode of fingerprint print.
func (m mirrored) serves(print uint64) bool { return uint64(m)&^0xff == print&^0xff }

// mirrorEntry is one dispatcher of a mirror's sorted base.
type mirrorEntry struct {
	id heartbeatpb.DispatcherID
	m  mirrored
}

// mirrorChange is a change to the base not yet merged into it: the dispatcher's new value, or
// its removal.
type mirrorChange struct {
	m    mirrored
	gone bool
}

// mirrorSet maps a node's dispatchers to what they reported. It is a slice sorted by ID (24 B a
// dispatcher) with the changes since its last merge in a map, folded in once they are a fair
// share of it. A map of every dispatcher was 70 MB of the maintainer's heap at a million
// dispatchers (its slots, control bytes and growth slack) and a sixth of a restore's time;
// nodes list their dispatchers in ID order, so an answer becomes the base by one copy, and
// afterwards only state changes, a few a heartbeat, touch the map.
type mirrorSet struct {
	base    []mirrorEntry
	changes map[heartbeatpb.DispatcherID]mirrorChange
	n       int // dispatchers in the set
}

// mergeAt is how many changes the map holds before they are merged into the base: a quarter of
// the base, so every merge (a pass over both) is paid for by as many changes, and at least
// enough that a small set does not merge on every change.
func (s *mirrorSet) mergeAt() int { return max(1024, len(s.base)/4) }

// lookup returns id's entry in the base.
func (s *mirrorSet) lookup(id heartbeatpb.DispatcherID) (mirrored, bool) {
	i, ok := slices.BinarySearchFunc(s.base, id, func(e mirrorEntry, id heartbeatpb.DispatcherID) int {
		return compareIDs(e.id, id)
	})
	if !ok {
		return 0, false
	}
	return s.base[i].m, true
}

// get returns what id last reported, and whether it is in the set.
func (s *mirrorSet) get(id heartbeatpb.DispatcherID) (mirrored, bool) {
	if c, ok := s.changes[id]; ok {
		return c.m, !c.gone
	}
	return s.lookup(id)
}

// len is the number of dispatchers in the set.
func (s *mirrorSet) len() int { return s.n }

// put sets id's entry, adding it if it is new.
func (s *mirrorSet) put(id heartbeatpb.DispatcherID, m mirrored) {
	if _, ok := s.get(id); !ok {
		s.n++
	}
	s.change(id, mirrorChange{m: m})
}

// remove takes id out of the set, if it is there.
func (s *mirrorSet) remove(id heartbeatpb.DispatcherID) {
	if _, ok := s.get(id); !ok {
		return
	}
	s.n--
	if _, inBase := s.lookup(id); !inBase {
		delete(s.changes, id) // only ever a change: nothing to hide
		return
	}
	s.change(id, mirrorChange{gone: true})
}

func (s *mirrorSet) change(id heartbeatpb.DispatcherID, c mirrorChange) {
	if s.changes == nil {
		s.changes = map[heartbeatpb.DispatcherID]mirrorChange{}
	}
	s.changes[id] = c
	if len(s.changes) >= s.mergeAt() {
		s.merge()
	}
}

// merge folds the changes into the base, which stays sorted.
func (s *mirrorSet) merge() {
	ids := make([]heartbeatpb.DispatcherID, 0, len(s.changes))
	for id := range s.changes {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareIDs)
	out := make([]mirrorEntry, 0, s.n)
	i := 0
	for _, id := range ids {
		for i < len(s.base) && compareIDs(s.base[i].id, id) < 0 {
			out = append(out, s.base[i])
			i++
		}
		if i < len(s.base) && s.base[i].id == id {
			i++ // replaced or removed by the change
		}
		if c := s.changes[id]; !c.gone {
			out = append(out, mirrorEntry{id: id, m: c.m})
		}
	}
	out = append(out, s.base[i:]...)
	s.base, s.changes = out, nil
}

func compareIDs(a, b heartbeatpb.DispatcherID) int {
	switch {
	case a == b:
		return 0
	case a.Less(b):
		return -1
	}
	return 1
}
