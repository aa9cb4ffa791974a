package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestCDCScaleSmall runs the cdcscale scenario small: every figure measured, and every event
// written before and after the kill of the maintainer found in the file sinks (the check reads
// the killed node's files too; a sink missing them fails the run).
func TestCDCScaleSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts two etcds and three servers")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	jsonPath := filepath.Join(dir, "scale.json")
	code := run([]string{"-bin", bin, "-scenarios", "cdcscale", "-cdc-scale-tables", "300", "-session-ttl", "2s", "-timeout", "60s",
		"-cdc-scale-json", jsonPath, "-work-dir", filepath.Join(dir, "work")}, &stdout, &stderr)
	t.Logf("table:\n%s", stdout.String())
	if code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, stderr.String())
	}
	var m map[string]any
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("json %s: %v", b, err)
	}
	for _, k := range []string{"cold_start_s", "failover_s", "bootstrap_s", "restore_s"} {
		if v, ok := m[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive measurement", k, m[k])
		}
	}
	if m["events_checked"] != float64(600) || m["tables"] != float64(300) {
		t.Errorf("events_checked %v tables %v, want 600 and 300", m["events_checked"], m["tables"])
	}
}
