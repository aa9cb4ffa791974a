package etcdcdc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// Limits of one mirror transaction: etcd refuses more than 128 operations (its default
// --max-txn-ops) and requests over 1.5 MiB; one operation is the fence.
const (
	maxTxnOps   = 127
	maxTxnBytes = 1 << 20
)

// DefaultWriteTimeout bounds one mirror transaction; a timed-out one is settled before the
// next.
const DefaultWriteTimeout = 5 * time.Second

// MirrorConfig configures a MirrorSink.
type MirrorConfig struct {
	Client *clientv3.Client // the target etcd; the caller closes it
	// FenceRoot is where fence keys live: /tidemark/<cluster>/mirror/<changefeed>/.
	FenceRoot string
	// SourcePrefix of every source key is replaced by DestPrefix ("" keeps the key whole).
	SourcePrefix, DestPrefix string
	WriteTimeout             time.Duration
}

// MirrorSink applies events to a target etcd under a destination prefix, each batch in one
// transaction fenced by the span's owner key.
type MirrorSink struct {
	cfg     MirrorConfig
	mu      sync.Mutex
	lastErr error
}

// NewMirrorSink checks cfg and returns the sink.
func NewMirrorSink(cfg MirrorConfig) (*MirrorSink, error) {
	if cfg.Client == nil || cfg.FenceRoot == "" || cfg.DestPrefix == "" {
		return nil, fmt.Errorf("%w: mirror sink: client, fence root and destination prefix are required", dispatcher.ErrInvalid)
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	return &MirrorSink{cfg: cfg}, nil
}

// FenceRoot is the fence key directory of a changefeed's mirror in its target.
func FenceRoot(cluster, changefeed string) string {
	return "/tidemark/" + cluster + "/mirror/" + changefeed + "/"
}

// DestKey maps a source key to its mirror key; ok false when the key is not under the source
// prefix.
func (m *MirrorSink) DestKey(k []byte) ([]byte, bool) {
	if !bytes.HasPrefix(k, []byte(m.cfg.SourcePrefix)) {
		return nil, false
	}
	return append([]byte(m.cfg.DestPrefix), k[len(m.cfg.SourcePrefix):]...), true
}

// Open returns the writer of one dispatcher; its first Write claims the span's fence.
func (m *MirrorSink) Open(o Owner) SpanWriter {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	return &mirrorWriter{m: m, o: o, session: hex.EncodeToString(nonce[:]),
		fenceKey: m.fenceTable(o.Span.TableId) + hex.EncodeToString(o.Span.StartKey) + "-" + hex.EncodeToString(o.Span.EndKey)}
}

func (m *MirrorSink) fenceTable(table int64) string {
	return m.cfg.FenceRoot + "fence/" + strconv.FormatInt(table, 10) + "/"
}

// Err is the latest failed write not cleared by a successful one.
func (m *MirrorSink) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastErr
}

func (m *MirrorSink) record(err error) {
	m.mu.Lock()
	m.lastErr = err
	m.mu.Unlock()
}

// Close does nothing: the caller owns the client.
func (m *MirrorSink) Close() error { return nil }

// fenceValue is the JSON of a fence key: who owns the span and how far it applied.
type fenceValue struct {
	Dispatcher string `json:"dispatcher"`
	Session    string `json:"session"`
	Node       string `json:"node"`
	Start      string `json:"start"` // hex span keys
	End        string `json:"end"`
	Applied    int64  `json:"applied"`
}

type mirrorWriter struct {
	m        *MirrorSink
	o        Owner
	session  string
	fenceKey string
	fenceRev int64 // the mod revision this writer last left on its fence; 0 before the claim
	applied  int64
	// unresolved: a transaction failed with an unknown outcome; settle before writing again.
	unresolved bool
	deposed    error
}

func (w *mirrorWriter) value() string {
	b, _ := json.Marshal(fenceValue{Dispatcher: dispatcher.FormatID(w.o.ID), Session: w.session, Node: w.o.Node,
		Start: hex.EncodeToString(w.o.Span.StartKey), End: hex.EncodeToString(w.o.Span.EndKey), Applied: w.applied})
	return string(b)
}

// Write applies events in transactions of at most maxTxnOps operations, cutting before a key
// repeats (etcd refuses a key twice in one transaction, and folding would lose the order).
func (w *mirrorWriter) Write(ctx context.Context, events []Event, through int64) error {
	err := w.write(ctx, events, through)
	if !errors.Is(err, ErrFenced) {
		// A deposed writer is this span's news, not the sink's: the node's other spans
		// write on, and their checkpoints must not wait for it.
		w.m.record(err)
	}
	return err
}

func (w *mirrorWriter) write(ctx context.Context, events []Event, through int64) error {
	if w.deposed != nil {
		return w.deposed
	}
	if w.fenceRev == 0 {
		if err := w.claim(ctx); err != nil {
			return err
		}
	}
	if err := w.Settle(ctx); err != nil {
		return err
	}
	ops := make([]clientv3.Op, 0, maxTxnOps+1)
	seen := make(map[string]bool)
	size := 0
	flush := func(last int64) error {
		if len(ops) == 0 {
			return nil
		}
		w.applied = last
		err := w.commit(ctx, ops)
		ops, size = ops[:0], 0
		clear(seen)
		return err
	}
	for i, e := range events {
		dst, ok := w.m.DestKey(e.Key)
		if !ok {
			return fmt.Errorf("%w: mirror: source key %q is not under prefix %q", dispatcher.ErrInvalid, e.Key, w.m.cfg.SourcePrefix)
		}
		if len(ops) > 0 && (len(ops) == maxTxnOps || seen[string(dst)] || size+len(dst)+len(e.Value) > maxTxnBytes) {
			if err := flush(events[i-1].Revision); err != nil {
				return err
			}
		}
		seen[string(dst)] = true
		size += len(dst) + len(e.Value)
		if e.Delete {
			ops = append(ops, clientv3.OpDelete(string(dst)))
		} else {
			ops = append(ops, clientv3.OpPut(string(dst), string(e.Value)))
		}
	}
	return flush(through)
}

// commit runs ops and the fence update in one transaction guarded by the fence's revision.
func (w *mirrorWriter) commit(ctx context.Context, ops []clientv3.Op) error {
	ops = append(ops, clientv3.OpPut(w.fenceKey, w.value()))
	tctx, cancel := context.WithTimeout(ctx, w.m.cfg.WriteTimeout)
	defer cancel()
	resp, err := w.m.cfg.Client.Txn(tctx).
		If(clientv3.Compare(clientv3.ModRevision(w.fenceKey), "=", w.fenceRev)).
		Then(ops...).
		Else(clientv3.OpGet(w.fenceKey)).
		Commit()
	if err != nil {
		// It may still commit: the next write settles it first.
		w.unresolved = true
		return fmt.Errorf("%w: mirror write to %v: %w", dispatcher.ErrSinkUnavailable, w.m.cfg.Client.Endpoints(), err)
	}
	if !resp.Succeeded {
		return w.fenced(resp.Responses[0].GetResponseRange().Kvs)
	}
	w.fenceRev = resp.Header.Revision
	return nil
}

// fenced records that the fence moved under this writer: it was deposed.
func (w *mirrorWriter) fenced(kvs []*mvccpb.KeyValue) error {
	owner := "nobody (the fence key was removed)"
	if len(kvs) > 0 {
		var v fenceValue
		if json.Unmarshal(kvs[0].Value, &v) == nil {
			owner = "dispatcher " + v.Dispatcher + " on " + v.Node
		}
	}
	w.deposed = fmt.Errorf("%w: mirror fence %s of span %s now names %s, not %s: this dispatcher was deposed and writes nothing more",
		ErrFenced, w.fenceKey, span.String(w.o.Span), owner, dispatcher.FormatID(w.o.ID))
	return w.deposed
}

// Settle makes a transaction of unknown outcome unable to land: it rewrites the fence if the
// fence still has the revision that transaction compares with. If the fence moved instead, the
// transaction landed (the fence names this session) or a newer owner claimed the span.
func (w *mirrorWriter) Settle(ctx context.Context) error {
	if !w.unresolved || w.deposed != nil {
		return w.deposed
	}
	tctx, cancel := context.WithTimeout(ctx, w.m.cfg.WriteTimeout)
	defer cancel()
	resp, err := w.m.cfg.Client.Txn(tctx).
		If(clientv3.Compare(clientv3.ModRevision(w.fenceKey), "=", w.fenceRev)).
		Then(clientv3.OpPut(w.fenceKey, w.value())).
		Else(clientv3.OpGet(w.fenceKey)).
		Commit()
	if err != nil {
		return fmt.Errorf("%w: mirror %v: settling a failed write: %w", dispatcher.ErrSinkUnavailable, w.m.cfg.Client.Endpoints(), err)
	}
	if resp.Succeeded {
		w.fenceRev, w.unresolved = resp.Header.Revision, false
		return nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	var v fenceValue
	if len(kvs) > 0 && json.Unmarshal(kvs[0].Value, &v) == nil && v.Session == w.session {
		w.fenceRev, w.unresolved = kvs[0].ModRevision, false
		return nil
	}
	return w.fenced(kvs)
}

// claim takes the span: it replaces the fence keys of every overlapping span whose owner is
// older, in one transaction that fails if any of them changed meanwhile. A newer owner of any
// overlapping part means this dispatcher is already deposed.
func (w *mirrorWriter) claim(ctx context.Context) error {
	prefix := w.m.fenceTable(w.o.Span.TableId)
	for attempt := 0; ; attempt++ {
		tctx, cancel := context.WithTimeout(ctx, w.m.cfg.WriteTimeout)
		resp, err := w.m.cfg.Client.Get(tctx, prefix, clientv3.WithPrefix())
		cancel()
		if err != nil {
			return fmt.Errorf("%w: mirror %v: read fences: %w", dispatcher.ErrSinkUnavailable, w.m.cfg.Client.Endpoints(), err)
		}
		cmps := []clientv3.Cmp{}
		ops := []clientv3.Op{}
		mine := false
		for _, kv := range resp.Kvs {
			other, err := parseFence(kv.Value)
			if err != nil {
				return fmt.Errorf("%w: mirror fence %s: %v", dispatcher.ErrInvalid, kv.Key, err)
			}
			other.span.TableId = w.o.Span.TableId
			if !span.Overlap(other.span, w.o.Span) {
				continue
			}
			if lessID(w.o.ID, other.id) {
				return w.fenced(resp.Kvs[:0:0])
			}
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision))
			if string(kv.Key) == w.fenceKey {
				mine = true
			} else {
				ops = append(ops, clientv3.OpDelete(string(kv.Key)))
			}
		}
		if !mine {
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(w.fenceKey), "=", 0))
		}
		w.applied = w.o.Start
		ops = append(ops, clientv3.OpPut(w.fenceKey, w.value()))
		tctx, cancel = context.WithTimeout(ctx, w.m.cfg.WriteTimeout)
		tresp, err := w.m.cfg.Client.Txn(tctx).If(cmps...).Then(ops...).Commit()
		cancel()
		if err != nil {
			// A claim that lands later is harmless: the retry reads it and claims again.
			return fmt.Errorf("%w: mirror %v: claim span: %w", dispatcher.ErrSinkUnavailable, w.m.cfg.Client.Endpoints(), err)
		}
		if tresp.Succeeded {
			w.fenceRev = tresp.Header.Revision
			return nil
		}
		if attempt >= 10 {
			return fmt.Errorf("%w: mirror: claiming span %s kept losing to concurrent claims", dispatcher.ErrSinkUnavailable, span.String(w.o.Span))
		}
	}
}

type fenceOwner struct {
	id   heartbeatpb.DispatcherID
	span heartbeatpb.TableSpan
}

func parseFence(b []byte) (fenceOwner, error) {
	var v fenceValue
	if err := json.Unmarshal(b, &v); err != nil {
		return fenceOwner{}, err
	}
	id, err := dispatcher.ParseID(v.Dispatcher)
	if err != nil {
		return fenceOwner{}, err
	}
	start, err1 := hex.DecodeString(v.Start)
	end, err2 := hex.DecodeString(v.End)
	if err1 != nil || err2 != nil {
		return fenceOwner{}, fmt.Errorf("bad span keys %q, %q", v.Start, v.End)
	}
	return fenceOwner{id: id, span: heartbeatpb.TableSpan{StartKey: start, EndKey: end}}, nil
}

// lessID orders dispatcher IDs by creation: epoch, then the maintainer's counter.
func lessID(a, b heartbeatpb.DispatcherID) bool {
	if a.Hi != b.Hi {
		return a.Hi < b.Hi
	}
	return a.Lo < b.Lo
}
