package failpoints

import (
	"strconv"
	"strings"
	"time"
)

// ForPeer interprets a transport failpoint's value for one peer: true (or "*") means every
// peer, a string lists peers separated by commas; anything else means none.
func ForPeer(v any, peer string) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		for _, p := range strings.Split(x, ",") {
			if p = strings.TrimSpace(p); p == "*" || p == peer {
				return true
			}
		}
	}
	return false
}

// DelayFor interprets transport-delay's value for one peer: an int is milliseconds toward every
// peer, "peer:ms,peer:ms" a delay per peer ("*:ms" for the rest). Anything else is no delay.
func DelayFor(v any, peer string) time.Duration {
	switch x := v.(type) {
	case int:
		return max(0, time.Duration(x)*time.Millisecond)
	case string:
		var star time.Duration
		for _, item := range strings.Split(x, ",") {
			name, ms, ok := strings.Cut(strings.TrimSpace(item), ":")
			n, err := strconv.Atoi(ms)
			if !ok || err != nil || n < 0 {
				continue
			}
			switch name {
			case peer:
				return time.Duration(n) * time.Millisecond
			case "*":
				star = time.Duration(n) * time.Millisecond
			}
		}
		return star
	}
	return 0
}
