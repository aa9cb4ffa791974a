package etcdutil

import (
	"fmt"
	"net/url"
	"strings"
)

// EtcdDispatcher is the dispatcher kind that replicates key ranges of a source etcd to a sink.
const EtcdDispatcher = "etcd"

// Sink kinds of the etcd dispatcher.
const (
	SinkFile = "file"
	SinkEtcd = "etcd"
)

// KeyRange is the etcd key range [Start, End); End "" means no upper bound.
type KeyRange struct {
	Start string `json:"start"`
	End   string `json:"end,omitempty"`
}

// Contains reports whether k is in r.
func (r KeyRange) Contains(k string) bool { return k >= r.Start && (r.End == "" || k < r.End) }

// overlaps reports whether r and o share a key.
func (r KeyRange) overlaps(o KeyRange) bool {
	return (o.End == "" || r.Start < o.End) && (r.End == "" || o.Start < r.End)
}

// PrefixEnd is the first key above every key that starts with p; "" when there is none (p is
// empty or all 0xff bytes).
func PrefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

// PrefixRange is the key range of every key starting with p.
func PrefixRange(p string) KeyRange { return KeyRange{Start: p, End: PrefixEnd(p)} }

// SourceConfig is the source etcd of an etcd-dispatcher changefeed, in one of three forms: a
// prefix (one table), explicit key ranges (table i+1 is Ranges[i]), or numbered tables under a
// prefix (TableKeys), the form that stays one small etcd value at a hundred thousand tables.
type SourceConfig struct {
	Endpoints []string   `json:"endpoints"`
	Prefix    string     `json:"prefix,omitempty"`
	Ranges    []KeyRange `json:"ranges,omitempty"`
	TableKeys *TableKeys `json:"table_keys,omitempty"`
	TLS       *TLSFiles  `json:"tls,omitempty"`
}

// TableCount is how many tables (source key ranges) the source names.
func (s *SourceConfig) TableCount() int {
	switch {
	case s.Prefix != "":
		return 1
	case s.TableKeys != nil:
		return s.TableKeys.Count
	}
	return len(s.Ranges)
}

// TableRange is the key range of table id (1-based); false for an ID the source has not.
func (s *SourceConfig) TableRange(id int64) (KeyRange, bool) {
	if id < 1 || id > int64(s.TableCount()) {
		return KeyRange{}, false
	}
	switch {
	case s.Prefix != "":
		return PrefixRange(s.Prefix), true
	case s.TableKeys != nil:
		return PrefixRange(s.TableKeys.prefixOf(id)), true
	}
	return s.Ranges[id-1], true
}

// TableOf is the table that holds source key k; false when none does.
func (s *SourceConfig) TableOf(k string) (int64, bool) {
	if s.TableKeys != nil {
		return s.TableKeys.tableOf(k)
	}
	for i, r := range s.TableRanges() {
		if r.Contains(k) {
			return int64(i + 1), true
		}
	}
	return 0, false
}

// TableRanges returns the key range of each table in table-ID order: table i+1 is element i.
// For TableKeys it builds every range; per-table lookups use TableRange and TableOf.
func (s *SourceConfig) TableRanges() []KeyRange {
	if s.Prefix != "" {
		return []KeyRange{PrefixRange(s.Prefix)}
	}
	if s.TableKeys != nil {
		out := make([]KeyRange, s.TableKeys.Count)
		for i := range out {
			out[i], _ = s.TableRange(int64(i + 1))
		}
		return out
	}
	return s.Ranges
}

// ScanRanges are key ranges that hold every table's keys, and few others: the tables' ranges,
// or for TableKeys the one range of its prefix (a scan keeps the keys TableOf places).
func (s *SourceConfig) ScanRanges() []KeyRange {
	if s.TableKeys != nil {
		return []KeyRange{PrefixRange(s.TableKeys.Prefix)}
	}
	return s.TableRanges()
}

// Describe names the source's tables for a message: their ranges, or the TableKeys pattern.
func (s *SourceConfig) Describe() string {
	if s.TableKeys != nil {
		t := s.TableKeys
		return fmt.Sprintf("tables 1-%d, each the keys under %q + its ID in %d digits + \"/\"", t.Count, t.Prefix, t.width())
	}
	parts := make([]string, 0, len(s.TableRanges()))
	for _, r := range s.TableRanges() {
		end := "∞"
		if r.End != "" {
			end = fmt.Sprintf("%q", r.End)
		}
		parts = append(parts, fmt.Sprintf("[%q, %s)", r.Start, end))
	}
	return strings.Join(parts, ", ")
}

// TableStrip is what a source key of table id loses in front before it becomes the span key
// suffix: the prefix, or the common prefix of the range's bounds (every key between two
// bounds starts with what they share).
func (s *SourceConfig) TableStrip(id int64) string {
	if s.Prefix != "" {
		return s.Prefix
	}
	if s.TableKeys != nil {
		return s.TableKeys.prefixOf(id)
	}
	r := s.Ranges[id-1]
	if r.End == "" {
		return ""
	}
	n := 0
	for n < len(r.Start) && n < len(r.End) && r.Start[n] == r.End[n] {
		n++
	}
	return r.Start[:n]
}

// MirrorSource is the part of a source key the mirror replaces with the sink prefix: the source
// prefix (TableKeys's too), or nothing for explicit ranges (their keys are put under the sink
// prefix whole).
func (s *SourceConfig) MirrorSource() string {
	if s.TableKeys != nil {
		return s.TableKeys.Prefix
	}
	return s.Prefix
}

// SinkConfig is where an etcd-dispatcher changefeed writes: JSON-lines files on every node
// (kind file) or a mirror in a target etcd under Prefix (kind etcd).
type SinkConfig struct {
	Kind      string    `json:"kind"`
	Endpoints []string  `json:"endpoints,omitempty"`
	Prefix    string    `json:"prefix,omitempty"`
	TLS       *TLSFiles `json:"tls,omitempty"`
	// FileMaxBytes: a file sink starts a new file beyond this size; 0 = the default.
	FileMaxBytes int64 `json:"file_max_bytes,omitempty"`
}

// tidemarkRange is tidemark's own key space in any etcd it writes to.
var tidemarkRange = PrefixRange(rootPrefix)

// validateSource checks the source and sink fields against the dispatcher kind. Its errors
// start with the field name, after the changefeed's.
func (c *ChangefeedInfo) validateSource() error {
	if c.DispatcherKind() != EtcdDispatcher {
		if c.Source != nil || c.Sink != nil {
			return fmt.Errorf("fields source, sink: only for dispatcher %q, not %q", EtcdDispatcher, c.DispatcherKind())
		}
		return nil
	}
	if c.Source == nil {
		return fmt.Errorf("field source: dispatcher %q needs a source etcd and its key ranges", EtcdDispatcher)
	}
	if c.Redo {
		return fmt.Errorf("field redo: dispatcher %q has no redo mode", EtcdDispatcher)
	}
	if err := c.Source.validate(); err != nil {
		return err
	}
	n := c.Source.TableCount()
	if len(c.Tables) != n {
		return fmt.Errorf("field tables: %d tables for %d source key ranges; want tables 1-%d, one per range", len(c.Tables), n, n)
	}
	for i, t := range c.Tables {
		if t.ID != int64(i+1) {
			return fmt.Errorf("field tables[%d].id: %d; dispatcher %q wants tables 1-%d in order, one per source key range", i, t.ID, EtcdDispatcher, n)
		}
	}
	sink := c.Sink
	if sink == nil {
		return fmt.Errorf("field sink: dispatcher %q needs a sink (%q or %q)", EtcdDispatcher, SinkFile, SinkEtcd)
	}
	return sink.validate(c.Source)
}

func (s *SourceConfig) validate() error {
	if err := validateEndpoints("source.endpoints", s.Endpoints); err != nil {
		return err
	}
	forms := 0
	for _, named := range []bool{s.Prefix != "", len(s.Ranges) > 0, s.TableKeys != nil} {
		if named {
			forms++
		}
	}
	if forms != 1 {
		return fmt.Errorf("field source: name a prefix, key ranges or table_keys, exactly one of them")
	}
	if s.TableKeys != nil {
		if err := s.TableKeys.validate(); err != nil {
			return err
		}
	}
	if s.Prefix != "" {
		if err := validatePrefix("source.prefix", s.Prefix); err != nil {
			return err
		}
	}
	for i, r := range s.Ranges {
		if r.Start == "" {
			return fmt.Errorf("field source.ranges[%d]: empty start key", i)
		}
		if r.End != "" && r.End <= r.Start {
			return fmt.Errorf("field source.ranges[%d]: end %q not above start %q", i, r.End, r.Start)
		}
		if r.overlaps(tidemarkRange) {
			return fmt.Errorf("field source.ranges[%d]: [%q, %q) overlaps tidemark's own keys under %s", i, r.Start, r.End, rootPrefix)
		}
		for j := range i {
			if r.overlaps(s.Ranges[j]) {
				return fmt.Errorf("field source.ranges[%d]: [%q, %q) overlaps ranges[%d] [%q, %q); key ranges of one changefeed must not overlap",
					i, r.Start, r.End, j, s.Ranges[j].Start, s.Ranges[j].End)
			}
		}
	}
	return validateTLSFields("source.tls", s.TLS)
}

func (k *SinkConfig) validate(src *SourceConfig) error {
	if k.FileMaxBytes < 0 {
		return fmt.Errorf("field sink.file_max_bytes: negative")
	}
	switch k.Kind {
	case SinkFile:
		if len(k.Endpoints) > 0 || k.Prefix != "" || k.TLS != nil {
			return fmt.Errorf("field sink: a %q sink takes no endpoints, prefix or TLS", SinkFile)
		}
		return nil
	case SinkEtcd:
	default:
		return fmt.Errorf("field sink.kind: %q, want %q or %q", k.Kind, SinkFile, SinkEtcd)
	}
	if err := validateEndpoints("sink.endpoints", k.Endpoints); err != nil {
		return err
	}
	if k.Prefix == "" {
		return fmt.Errorf("field sink.prefix: an %q sink needs the prefix its mirror writes under", SinkEtcd)
	}
	if err := validatePrefix("sink.prefix", k.Prefix); err != nil {
		return err
	}
	if sameCluster(src.Endpoints, k.Endpoints) {
		// The mirror's writes would be source events again: an endless loop.
		dst := PrefixRange(k.Prefix)
		for _, r := range src.ScanRanges() {
			if r.overlaps(dst) {
				return fmt.Errorf("field sink.prefix: %q is inside source key range [%q, %q) of the same etcd; the mirror would replicate itself", k.Prefix, r.Start, r.End)
			}
		}
	}
	if sp := src.MirrorSource(); sp != "" && sp[len(sp)-1] == '/' && k.Prefix[len(k.Prefix)-1] != '/' {
		return fmt.Errorf("field sink.prefix: %q should end in / like source prefix %q, or keys run together", k.Prefix, sp)
	}
	return validateTLSFields("sink.tls", k.TLS)
}

func validateEndpoints(field string, eps []string) error {
	if len(eps) == 0 {
		return fmt.Errorf("field %s: no endpoints", field)
	}
	for _, ep := range eps {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("field %s: %q is not an http:// or https:// URL", field, ep)
		}
	}
	return nil
}

func validatePrefix(field, p string) error {
	if strings.ContainsAny(p, "\x00") {
		return fmt.Errorf("field %s: %q holds a NUL byte", field, p)
	}
	if PrefixEnd(p) == "" {
		return fmt.Errorf("field %s: %q covers every key; name a real prefix", field, p)
	}
	if PrefixRange(p).overlaps(tidemarkRange) {
		return fmt.Errorf("field %s: %q overlaps tidemark's own keys under %s", field, p, rootPrefix)
	}
	return nil
}

func validateTLSFields(field string, f *TLSFiles) error {
	if f == nil {
		return nil
	}
	if !f.Enabled() {
		return fmt.Errorf("field %s: present but names no file", field)
	}
	if f.CA == "" {
		return fmt.Errorf("field %s: a CA file is needed to verify the server", field)
	}
	if (f.Cert == "") != (f.Key == "") {
		return fmt.Errorf("field %s: certificate and key go together; name both or neither", field)
	}
	return nil
}

// sameCluster reports whether two endpoint lists share an endpoint (then they are taken to be
// one etcd cluster).
func sameCluster(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if strings.TrimSuffix(x, "/") == strings.TrimSuffix(y, "/") {
				return true
			}
		}
	}
	return false
}
