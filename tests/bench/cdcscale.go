package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The cdcscale scenario: the spans scenario's cold start and failover with the etcd change-data
// dispatcher instead of the simulated one, at tables numbered source tables (one span, one
// source watch each) into the file sink, with real data written before and after the kill and
// checked in the sinks.

const (
	cfScale     = "cdcscale"
	scalePrefix = "/bench/scale/t"
)

// cdcScaleResult: NaN is a figure that could not be measured.
type cdcScaleResult struct {
	Tables           int      `json:"tables"`
	ColdStartSeconds float64  `json:"cold_start_s"`
	FailoverSeconds  float64  `json:"failover_s"`
	BootstrapSeconds float64  `json:"bootstrap_s"`
	RestoreSeconds   float64  `json:"restore_s"`
	EventsChecked    int      `json:"events_checked"`
	Errors           []string `json:"errors,omitempty"`
}

func runCDCScale(rc runConfig, tables int) cdcScaleResult {
	r := cdcScaleResult{Tables: tables, ColdStartSeconds: math.NaN(), FailoverSeconds: math.NaN(), BootstrapSeconds: math.NaN(),
		RestoreSeconds: math.NaN()}
	fail := func(what string, err error) { r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", what, err)) }
	srcSrv, src, err := startEtcd(rc.dir, "source")
	if err != nil {
		fail("source etcd", err)
		return r
	}
	defer srcSrv.Close()
	defer src.Close()
	ctx := context.Background()
	c, err := startCluster(rc, rc.nodes)
	if err != nil {
		fail("start", err)
		return r
	}
	defer c.close()

	start := time.Now()
	if _, err := c.ctl(rc.timeout, "changefeed", "create", cfScale, "--dispatcher", "etcd", "--source-etcd", strings.Join(srcSrv.ClientURLs(), ","),
		"--source-table-prefix", scalePrefix, "--source-tables", strconv.Itoa(tables), "--sink", "file"); err != nil {
		fail("create", err)
		return r
	}
	if err := c.waitReplicating(cfScale, tables, 0, rc.timeout); err != nil {
		fail("cold start", err)
		return r
	}
	r.ColdStartSeconds = time.Since(start).Seconds()
	rc.logf("etcd dispatcher, %d tables: cold start %.2fs", tables, r.ColdStartSeconds)

	first, err := c.putEveryTable(rc, src, tables, "before")
	if err != nil {
		fail("load before the kill", err)
		return r
	}
	fo, err := c.failover(cfScale, tables, rc.timeout)
	if err != nil {
		fail("failover", err)
		return r
	}
	r.FailoverSeconds, r.BootstrapSeconds, r.RestoreSeconds = fo.took, fo.bootstrap, fo.restore
	rc.logf("etcd dispatcher, %d tables: failover %.2fs, bootstrap %.3fs, restore %.3fs", tables, fo.took, fo.bootstrap, fo.restore)
	second, err := c.putEveryTable(rc, src, tables, "after")
	if err != nil {
		fail("load after the kill", err)
		return r
	}
	if err := checkScaleFiles(ctx, c, src, first, second); err != nil {
		fail("sink check", err)
		return r
	}
	r.EventsChecked = first.written + second.written
	return r
}

// putEveryTable writes one key into every table, in transactions of 100 puts, and waits until
// the changefeed's checkpoint covers the last of them.
func (c *cluster) putEveryTable(rc runConfig, src *clientv3.Client, tables int, val string) (loadResult, error) {
	const perTxn, writers = 100, 8
	width := len(strconv.Itoa(tables))
	res := loadResult{firstRev: math.MaxInt64, start: time.Now()}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		firstErr error
		next     = make(chan int)
	)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for from := range next {
				ops := make([]clientv3.Op, 0, perTxn)
				for id := from; id < min(from+perTxn, tables+1); id++ {
					ops = append(ops, clientv3.OpPut(fmt.Sprintf("%s%0*d/k", scalePrefix, width, id), val))
				}
				resp, err := src.Txn(context.Background()).Then(ops...).Commit()
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					res.written += len(ops)
					res.firstRev = min(res.firstRev, resp.Header.Revision)
					res.lastRev = max(res.lastRev, resp.Header.Revision)
				}
				mu.Unlock()
			}
		}()
	}
	for from := 1; from <= tables; from += perTxn {
		next <- from
	}
	close(next)
	wg.Wait()
	res.end = time.Now()
	if firstErr != nil {
		return res, firstErr
	}
	if err := c.waitCheckpoint(cfScale, res.lastRev, rc.timeout); err != nil {
		return res, err
	}
	rc.logf("etcd dispatcher: %d puts (%q), revisions %d-%d, checkpoint covers them %.1fs after the first", res.written, val, res.firstRev, res.lastRev, time.Since(res.start).Seconds())
	return res, nil
}

// checkScaleFiles: every event of both loads is in some node's file sink (the killed node's
// files are read too), in revision order per dispatcher and key.
func checkScaleFiles(ctx context.Context, c *cluster, src *clientv3.Client, first, second loadResult) error {
	events, err := history(ctx, src, scalePrefix, first.firstRev-1, second.lastRev)
	if err != nil {
		return err
	}
	records, err := c.readFileSinks(cfScale)
	if err != nil {
		return err
	}
	return checkFileEvents(events, records, first.written+second.written)
}

func printCDCScale(w io.Writer, r cdcScaleResult, ttl time.Duration) {
	fmt.Fprintf(w, "\netcd dispatcher at %d source tables (one span and one source watch each, file sink; %d events checked in the sinks)\n", r.Tables, r.EventsChecked)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FIGURE\tUNIT\tVALUE\tTARGET")
	fmt.Fprintf(tw, "cold start\ts\t%s\t<= 60 s\n", format(r.ColdStartSeconds))
	fmt.Fprintf(tw, "failover (kill -9 maintainer)\ts\t%s\t<= TTL + 2 s = %s\n", format(r.FailoverSeconds), format((ttl + 2*time.Second).Seconds()))
	fmt.Fprintf(tw, "elected to bootstrapped\ts\t%s\t(reported)\n", format(r.BootstrapSeconds))
	fmt.Fprintf(tw, "restore (last answer to plan applied)\ts\t%s\t<= 1 s\n", format(r.RestoreSeconds))
	_ = tw.Flush()
	for _, e := range r.Errors {
		fmt.Fprintf(w, "cdcscale: %s\n", e)
	}
}

// scaleJSON is the result with NaN (which JSON cannot hold) as nil.
func scaleJSON(r cdcScaleResult) map[string]any {
	return figuresJSON(map[string]any{"tables": r.Tables, "events_checked": r.EventsChecked},
		map[string]float64{"cold_start_s": r.ColdStartSeconds, "failover_s": r.FailoverSeconds, "bootstrap_s": r.BootstrapSeconds,
			"restore_s": r.RestoreSeconds}, r.Errors)
}
