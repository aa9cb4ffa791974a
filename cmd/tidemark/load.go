package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/etcdutil"
)

// loadFlags are the flags of `tidemark load`.
type loadFlags struct {
	etcd, prefix   string
	etcdTLS        etcdutil.TLSFiles
	keys, events   int
	rate           float64
	deleteRatio    float64
	workers        int
	seed           uint64
	progressPeriod time.Duration
	timeout        time.Duration
}

// loadEvent is one write of the load: a put of a new value, or a delete, of one key.
type loadEvent struct {
	seq    int
	key    string
	delete bool
}

// loadStats are what the workers count; atomics, since every worker adds to them.
type loadStats struct {
	puts, deletes, errors atomic.Int64
}

func (s *loadStats) done() int64 { return s.puts.Load() + s.deletes.Load() }

func newLoadCmd() *cobra.Command {
	var lf loadFlags
	cmd := &cobra.Command{
		Use:   "load --prefix P --keys N --events M",
		Short: "Write puts and deletes to an etcd cluster: a source for the change-data dispatcher",
		Long: "load writes M events over N keys under a prefix of an etcd cluster: each event puts a new value\n" +
			"into, or (with --delete-ratio) deletes, one key picked at random (seeded: the same flags give the\n" +
			"same sequence). It prints a progress line (redrawn on a terminal, every --progress otherwise) and a\n" +
			"summary, and exits 0 when every event was written, 1 when some could not be.",
		Example: "  tidemark load --prefix /demo/ --keys 1000 --events 100000 --rate 5000\n" +
			"  tidemark load --etcd http://10.0.0.1:2379 --prefix /registry/ --keys 50 --events 2000 --delete-ratio 0.2",
		Args: exactArgs(0, "no arguments (everything is a flag)"),
		RunE: func(c *cobra.Command, _ []string) error { return runLoad(c, lf) },
	}
	fl := cmd.Flags()
	fl.StringVar(&lf.etcd, "etcd", defaultEtcd, "etcd client URLs of the source, comma-separated")
	fl.StringVar(&lf.etcdTLS.CA, "etcd-ca", "", "CA file to verify etcd's certificate (turns on TLS)")
	fl.StringVar(&lf.etcdTLS.Cert, "etcd-cert", "", "client certificate file for etcd (mutual TLS)")
	fl.StringVar(&lf.etcdTLS.Key, "etcd-key", "", "client key file for etcd (mutual TLS)")
	fl.StringVar(&lf.prefix, "prefix", "", "key prefix every written key starts with, e.g. /demo/ (required)")
	fl.IntVar(&lf.keys, "keys", 0, "how many distinct keys (required, at least 1)")
	fl.IntVar(&lf.events, "events", 0, "how many puts and deletes in all (required, at least 1)")
	fl.Float64Var(&lf.rate, "rate", 0, "events per second (0: as fast as etcd takes them)")
	fl.Float64Var(&lf.deleteRatio, "delete-ratio", 0, "share of events that are deletes, from 0 to 1")
	fl.IntVar(&lf.workers, "workers", 64, "concurrent writers (etcd takes more writes per second from more of them)")
	fl.Uint64Var(&lf.seed, "seed", 1, "seed of the key and operation sequence")
	fl.DurationVar(&lf.progressPeriod, "progress", 2*time.Second, "how often to print progress when the output is not a terminal")
	fl.DurationVar(&lf.timeout, "timeout", 5*time.Second, "deadline of each write, including its retries")
	return cmd
}

// check validates the flags; every error is a usage error naming the flag.
func (lf loadFlags) check() ([]string, error) {
	eps, err := parseEndpoints("etcd", lf.etcd)
	if err != nil {
		return nil, err
	}
	switch {
	case lf.prefix == "":
		return nil, usagef("--prefix is required, e.g. --prefix /demo/")
	case strings.HasPrefix(lf.prefix, "/tidemark/"):
		return nil, usagef("--prefix %q is under /tidemark/, where tidemark keeps its own keys; pick another", lf.prefix)
	case lf.keys < 1:
		return nil, usagef("--keys %d: want at least 1", lf.keys)
	case lf.events < 1:
		return nil, usagef("--events %d: want at least 1", lf.events)
	case lf.rate < 0 || math.IsNaN(lf.rate) || math.IsInf(lf.rate, 0):
		return nil, usagef("--rate %v: want events per second, 0 or more (0: no limit)", lf.rate)
	case !(lf.deleteRatio >= 0 && lf.deleteRatio <= 1):
		return nil, usagef("--delete-ratio %v: want a share from 0 to 1", lf.deleteRatio)
	case lf.workers < 1 || lf.workers > 1024:
		return nil, usagef("--workers %d: want 1 to 1024", lf.workers)
	case lf.progressPeriod <= 0:
		return nil, usagef("--progress %v: want a duration above zero", lf.progressPeriod)
	case lf.timeout <= 0:
		return nil, usagef("--timeout %v: want a duration above zero", lf.timeout)
	}
	return eps, nil
}

func runLoad(c *cobra.Command, lf loadFlags) error {
	eps, err := lf.check()
	if err != nil {
		return err
	}
	tlsCfg, err := etcdutil.ClientTLS(lf.etcdTLS)
	if err != nil {
		return &usageError{err: fmt.Errorf("--etcd-ca/--etcd-cert/--etcd-key: %w", err)}
	}
	ctx, stop := signalContext(c.Context())
	defer stop()
	cli, err := etcdutil.Connect(ctx, eps, tlsCfg, lf.timeout)
	if err != nil {
		return fmt.Errorf("cannot reach the source etcd: %w", err)
	}
	defer cli.Close()
	out := c.OutOrStdout()
	var st loadStats
	start := time.Now()
	progressDone := make(chan struct{})
	var progressWG sync.WaitGroup
	progressWG.Add(1)
	go func() { defer progressWG.Done(); reportProgress(out, &st, lf, start, progressDone) }()
	writeLoad(ctx, cli, lf, &st)
	close(progressDone)
	progressWG.Wait()

	elapsed := time.Since(start)
	done := st.done()
	fmt.Fprintf(out, "wrote %d of %d events (%d puts, %d deletes) over %d keys under %s in %s: %.0f events/s; %d errors\n",
		done, lf.events, st.puts.Load(), st.deletes.Load(), lf.keys, lf.prefix, elapsed.Round(time.Millisecond),
		float64(done)/max(elapsed.Seconds(), 1e-9), st.errors.Load())
	switch {
	case ctx.Err() != nil && done < int64(lf.events):
		return fmt.Errorf("interrupted after %d of %d events", done, lf.events)
	case done < int64(lf.events):
		return fmt.Errorf("%d of %d events could not be written (each was tried until --timeout %s); is the source etcd healthy?",
			int64(lf.events)-done, lf.events, lf.timeout)
	}
	return nil
}

// writeLoad writes the events with lf.workers writers, paced to lf.rate, until all are written
// or ctx ends. The sequence (which key, put or delete) comes from lf.seed alone.
func writeLoad(ctx context.Context, cli *clientv3.Client, lf loadFlags, st *loadStats) {
	events := make(chan loadEvent, lf.workers)
	var wg sync.WaitGroup
	for range lf.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range events {
				if ctx.Err() != nil {
					continue // interrupted before it was sent: not written, and not an error
				}
				if writeEvent(ctx, cli, ev, lf.timeout) {
					if ev.delete {
						st.deletes.Add(1)
					} else {
						st.puts.Add(1)
					}
				} else {
					st.errors.Add(1)
				}
			}
		}()
	}
	next := loadSequence(lf)
	start := time.Now()
	for i := 0; i < lf.events && ctx.Err() == nil; i++ {
		if lf.rate > 0 {
			// Event i is due at start + i/rate: pacing by the schedule, not by sleeps between
			// events, keeps the average exact even when single writes stall.
			if wait := time.Until(start.Add(time.Duration(float64(i) / lf.rate * float64(time.Second)))); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
				}
			}
		}
		ev := next()
		select {
		case events <- ev:
		case <-ctx.Done():
		}
	}
	close(events)
	wg.Wait()
}

// loadSequence returns the generator of the events in order: the same flags give the same
// sequence, so a test (or a user) can replay it.
func loadSequence(lf loadFlags) func() loadEvent {
	rng := rand.New(rand.NewPCG(lf.seed, 0x7ed3))
	width := len(fmt.Sprint(lf.keys - 1))
	seq := 0
	return func() loadEvent {
		ev := loadEvent{seq: seq, key: fmt.Sprintf("%s%0*d", lf.prefix, width, rng.IntN(lf.keys)),
			delete: rng.Float64() < lf.deleteRatio}
		seq++
		return ev
	}
}

// writeEvent writes one event, retrying transient failures until timeout; false: not written.
// An interrupt (ctx) does not cancel a write already sent: etcd may commit a canceled request
// after the client gave up on it, so the summary would count as failed, and a checker reading
// the source's revision right after the load exits would miss, a write that lands later. It
// only stops the retries.
func writeEvent(ctx context.Context, cli *clientv3.Client, ev loadEvent, timeout time.Duration) bool {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	for backoff := 20 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		var err error
		if ev.delete {
			_, err = cli.Delete(wctx, ev.key)
		} else {
			_, err = cli.Put(wctx, ev.key, fmt.Sprintf("v%d", ev.seq))
		}
		if err == nil {
			return true
		}
		if errors.Is(wctx.Err(), context.DeadlineExceeded) || ctx.Err() != nil {
			return false
		}
		select {
		case <-time.After(backoff):
		case <-wctx.Done():
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// reportProgress prints a progress line: redrawn in place on a terminal, one line every
// lf.progressPeriod otherwise (logs and pipes would fill with carriage returns).
func reportProgress(out io.Writer, st *loadStats, lf loadFlags, start time.Time, done <-chan struct{}) {
	tty := isTerminal(out)
	period := lf.progressPeriod
	if tty {
		period = 200 * time.Millisecond
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-done:
			if tty {
				fmt.Fprint(out, "\r\033[K")
			}
			return
		case <-tick.C:
			n := st.done()
			line := fmt.Sprintf("%d/%d events (%.0f%%), %.0f events/s, %d errors",
				n, lf.events, 100*float64(n)/float64(lf.events), float64(n)/time.Since(start).Seconds(), st.errors.Load())
			if tty {
				fmt.Fprint(out, "\r\033[K"+line)
			} else {
				fmt.Fprintln(out, line)
			}
		}
	}
}

// isTerminal: w is a character device, so a redrawn line reads well there.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
