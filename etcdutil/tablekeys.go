package etcdutil

import (
	"fmt"
	"strconv"
	"strings"
)

// TableKeys names Count tables of a source by a pattern rather than a list: table i (1..Count)
// is every key under Prefix + i in Width decimal digits, zero-padded, + "/" (with Prefix
// "/shop/t" and Width 6, table 42 is the keys under "/shop/t000042/"). A list of a hundred
// thousand explicit ranges would be several MB in one etcd value; this is a few dozen bytes.
// The fixed width keeps the tables disjoint and in ID order: no table's prefix starts another's.
type TableKeys struct {
	Prefix string `json:"prefix"`
	Count  int    `json:"count"`
	// Width: digits of a table ID in its keys; 0 means the digits of Count. ctl writes it out,
	// so that the keys of a table never depend on how many tables there are.
	Width int `json:"width,omitempty"`
}

// maxTableKeyWidth: an int64 table ID has at most 19 digits; 18 keeps every ID in range.
const maxTableKeyWidth = 18

// width is the digits of a table ID in its keys.
func (t *TableKeys) width() int {
	if t.Width > 0 {
		return t.Width
	}
	return len(strconv.Itoa(t.Count))
}

// prefixOf is the key prefix of table id.
func (t *TableKeys) prefixOf(id int64) string {
	return fmt.Sprintf("%s%0*d/", t.Prefix, t.width(), id)
}

// tableOf parses the table of source key k: the prefix, exactly width digits naming a table of
// 1..Count, then "/".
func (t *TableKeys) tableOf(k string) (int64, bool) {
	rest, ok := strings.CutPrefix(k, t.Prefix)
	w := t.width()
	if !ok || len(rest) <= w || rest[w] != '/' {
		return 0, false
	}
	var id int64
	for _, c := range []byte(rest[:w]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		id = id*10 + int64(c-'0')
	}
	if id < 1 || id > int64(t.Count) {
		return 0, false
	}
	return id, true
}

func (t *TableKeys) validate() error {
	if err := validatePrefix("source.table_keys.prefix", t.Prefix); err != nil {
		return err
	}
	if t.Count < 1 || t.Count > MaxTables {
		return fmt.Errorf("field source.table_keys.count: %d, want 1 to %d tables", t.Count, MaxTables)
	}
	if need := len(strconv.Itoa(t.Count)); t.Width != 0 && (t.Width < need || t.Width > maxTableKeyWidth) {
		return fmt.Errorf("field source.table_keys.width: %d digits, want %d to %d for %d tables", t.Width, need, maxTableKeyWidth, t.Count)
	}
	return nil
}
