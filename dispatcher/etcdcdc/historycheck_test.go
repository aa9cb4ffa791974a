package etcdcdc

import (
	"strings"
	"testing"
)

func TestCheckHistory(t *testing.T) {
	same := func(k []byte) (string, bool) { return string(k), true }
	put := func(k, v string, r int64) Event { return Event{Key: []byte(k), Value: []byte(v), Revision: r} }
	del := func(k string, r int64) Event { return Event{Key: []byte(k), Delete: true, Revision: r} }
	src := []Event{put("a", "1", 2), put("b", "2", 3), put("a", "3", 4), del("a", 5), put("a", "6", 6), del("b", 7)}
	for _, tc := range []struct {
		name   string
		mirror []Event
		want   string // "" = passes
	}{
		{"exact", []Event{put("a", "1", 10), put("b", "2", 11), put("a", "3", 12), del("a", 13), put("a", "6", 14), del("b", 15)}, ""},
		{"replay after a handoff", []Event{put("a", "1", 10), put("a", "3", 11), put("a", "1", 12), put("a", "3", 13), del("a", 14),
			put("a", "6", 15), put("b", "2", 16), del("b", 17)}, ""},
		{"replay from a delete of an absent key", []Event{put("a", "1", 10), put("a", "3", 11), del("a", 12), put("a", "6", 13),
			put("b", "2", 14), del("b", 15)}, ""},
		{"one put skipped", []Event{put("a", "1", 10), put("b", "2", 11), del("a", 13), put("a", "6", 14), del("b", 15)}, `key "a"`},
		{"a put skipped, later deleted", []Event{put("a", "1", 10), put("a", "3", 12), del("a", 13), put("a", "6", 14), del("b", 15)}, `key "b"`},
		{"last delete missing", []Event{put("a", "1", 10), put("b", "2", 11), put("a", "3", 12), del("a", 13), put("a", "6", 14)}, `delete@7`},
		{"out of order", []Event{put("a", "3", 10), put("a", "1", 11), del("a", 13), put("a", "6", 14), put("b", "2", 11), del("b", 15)}, `key "a"`},
		{"invented value", []Event{put("a", "1", 10), put("a", "x", 10), put("a", "3", 12), del("a", 13), put("a", "6", 14), put("b", "2", 11), del("b", 15)}, `"x"`},
	} {
		err := CheckHistory(src, tc.mirror, same)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want an error about %s", tc.name, err, tc.want)
		}
	}
}

func TestCheckFileSinks(t *testing.T) {
	rec := func(d, k, v string, rev int64, del bool) Record {
		r := Record{Key: k, Value: v, Op: "put", ModRevision: rev, Dispatcher: d}
		if del {
			r.Op, r.Value = "delete", ""
		}
		return r
	}
	src := []Event{{Key: []byte("a"), Value: []byte("1"), Revision: 2}, {Key: []byte("a"), Delete: true, Revision: 3},
		{Key: []byte("b"), Value: []byte("2"), Revision: 4}}
	ok := []Record{rec("1-1", "a", "1", 2, false), rec("1-1", "a", "", 3, true), rec("1-2", "a", "", 3, true), rec("1-2", "b", "2", 4, false)}
	if err := CheckFileSinks(src, ok); err != nil {
		t.Fatalf("a replay after a handoff: %v", err)
	}
	for name, recs := range map[string][]Record{
		"missing":  ok[:3],
		"invented": append(append([]Record{}, ok...), rec("1-2", "b", "9", 4, false)),
		"reversed": {rec("1-1", "a", "", 3, true), rec("1-1", "a", "1", 2, false), rec("1-2", "b", "2", 4, false)},
	} {
		if err := CheckFileSinks(src, recs); err == nil {
			t.Errorf("%s: passed", name)
		}
	}
}

func TestCheckFences(t *testing.T) {
	root := FenceRoot("c", "cf")
	fence := func(table, id string, start, end string, rev int64) Event {
		v := `{"dispatcher":"` + id + `","session":"s","node":"n","start":"` + start + `","end":"` + end + `","applied":0}`
		return Event{Key: []byte(root + "fence/" + table + "/" + start + "-" + end), Value: []byte(v), Revision: rev}
	}
	put := func(k string, r int64) Event { return Event{Key: []byte(k), Value: []byte("v"), Revision: r} }
	// Dispatcher 1-2 owns [61, 63) of table 1, then 1-5 claims [61, 62) and writes; 1-3 owns
	// table 2 throughout.
	ok := []Event{fence("1", "1-2", "61", "63", 10), fence("2", "1-3", "", "", 11), fence("1", "1-2", "61", "63", 12),
		{Key: []byte(root + "fence/1/61-63"), Delete: true, Revision: 13}, fence("1", "1-5", "61", "62", 13),
		fence("2", "1-3", "", "", 14), fence("1", "1-5", "61", "62", 15)}
	mirror := []Event{put("/dst/a", 12), put("/dst/b", 14), put("/dst/a", 15)}
	if err := CheckFences(root, ok, mirror); err != nil {
		t.Fatalf("fenced handoff: %v", err)
	}
	late := append(append([]Event{}, ok...), fence("1", "1-2", "61", "63", 16))
	if err := CheckFences(root, late, append(mirror, put("/dst/a", 16))); err == nil || !strings.Contains(err.Error(), "after dispatcher 1-5") {
		t.Errorf("a deposed dispatcher's late write: %v", err)
	}
	// A later span of another table, or one not overlapping, is no successor.
	other := append(append([]Event{}, ok...), fence("1", "1-2", "62", "63", 16), fence("2", "1-3", "", "", 17))
	if err := CheckFences(root, other, mirror); err != nil {
		t.Errorf("writes of spans no newer owner overlaps: %v", err)
	}
	if err := CheckFences(root, ok, append(mirror, put("/dst/c", 30))); err == nil || !strings.Contains(err.Error(), "unfenced") {
		t.Errorf("a mirror write without its fence: %v", err)
	}
}
