package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidemark/tidemark/dispatcher/etcdcdc"
)

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tidemark")
	build := exec.Command("go", "build", "-o", bin, "./cmd/tidemark")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestDataPlaneSmoke runs the data-plane scenario small: 5,000 events into the file sink, the
// etcd mirror and make-mirror, each checked event by event (a missing event fails the run),
// then a short steady lag window with the mirror diffed at the end (no kill: that waits a TTL).
func TestDataPlaneSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts three etcds and three servers")
	}
	if _, err := findEtcdctl(""); err != nil {
		t.Skip(err)
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	jsonPath := filepath.Join(dir, "cdc.json")
	code := run([]string{"-bin", bin, "-scenarios", "cdc", "-cdc-events", "5000", "-cdc-keys", "2000", "-cdc-ranges", "6",
		"-lag-rate", "2000", "-lag-window", "2s", "-kill=false", "-session-ttl", "2s", "-timeout", "30s",
		"-cdc-json", jsonPath, "-work-dir", filepath.Join(dir, "work")}, &stdout, &stderr)
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
	for _, k := range []string{"file_events_per_s", "mirror_events_per_s", "make_mirror_events_per_s", "mirror_over_make_mirror", "lag_p50_s", "lag_p99_s"} {
		if v, ok := m[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive measurement", k, m[k])
		}
	}
	if !strings.Contains(stdout.String(), "ratio mirror / make-mirror") {
		t.Error("table lacks the ratio")
	}
}

// TestFindEtcdctlSaysHowToGetOne: a missing etcdctl is an error naming the package and the
// flag, not the bare exec failure of a hard-coded path.
func TestFindEtcdctlSaysHowToGetOne(t *testing.T) {
	_, err := findEtcdctl(filepath.Join(t.TempDir(), "etcdctl"))
	if err == nil || !strings.Contains(err.Error(), "etcd-client") || !strings.Contains(err.Error(), "-etcdctl") {
		t.Fatalf("findEtcdctl of a missing file: %v, want an error naming etcd-client and -etcdctl", err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip(err)
	}
	if got, err := findEtcdctl(sh); err != nil || got != sh {
		t.Fatalf("findEtcdctl(%s) = %q, %v; want the flag's binary", sh, got, err)
	}
}

// TestCheckFileEventsCatchesLoss: the file sink verdict the harness uses fails when one
// event of the load is in no record, or when the history holds fewer events than were written.
func TestCheckFileEventsCatchesLoss(t *testing.T) {
	var events []etcdcdc.Event
	var records []etcdcdc.Record
	for i := range 10 {
		e := etcdcdc.Event{Key: []byte(keyspace{root: "/b/", keys: 4, ranges: 2}.key(i)), Value: []byte(value(i, time.Unix(0, int64(i)))), Revision: int64(i + 2)}
		events = append(events, e)
		records = append(records, etcdcdc.Record{Key: string(e.Key), Value: string(e.Value), Op: "put", ModRevision: e.Revision, Dispatcher: "d1"})
	}
	if err := checkFileEvents(events, records, 10); err != nil {
		t.Fatalf("complete sinks: %v", err)
	}
	if err := checkFileEvents(events, append(append([]etcdcdc.Record(nil), records[:4]...), records[5:]...), 10); err == nil {
		t.Fatal("a missing event passed")
	}
	if err := checkFileEvents(events[:9], records[:9], 10); err == nil {
		t.Fatal("a short history passed")
	}
}

func TestLagFigures(t *testing.T) {
	t0 := time.Unix(100, 0)
	var s []lagSample
	for i := range 100 {
		s = append(s, lagSample{arrived: t0.Add(time.Duration(i) * 100 * time.Millisecond), lag: time.Duration(i) * time.Millisecond})
	}
	if p := percentile(s, 0.5); p != 0.05 {
		t.Errorf("p50 = %v", p)
	}
	if p := percentile(s, 0.99); p != 0.099 {
		t.Errorf("p99 = %v", p)
	}
	if !math.IsNaN(percentile(nil, 0.5)) {
		t.Error("no samples must be NaN")
	}
	// A kill at 1 s; events late by 2 s arrive until 4 s; the samples go on to 9.9 s.
	for i := range 30 {
		s = append(s, lagSample{arrived: t0.Add(time.Second + time.Duration(i)*100*time.Millisecond), lag: 2 * time.Second})
	}
	if d, ok := recovery(s, t0.Add(time.Second), time.Second, 2*time.Second); !ok || d != 2900*time.Millisecond {
		t.Errorf("recovery = %v %v, want 2.9s", d, ok)
	}
	if _, ok := recovery(s, t0.Add(time.Second), time.Second, 8*time.Second); ok {
		t.Error("a late event near the end of the samples must not count as recovered")
	}
}
