package span

import (
	"strings"
	"testing"
)

func TestParseTableRange(t *testing.T) {
	for _, tc := range []struct {
		in      string
		lo, hi  int64
		wantErr string
	}{
		{in: "5", lo: 5, hi: 5},
		{in: "3-9", lo: 3, hi: 9},
		{in: "0", lo: 0, hi: 0},
		{in: "", wantErr: "empty element"},
		{in: "-1", wantErr: "never negative"},
		{in: "9-3", wantErr: "ends below its start"},
		{in: "1-2-3", wantErr: `"2-3" is not a table ID`},
		{in: "9223372036854775807", wantErr: "is not a table ID"},
	} {
		lo, hi, err := ParseTableRange(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseTableRange(%q) = %d, %d, %v; want error %q", tc.in, lo, hi, err, tc.wantErr)
			}
			continue
		}
		if err != nil || lo != tc.lo || hi != tc.hi {
			t.Errorf("ParseTableRange(%q) = %d, %d, %v; want %d, %d", tc.in, lo, hi, err, tc.lo, tc.hi)
		}
	}
}
