package span

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// TableOf returns the table whose key range holds key: t<n> followed by anything is in table n.
// ok is false for a key no table holds (not starting with 't', shorter than t<n>, or naming a
// table ID beyond the valid range).
func TableOf(key []byte) (id int64, ok bool) {
	if len(key) < tableKeyLen || key[0] != tablePrefix {
		return 0, false
	}
	n := binary.BigEndian.Uint64(key[1:tableKeyLen])
	if n >= 1<<63-1 {
		return 0, false // table 2^63-1 would end at t<2^63>, which no int64 names
	}
	return int64(n), true
}

// ContainsKey reports whether key is in [s.StartKey, s.EndKey).
func ContainsKey(s heartbeatpb.TableSpan, key []byte) bool {
	return bytes.Compare(s.StartKey, key) <= 0 && bytes.Compare(key, s.EndKey) < 0
}

// ParseKey reads a key as people type it:
//
//	t<ID>          the first key of table ID, t<ID> encoded (e.g. t42)
//	t<ID>:<HEX>    a key inside table ID: t<ID> followed by the hex bytes (e.g. t42:00ff)
//	0x<HEX>        a whole key in hex, as `tidemark ctl spans --json` prints start and end keys
//
// The error says which forms are wanted.
func ParseKey(s string) ([]byte, error) {
	const forms = "want t<ID> (a table's first key), t<ID>:<HEX> (a key inside the table) or 0x<HEX> (a whole key in hex)"
	switch {
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		k, err := hex.DecodeString(s[2:])
		if err != nil || len(k) == 0 {
			return nil, fmt.Errorf("span: key %q: %q is not hex bytes; %s", s, s[2:], forms)
		}
		return k, nil
	case strings.HasPrefix(s, string(tablePrefix)):
		idStr, suffix, hasSuffix := strings.Cut(s[1:], ":")
		id, err := strconv.ParseInt(idStr, 10, 64)
		if err != nil || id < 0 || id == 1<<63-1 {
			return nil, fmt.Errorf("span: key %q: %q is not a table ID (0 to 2^63-2); %s", s, idStr, forms)
		}
		k := TableStartKey(id)
		if hasSuffix {
			b, err := hex.DecodeString(suffix)
			if err != nil {
				return nil, fmt.Errorf("span: key %q: %q after the ':' is not hex bytes; %s", s, suffix, forms)
			}
			k = append(k, b...)
		}
		return k, nil
	}
	return nil, fmt.Errorf("span: key %q: %s", s, forms)
}
