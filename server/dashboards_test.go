package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
)

// dashPanel is the part of a Grafana panel the check reads; rows nest their panels.
type dashPanel struct {
	Title   string      `json:"title"`
	Targets []dashQuery `json:"targets"`
	Panels  []dashPanel `json:"panels"`
}

type dashQuery struct {
	Expr string `json:"expr"`
}

type dashboard struct {
	Title      string      `json:"title"`
	Panels     []dashPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// dashExprs lists every PromQL query of a dashboard with where it is: each panel's targets
// (rows included) and each query variable (label_values(METRIC, LABEL) counts as METRIC).
func dashExprs(raw []byte) (map[string][]string, error) {
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	var walk func(ps []dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			for _, q := range p.Targets {
				out["panel "+p.Title] = append(out["panel "+p.Title], q.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		var s string
		if json.Unmarshal(v.Query, &s) != nil {
			if err := json.Unmarshal(v.Query, &q); err != nil {
				return nil, fmt.Errorf("variable %s: query is neither a string nor {query}", v.Name)
			}
			s = q.Query
		}
		if m := regexp.MustCompile(`^label_values\(\s*([^,)]+)`).FindStringSubmatch(s); m != nil {
			s = m[1]
		}
		out["variable "+v.Name] = append(out["variable "+v.Name], s)
	}
	return out, nil
}

var (
	promStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping  = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent     = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promFuncAfter = regexp.MustCompile(`^\s*\(`)
	promKeywords  = map[string]bool{"and": true, "or": true, "unless": true, "offset": true, "bool": true, "inf": true, "nan": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
)

// metricNames returns the metric names a PromQL query selects: identifiers that are not a
// function (followed by '('), a keyword, a label (inside {...} or by (...)), a string or a range.
func metricNames(expr string) []string {
	e := promStrings.ReplaceAllString(expr, " ")
	e = promMatchers.ReplaceAllString(e, " ")
	e = promRanges.ReplaceAllString(e, " ")
	e = promGrouping.ReplaceAllString(e, " ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(e, -1) {
		word := e[loc[0]:loc[1]]
		if promKeywords[strings.ToLower(word)] || promFuncAfter.MatchString(e[loc[1]:]) {
			continue
		}
		if loc[0] > 0 && (e[loc[0]-1] >= '0' && e[loc[0]-1] <= '9' || e[loc[0]-1] == '.') {
			continue // the exponent or unit tail of a number (1e3, 0.99)
		}
		out = append(out, word)
	}
	return out
}

// registeredIn reports whether reg holds a metric named name, by trying to register a probe
// of that name: the registry refuses a second descriptor of a name it has. A histogram's
// _bucket, _sum and _count series count as the histogram.
func registeredIn(reg *prometheus.Registry) func(string) bool {
	probe := func(name string) bool {
		c := probeCollector{prometheus.NewDesc(name, "probe of the dashboard test", nil, nil)}
		if err := reg.Register(c); err != nil {
			return true
		}
		reg.Unregister(c)
		return false
	}
	return func(name string) bool {
		if probe(name) {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && probe(base) {
				return true
			}
		}
		return false
	}
}

type probeCollector struct{ d *prometheus.Desc }

func (p probeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- p.d }
func (p probeCollector) Collect(chan<- prometheus.Metric)    {}

// unknownMetrics lists, per place in the dashboard, the metrics its queries name that
// registered says are not exported; n is how many names were checked.
func unknownMetrics(raw []byte, registered func(string) bool) (unknown []string, n int, err error) {
	exprs, err := dashExprs(raw)
	if err != nil {
		return nil, 0, err
	}
	for where, list := range exprs {
		for _, e := range list {
			names := metricNames(e)
			if len(names) == 0 {
				unknown = append(unknown, fmt.Sprintf("%s: query %q names no metric", where, e))
			}
			for _, name := range names {
				n++
				if !registered(name) {
					unknown = append(unknown, fmt.Sprintf("%s: %s (in %q)", where, name, e))
				}
			}
		}
	}
	sort.Strings(unknown)
	return unknown, n, nil
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string]string{
		`sum by (state) (tidemark_spans{changefeed=~"$cf", state="a b"})`:                                 "tidemark_spans",
		`histogram_quantile(0.99, sum by (le) (rate(tidemark_x_bucket{a="1"}[$__rate_interval])))`:        "tidemark_x_bucket",
		`max(tidemark_a) / ignoring (node) sum without (kind) (tidemark_b offset 5m) > 1e3 and up`:        "tidemark_a tidemark_b up",
		`sum(increase(go_goroutines[5m])) or vector(0)`:                                                   "go_goroutines",
		`rate(tidemark_messaging_sent_envelopes_total{node!~"n[12]"}[1m:10s]) * on (instance) group_left`: "tidemark_messaging_sent_envelopes_total",
	} {
		if got := strings.Join(metricNames(expr), " "); got != want {
			t.Errorf("metricNames(%q) = %q, want %q", expr, got, want)
		}
	}
}

// TestDashboardsNameExportedMetrics: every query of every dashboard in dashboards/ names only
// metrics a running node registers (its own series, the maintainer collector's, the
// transport's, Go's and the process's), so a renamed metric cannot leave a panel empty.
func TestDashboardsNameExportedMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and a node")
	}
	files, err := filepath.Glob("../dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards found: %v", err)
	}
	etcd := embedetcd.StartForTest(t)
	n := startTestNode(t, etcd.ClientURLs(), "n1")
	// The transport registers its metrics when Run starts it, before the node registers in etcd.
	deadline := time.Now().Add(15 * time.Second)
	for {
		nodes, err := etcdutil.ListNodes(context.Background(), etcd.Client(t), etcdutil.Keys{Cluster: "itest"})
		if err == nil && len(nodes) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not registered: %v %v", nodes, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	registered := registeredIn(n.srv.reg)

	// The check itself must catch a name the node does not export.
	bogus := []byte(`{"panels": [{"type": "row", "panels": [{"title": "p", "targets": [{"expr": "rate(tidemark_spans_totl[1m])"}]}]}]}`)
	if unknown, _, err := unknownMetrics(bogus, registered); err != nil || len(unknown) != 1 || !strings.Contains(unknown[0], "tidemark_spans_totl") {
		t.Fatalf("a misspelt metric was not caught: %v %v", unknown, err)
	}

	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		unknown, checked, err := unknownMetrics(raw, registered)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, u := range unknown {
			t.Errorf("%s: %s is not a metric the server exports", f, u)
		}
		if checked < 10 {
			t.Errorf("%s: only %d metric names checked; is the dashboard parsed right?", f, checked)
		}
		t.Logf("%s: %d metric names checked", filepath.Base(f), checked)
	}
}
