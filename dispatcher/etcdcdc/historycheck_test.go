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
