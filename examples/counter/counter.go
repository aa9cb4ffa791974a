package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/node"
	"github.com/tidemark/tidemark/ts"
)

// KindName is the dispatcher kind this program adds; a changefeed runs it when created with
// `tidemark ctl changefeed create NAME --tables ... --dispatcher counter`.
const KindName = "counter"

// lag is how far the counter's position trails the clock: its "events" are the milliseconds of
// the clock, counted once each per span, so a position of now-lag is all the work there is.
const lag = 100 * time.Millisecond

// Tally is one line of the output: dispatcher Dispatcher on Node counted the Units (ms of
// clock time) in the ts range (From, To] of its span [Start, End) of Table, at wall time AtMs.
type Tally struct {
	Node       string `json:"node"`
	Dispatcher string `json:"dispatcher"`
	Table      int64  `json:"table"`
	Start      string `json:"start"`
	End        string `json:"end"`
	From       uint64 `json:"from"`
	To         uint64 `json:"to"`
	Units      int64  `json:"units"`
	AtMs       int64  `json:"at_ms"`
}

// counterKind is the node.Kind of "counter": one output file per node and changefeed, under the
// node's data dir, that every dispatcher of the changefeed on the node appends to.
func counterKind(env node.Env) (dispatcher.Factory, io.Closer, error) {
	dir := filepath.Join(env.DataDir, "counter")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("counter: %w", err)
	}
	out, err := openOutput(filepath.Join(dir, env.Changefeed.ID+".jsonl"), env.OnSinkError)
	if err != nil {
		return nil, nil, err
	}
	return &factory{node: env.Node, out: out}, out, nil
}

// factory creates counters. New keeps nothing per dispatcher ID, so creating the same ID again
// (a retry, a restart) simply starts a fresh counter from the start ts it is given: rule 1 of
// the dispatcher.Dispatcher contract.
type factory struct {
	node string
	out  *output
}

func (f *factory) New(cfg heartbeatpb.DispatcherConfig, _ heartbeatpb.TableConfig) (dispatcher.Dispatcher, error) {
	if cfg.StartTs == 0 {
		return nil, errors.New("counter: no start ts")
	}
	return &counter{f: f, cfg: cfg, checkpoint: cfg.StartTs}, nil
}

// Flush makes every tally handed to the output durable (rule 3: the node reports the polled
// checkpoints only after this returns nil).
func (f *factory) Flush() error { return f.out.flush() }

// counter is the dispatcher of one span. Its state is one field: working or not.
type counter struct {
	f          *factory
	cfg        heartbeatpb.DispatcherConfig
	checkpoint uint64
	stopped    bool
}

func (c *counter) ID() heartbeatpb.DispatcherID { return c.cfg.Id }
func (c *counter) Span() heartbeatpb.TableSpan  { return c.cfg.Span }
func (c *counter) Mode() heartbeatpb.Mode       { return c.cfg.Mode }

// Poll counts the units in (checkpoint, now-lag] and hands the tally to the output; the new
// checkpoint is returned only once the output took it (rule 3), and the first tally starts at
// the start ts exactly (rule 2).
func (c *counter) Poll(now time.Time) (uint64, uint64) {
	target := ts.FromTime(now.Add(-lag))
	if c.stopped || target <= c.checkpoint {
		return c.checkpoint, 0
	}
	t := Tally{
		Node: c.f.node, Dispatcher: dispatcher.FormatID(c.cfg.Id), Table: c.cfg.Span.TableId,
		Start: hex.EncodeToString(c.cfg.Span.StartKey), End: hex.EncodeToString(c.cfg.Span.EndKey),
		From: c.checkpoint, To: target, Units: ts.PhysicalMs(target) - ts.PhysicalMs(c.checkpoint), AtMs: now.UnixMilli(),
	}
	if err := c.f.out.add(t); err != nil {
		return c.checkpoint, 0 // not handed over: the checkpoint stays, the next Poll retries
	}
	c.checkpoint = target
	return c.checkpoint, 0
}

// Stop makes the checkpoint final: Poll writes nothing afterwards (rule 4).
func (c *counter) Stop(time.Time) (uint64, error) {
	c.stopped = true
	return c.checkpoint, nil
}

// Close ends the counter; the output belongs to the factory (rule 5).
func (c *counter) Close() error {
	c.stopped = true
	return nil
}

// output is the file the tallies go to. Tallies wait in memory until flush writes and fsyncs
// them; a failed flush cuts the file back to its last durable size and keeps the tallies for
// the next one, so a tally is in the file exactly once, whole.
type output struct {
	mu      sync.Mutex // the node's loop flushes; its shutdown closes
	f       *os.File
	pending bytes.Buffer
	durable int64
	onError func(error)
}

func openOutput(path string, onError func(error)) (*output, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("counter: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("counter: %w", err)
	}
	if onError == nil {
		onError = func(error) {}
	}
	return &output{f: f, durable: fi.Size(), onError: onError}, nil
}

func (o *output) add(t Tally) error {
	line, err := json.Marshal(t)
	if err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil {
		return errors.New("counter: output closed")
	}
	o.pending.Write(append(line, '\n'))
	return nil
}

func (o *output) flush() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil {
		return errors.New("counter: output closed")
	}
	if o.pending.Len() == 0 {
		return nil
	}
	_, err := o.f.Write(o.pending.Bytes())
	if err == nil {
		err = o.f.Sync()
	}
	if err != nil {
		o.onError(err)
		if terr := o.f.Truncate(o.durable); terr != nil {
			err = errors.Join(err, terr)
		}
		return fmt.Errorf("counter: flush: %w", err)
	}
	o.durable += int64(o.pending.Len())
	o.pending.Reset()
	return nil
}

// Close closes the file. Tallies still pending are dropped, not written: the node reported
// none of them, so the span's next owner does that work again from the reported checkpoint,
// and writing them now (after the node may have lost the span) could overlap that owner.
func (o *output) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil {
		return nil
	}
	err := o.f.Close()
	o.f, o.pending = nil, bytes.Buffer{}
	return err
}
