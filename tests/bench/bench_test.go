package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHarnessSmall runs the harness end to end on real processes at a small size: every figure
// must come out measured (a phase that fails or a metric that disappears shows as an error and
// a "-" in the table), and the table and the JSON must both carry it.
func TestHarnessSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts etcd and three servers")
	}
	dir := t.TempDir()
	bin := buildBinary(t)
	var stdout, stderr bytes.Buffer
	jsonPath := filepath.Join(dir, "bench.json")
	code := run([]string{"-bin", bin, "-scenarios", "spans", "-sizes", "200,400", "-session-ttl", "2s", "-ingress-window", "2s",
		"-timeout", "60s", "-json", jsonPath, "-work-dir", filepath.Join(dir, "work")}, &stdout, &stderr)
	t.Logf("table:\n%s", stdout.String())
	if code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, stderr.String())
	}
	for _, f := range figures {
		if !strings.Contains(stdout.String(), f.name) {
			t.Errorf("table lacks %q", f.name)
		}
	}
	var rows []map[string]any
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rows); err != nil || len(rows) != 2 {
		t.Fatalf("json %s: %v", b, err)
	}
	for _, row := range rows {
		for k, v := range row {
			if k == "spans" {
				continue
			}
			if f, ok := v.(float64); !ok || f <= 0 {
				t.Errorf("%v spans: %s = %v, want a positive measurement", row["spans"], k, v)
			}
		}
	}
}

func TestSumMetric(t *testing.T) {
	text := `# HELP x_total help
x_total{peer="a"} 3
x_total{peer="b"} 4.5
x_total_other 100
x 7
`
	if v, err := sumMetric(strings.NewReader(text), "x_total"); err != nil || v != 7.5 {
		t.Fatalf("sum = %v, %v; want 7.5", v, err)
	}
	if _, err := sumMetric(strings.NewReader(text), "missing"); err == nil {
		t.Fatal("a missing metric must be an error, not 0")
	}
}

func TestParseSizes(t *testing.T) {
	if got, err := parseSizes("10, 20"); err != nil || len(got) != 2 || got[1] != 20 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"", "0", "-1", "1,x"} {
		if _, err := parseSizes(bad); err == nil {
			t.Errorf("parseSizes(%q) accepted", bad)
		}
	}
}
