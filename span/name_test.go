package span

import (
	"errors"
	"strings"
	"testing"

	"github.com/tidemark/tidemark/heartbeatpb"
)

func TestNames(t *testing.T) {
	whole := TableSpan(7)
	if got := FormatName(whole); got != "7" {
		t.Errorf("FormatName(whole table) = %q", got)
	}
	part := heartbeatpb.TableSpan{TableId: 7, StartKey: whole.StartKey, EndKey: append(TableStartKey(7), 0x10)}
	name := FormatName(part)
	n, err := ParseName(name)
	if err != nil || !Equal(n.Span(), part) || n.String() != name {
		t.Fatalf("round trip of %q: %+v %v", name, n, err)
	}
	for _, bad := range []string{"", "x", "-1", "7:zz-00", "7:0011", "7:" + "74" + strings.Repeat("00", 8) + "-" + "75"} {
		if _, err := ParseName(bad); !errors.Is(err, ErrBadName) {
			t.Errorf("ParseName(%q): %v, want ErrBadName", bad, err)
		}
	}
}
