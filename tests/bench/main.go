package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
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
	scenarios := fs.String("scenarios", "spans,cdc", "what to run, comma-separated: spans (the scheduler at -sizes), cdc (the data plane), moves (move pauses, both modes), cdcscale (cold start and failover with the etcd dispatcher at -cdc-scale-tables)")
	var mc movesConfig
	registerMoves(fs, &mc)
	movesJSONOut := fs.String("moves-json", "", "also write the moves figures as JSON to this file")
	var cc cdcConfig
	fs.IntVar(&cc.events, "cdc-events", 1000000, "data plane: source events each replication phase writes")
	fs.IntVar(&cc.keys, "cdc-keys", 100000, "data plane: distinct source keys the events go to")
	fs.IntVar(&cc.perTxn, "cdc-txn", 100, "data plane: puts per source transaction (one revision) of the throughput loads")
	fs.IntVar(&cc.ranges, "cdc-ranges", 12, "data plane: source key ranges, one table (span) each, shared by the nodes")
	fs.IntVar(&cc.writers, "cdc-writers", 32, "data plane: concurrent writers of the load")
	fs.Float64Var(&cc.lagRate, "lag-rate", 5000, "data plane: events/s of the steady load the lag is measured at (0: skip the lag phase)")
	fs.DurationVar(&cc.lagWindow, "lag-window", 20*time.Second, "data plane: how long the steady lag is measured before the kill")
	fs.BoolVar(&cc.kill, "kill", true, "data plane: after the steady lag, kill -9 a worker and measure until the lag is back under 1 s")
	fs.StringVar(&cc.etcdctl, "etcdctl", "", "data plane: the etcdctl whose make-mirror is compared (default: etcdctl on PATH)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (it hosts the etcds of the data plane) to this file")
	cdcJSONOut := fs.String("cdc-json", "", "also write the data-plane figures as JSON to this file")
	scaleTables := fs.Int("cdc-scale-tables", 100000, "cdcscale: numbered source tables (one span each) of the etcd-dispatcher changefeed")
	scaleJSONOut := fs.String("cdc-scale-json", "", "also write the cdcscale figures as JSON to this file")
	logLevel := fs.String("log-level", "warn", "the servers' --log-level (debug to follow a stall)")
	serverPprof := fs.Bool("pprof", false, "start the servers with --enable-pprof (profiles at <status-addr>/debug/pprof/, addresses in the log)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(stderr, "bench: -cpuprofile:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	runSpans, runData, runMovesScenario, runScale := false, false, false, false
	for _, s := range strings.Split(*scenarios, ",") {
		switch strings.TrimSpace(s) {
		case "spans":
			runSpans = true
		case "cdc":
			runData = true
		case "moves":
			runMovesScenario = true
		case "cdcscale":
			runScale = true
		default:
			fmt.Fprintf(stderr, "bench: -scenarios %q: want spans, cdc, moves, cdcscale or a list of them\n", *scenarios)
			return 2
		}
	}
	if runData && (cc.events < 1 || cc.keys < cc.perTxn || cc.perTxn < 1 || cc.ranges < 1 || cc.ranges > 100 || cc.writers < 1) {
		fmt.Fprintf(stderr, "bench: -cdc-events %d -cdc-keys %d -cdc-txn %d -cdc-ranges %d -cdc-writers %d: want positive counts, at least as many keys as puts per transaction, at most 100 ranges\n",
			cc.events, cc.keys, cc.perTxn, cc.ranges, cc.writers)
		return 2
	}
	if runScale && (*scaleTables < 1 || *scaleTables > 1000000) {
		fmt.Fprintf(stderr, "bench: -cdc-scale-tables %d: want 1 to 1000000\n", *scaleTables)
		return 2
	}
	if err := mc.check(); runMovesScenario && err != nil {
		fmt.Fprintln(stderr, "bench:", err)
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
	if !runSpans {
		counts = nil
	}
	for _, n := range counts {
		sizeDir := filepath.Join(dir, strconv.Itoa(n))
		if err := os.MkdirAll(sizeDir, 0o755); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		logf("%d spans on %d nodes (logs in %s)", n, *nodes, sizeDir)
		results = append(results, runSize(runConfig{bin: binPath, dir: sizeDir, nodes: *nodes, ttl: *ttl,
			ingressWindow: *window, timeout: *timeout, logLevel: *logLevel, pprof: *serverPprof, logf: logf}, n))
	}
	failed := false
	if runSpans {
		printTable(stdout, results)
	}
	if runData {
		dataDir := filepath.Join(dir, "cdc")
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		logf("data plane: %d events per phase on %d nodes (logs in %s)", cc.events, *nodes, dataDir)
		cr := runCDC(runConfig{bin: binPath, dir: dataDir, nodes: *nodes, ttl: *ttl, timeout: *timeout, logLevel: *logLevel, pprof: *serverPprof, logf: logf}, cc)
		printCDC(stdout, cr, *ttl)
		failed = len(cr.Errors) > 0
		if *cdcJSONOut != "" {
			b, _ := json.MarshalIndent(cdcJSON(cr), "", "  ")
			if err := os.WriteFile(*cdcJSONOut, append(b, '\n'), 0o644); err != nil {
				fmt.Fprintln(stderr, "bench:", err)
				return 1
			}
		}
	}
	if runMovesScenario {
		mf, err := movesScenario(runConfig{bin: binPath, dir: filepath.Join(dir, "moves"), nodes: *nodes, ttl: *ttl, timeout: *timeout,
			logLevel: *logLevel, pprof: *serverPprof, logf: logf}, mc, *movesJSONOut, stdout)
		if err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		failed = failed || mf
	}
	if runScale {
		scaleDir := filepath.Join(dir, "cdcscale")
		if err := os.MkdirAll(scaleDir, 0o755); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		logf("etcd dispatcher: %d source tables on %d nodes (logs in %s)", *scaleTables, *nodes, scaleDir)
		sr := runCDCScale(runConfig{bin: binPath, dir: scaleDir, nodes: *nodes, ttl: *ttl, timeout: *timeout, logLevel: *logLevel, pprof: *serverPprof, logf: logf}, *scaleTables)
		printCDCScale(stdout, sr, *ttl)
		failed = failed || len(sr.Errors) > 0
		if *scaleJSONOut != "" {
			b, _ := json.MarshalIndent(scaleJSON(sr), "", "  ")
			if err := os.WriteFile(*scaleJSONOut, append(b, '\n'), 0o644); err != nil {
				fmt.Fprintln(stderr, "bench:", err)
				return 1
			}
		}
	}
	if *jsonOut != "" && runSpans {
		b, _ := json.MarshalIndent(jsonResults(results), "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
	}
	for _, r := range results {
		failed = failed || len(r.Errors) > 0
	}
	if failed {
		return 1
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
