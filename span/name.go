package span

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tidemark/tidemark/heartbeatpb"
)

// ErrBadName wraps every error of ParseName.
var ErrBadName = errors.New("span: bad span name")

// Name is a span as people type it: "TABLE" for a whole table, or "TABLE:STARTHEX-ENDHEX" with
// the full start and end keys in hex. The status API lists spans in this form.
type Name struct {
	Table      int64
	Start, End []byte // nil: the whole table
}

// ParseName parses "TABLE" or "TABLE:STARTHEX-ENDHEX". The error says which form is wanted.
func ParseName(s string) (Name, error) {
	tableStr, keys, ranged := strings.Cut(strings.TrimSpace(s), ":")
	id, err := strconv.ParseInt(tableStr, 10, 64)
	if err != nil || id < 0 || id == 1<<63-1 {
		return Name{}, fmt.Errorf("%w %q: want TABLE or TABLE:STARTHEX-ENDHEX, and %q is not a table id",
			ErrBadName, s, tableStr)
	}
	n := Name{Table: id}
	if !ranged {
		return n, nil
	}
	startHex, endHex, ok := strings.Cut(keys, "-")
	if !ok {
		return Name{}, fmt.Errorf("%w %q: the key range needs the form STARTHEX-ENDHEX", ErrBadName, s)
	}
	if n.Start, err = hex.DecodeString(startHex); err == nil {
		n.End, err = hex.DecodeString(endHex)
	}
	if err != nil {
		return Name{}, fmt.Errorf("%w %q: keys are not hex: %v", ErrBadName, s, err)
	}
	if err := Validate(n.Span()); err != nil {
		return Name{}, fmt.Errorf("%w %q: %v", ErrBadName, s, err)
	}
	return n, nil
}

// Span returns the key range the name means.
func (n Name) Span() heartbeatpb.TableSpan {
	if n.Start == nil && n.End == nil {
		return TableSpan(n.Table)
	}
	return heartbeatpb.TableSpan{TableId: n.Table, StartKey: n.Start, EndKey: n.End}
}

func (n Name) String() string { return FormatName(n.Span()) }

// FormatName names s the way ParseName reads it: the table alone when s covers all of it.
func FormatName(s heartbeatpb.TableSpan) string {
	if Equal(s, TableSpan(s.TableId)) {
		return strconv.FormatInt(s.TableId, 10)
	}
	return fmt.Sprintf("%d:%x-%x", s.TableId, s.StartKey, s.EndKey)
}
