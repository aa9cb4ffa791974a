package span

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	t5 := TableStartKey(5)
	cases := []struct {
		in     string
		want   []byte
		errHas string
	}{
		{in: "t5", want: t5},
		{in: "t5:00ff", want: append(append([]byte{}, t5...), 0x00, 0xff)},
		{in: "t5:", want: t5},
		{in: "0x" + "74" + "0000000000000005" + "01", want: append(append([]byte{}, t5...), 0x01)},
		{in: "0X61", want: []byte("a")},
		{in: "t", errHas: `"" is not a table ID`},
		{in: "t-1", errHas: "not a table ID"},
		{in: "t9223372036854775807", errHas: "not a table ID"},
		{in: "t5:zz", errHas: `"zz" after the ':' is not hex`},
		{in: "0x", errHas: "is not hex bytes"},
		{in: "0x123", errHas: "is not hex bytes"},
		{in: "/registry/pods", errHas: "want t<ID>"},
		{in: "", errHas: "want t<ID>"},
	}
	for _, c := range cases {
		got, err := ParseKey(c.in)
		if c.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), c.errHas) {
				t.Errorf("ParseKey(%q) = %x, %v; want an error containing %q", c.in, got, err, c.errHas)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("ParseKey(%q) = %x, %v; want %x", c.in, got, err, c.want)
		}
	}
}

func TestTableOf(t *testing.T) {
	cases := []struct {
		key  []byte
		id   int64
		want bool
	}{
		{TableStartKey(0), 0, true},
		{TableStartKey(42), 42, true},
		{append(TableStartKey(42), 0xff, 0xff), 42, true},
		{TableStartKey(1<<63 - 2), 1<<63 - 2, true},
		{TableStartKey(1<<63 - 1), 0, false}, // the start of no valid table
		{[]byte("t"), 0, false},
		{[]byte("t\x00\x00"), 0, false}, // below t<0>
		{[]byte("u0000000000"), 0, false},
		{nil, 0, false},
	}
	for _, c := range cases {
		id, ok := TableOf(c.key)
		if ok != c.want || id != c.id {
			t.Errorf("TableOf(%x) = %d, %v; want %d, %v", c.key, id, ok, c.id, c.want)
		}
	}
	// Every key of every split piece belongs to the piece's table, and to exactly one piece.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		id := rng.Int64N(1 << 40)
		pieces, err := Split(TableSpan(id), 2+rng.IntN(7))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pieces {
			for _, k := range [][]byte{p.StartKey, append(append([]byte{}, p.StartKey...), 0x7f)} {
				if got, ok := TableOf(k); !ok || got != id {
					t.Fatalf("TableOf(%x) = %d, %v; want %d", k, got, ok, id)
				}
				n := 0
				for _, q := range pieces {
					if ContainsKey(q, k) {
						n++
					}
				}
				if n != 1 {
					t.Fatalf("key %x is in %d pieces of table %d", k, n, id)
				}
			}
		}
	}
}
