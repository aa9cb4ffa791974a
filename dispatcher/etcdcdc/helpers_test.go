package etcdcdc

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

func did(hi, lo uint64) heartbeatpb.DispatcherID { return heartbeatpb.DispatcherID{Hi: hi, Lo: lo} }

func newTestFactory(t testing.TB, endpoints []string, src *etcdutil.SourceConfig, sink Sink) *Factory {
	t.Helper()
	if src.Endpoints == nil {
		src.Endpoints = endpoints
	}
	f, err := NewFactory(FactoryConfig{Node: "n1", Changefeed: "cf", Source: src, Sink: sink,
		ProgressInterval: 20 * time.Millisecond, ProbeInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func newTestDispatcher(t testing.TB, f *Factory, id heartbeatpb.DispatcherID, s heartbeatpb.TableSpan, start int64) *Dispatcher {
	t.Helper()
	d, err := f.New(heartbeatpb.DispatcherConfig{Id: id, Span: s, StartTs: uint64(start)}, heartbeatpb.TableConfig{TableId: s.TableId})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d.(*Dispatcher)
}

// waitCheckpoint polls d until its checkpoint reaches rev.
func waitCheckpoint(t testing.TB, d *Dispatcher, rev int64) {
	t.Helper()
	waitCheckpointFor(t, d, rev, 10*time.Second)
}

func waitCheckpointFor(t testing.TB, d *Dispatcher, rev int64, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		cp, _ := d.Poll(time.Now())
		if int64(cp) >= rev {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dispatcher %s: checkpoint %d, want >= %d (err %v)", dispatcher.FormatID(d.ID()), cp, rev, d.Err())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func put(t testing.TB, cli *clientv3.Client, k, v string) int64 {
	t.Helper()
	resp, err := cli.Put(context.Background(), k, v)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

func del(t testing.TB, cli *clientv3.Client, k string) int64 {
	t.Helper()
	resp, err := cli.Delete(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

func rev(t testing.TB, cli *clientv3.Client) int64 {
	t.Helper()
	resp, err := cli.Get(context.Background(), "\x00", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// dump reads every key under prefix as key -> value.
func dump(t testing.TB, cli *clientv3.Client, prefix string, opts ...clientv3.OpOption) map[string]string {
	t.Helper()
	resp, err := cli.Get(context.Background(), prefix, append([]clientv3.OpOption{clientv3.WithPrefix()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = string(kv.Value)
	}
	return out
}

// splitTable cuts table 1 into n spans.
func splitTable(t testing.TB, n int) []heartbeatpb.TableSpan {
	t.Helper()
	if n == 1 {
		return []heartbeatpb.TableSpan{span.TableSpan(1)}
	}
	s, err := span.Split(span.TableSpan(1), n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sameMaps(a, b map[string]string) error {
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return fmt.Errorf("key %q: %q vs %q (present %v)", k, v, w, ok)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			return fmt.Errorf("key %q only in the second", k)
		}
	}
	return nil
}
