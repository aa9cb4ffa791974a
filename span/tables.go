package span

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseTableRange parses one element of a table list, "N" or "LO-HI" (inclusive): the one
// reading of table lists, for the CLI's flags and the stored changefeed definitions alike.
func ParseTableRange(item string) (lo, hi int64, err error) {
	if item == "" {
		return 0, 0, fmt.Errorf("empty element (two commas in a row, or a trailing comma)")
	}
	if strings.HasPrefix(item, "-") {
		return 0, 0, fmt.Errorf("%q: table IDs are never negative", item)
	}
	loStr, hiStr, isRange := strings.Cut(item, "-")
	if lo, err = ParseTableID(loStr); err != nil {
		return 0, 0, err
	}
	if !isRange {
		return lo, lo, nil
	}
	if hi, err = ParseTableID(hiStr); err != nil {
		return 0, 0, err
	}
	if hi < lo {
		return 0, 0, fmt.Errorf("range %q ends below its start; write it as %d-%d", item, hi, lo)
	}
	return lo, hi, nil
}

// ParseTableID parses a table ID. The largest int64 is excluded because table n's key range
// ends at the start key of table n+1.
func ParseTableID(s string) (int64, error) {
	s = strings.TrimSpace(s)
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 0 || id == math.MaxInt64 {
		return 0, fmt.Errorf("%q is not a table ID (a whole number from 0 to %d)", s, int64(math.MaxInt64-1))
	}
	return id, nil
}
