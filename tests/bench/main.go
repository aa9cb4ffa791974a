package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, measures every size and prints the table; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("bin", "bin/tidemark", "the tidemark binary to run (make build)")
	sizes := fs.String("sizes", "10000,100000,1000000", "comma-separated span counts, one fresh cluster each")
	nodes := fs.Int("nodes", 3, "server processes")
	ttl := fs.Duration("session-ttl", 5*time.Second, "the servers' etcd session TTL")
	window := fs.Duration("ingress-window", 10*time.Second, "how long steady-state ingress is measured")
	timeout := fs.Duration("timeout", 10*time.Minute, "the longest one phase may take")
	jsonOut := fs.String("json", "", "also write the results as JSON to this file")
	workDir := fs.String("work-dir", "", "where data dirs and logs go (default: a temporary dir, removed unless -keep)")
	keep := fs.Bool("keep", false, "keep the work dir (logs) after the run")
	logLevel := fs.String("log-level", "warn", "the servers' --log-level (debug to follow a stall)")
	pprof := fs.Bool("pprof", false, "start the servers with --enable-pprof (profiles at <status-addr>/debug/pprof/, addresses in the log)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	counts, err := parseSizes(*sizes)
	if err != nil || *nodes < 2 {
		fmt.Fprintf(stderr, "bench: -sizes %q -nodes %d: %v (want positive counts and at least 2 nodes)\n", *sizes, *nodes, err)
		return 2
	}
	binPath, err := filepath.Abs(*bin)
	if err == nil {
		_, err = os.Stat(binPath)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: -bin %s: %v (run make build first)\n", *bin, err)
		return 2
	}
	dir := *workDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "tidemark-bench-"); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		if !*keep {
			defer os.RemoveAll(dir)
		}
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}
	var results []result
	for _, n := range counts {
		sizeDir := filepath.Join(dir, strconv.Itoa(n))
		if err := os.MkdirAll(sizeDir, 0o755); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		logf("%d spans on %d nodes (logs in %s)", n, *nodes, sizeDir)
		results = append(results, runSize(runConfig{bin: binPath, dir: sizeDir, nodes: *nodes, ttl: *ttl,
			ingressWindow: *window, timeout: *timeout, logLevel: *logLevel, pprof: *pprof, logf: logf}, n))
	}
	printTable(stdout, results)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(jsonResults(results), "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
	}
	for _, r := range results {
		if len(r.Errors) > 0 {
			return 1
		}
	}
	return 0
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad size %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}
