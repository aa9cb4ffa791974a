package etcdcdc

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
)

// BenchmarkMirrorCatchUp measures events/s from a source etcd into a mirror in another etcd:
// the source holds N events (CDC_BENCH_EVENTS, default 100000: puts over 10000 keys,
// CDC_BENCH_TXN per source transaction, default 100) above the start revision, and CDC_BENCH_SPANS dispatchers (default 4)
// replicate them. It checks the mirror equals the source at the end.
//
//	go test -run NONE -bench MirrorCatchUp -benchtime 1x ./dispatcher/etcdcdc/
func BenchmarkMirrorCatchUp(b *testing.B) {
	events, spans := envInt("CDC_BENCH_EVENTS", 100000), envInt("CDC_BENCH_SPANS", 4)
	ctx := context.Background()
	srcSrv, dstSrv := embedetcd.StartForTest(b), embedetcd.StartForTest(b)
	src, dst := srcSrv.Client(b), dstSrv.Client(b)
	start := preload(b, src, events, envInt("CDC_BENCH_TXN", 100))
	end := rev(b, src)
	b.ResetTimer()
	for range b.N {
		cfg := MirrorConfig{Client: dst, FenceRoot: FenceRoot("bench", fmt.Sprint(time.Now().UnixNano())), SourcePrefix: "/src/", DestPrefix: "/dst/"}
		ms, err := NewMirrorSink(cfg)
		if err != nil {
			b.Fatal(err)
		}
		f, err := NewFactory(FactoryConfig{Node: "n1", Changefeed: "bench", Source: &etcdutil.SourceConfig{Endpoints: srcSrv.ClientURLs(), Prefix: "/src/"}, Sink: ms})
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		var ds []*Dispatcher
		for i, s := range splitTable(b, spans) {
			ds = append(ds, newTestDispatcher(b, f, did(1, uint64(i+1)), s, start))
		}
		for _, d := range ds {
			waitCheckpointFor(b, d, end, 10*time.Minute)
		}
		took := time.Since(t0)
		b.ReportMetric(float64(events)/took.Seconds(), "events/s")
		for _, d := range ds {
			_ = d.Close()
		}
		_ = f.Close()
	}
	b.StopTimer()
	want := dump(b, src, "/src/")
	got := map[string]string{}
	for k, v := range dump(b, dst, "/dst/") {
		got["/src/"+k[len("/dst/"):]] = v
	}
	if err := sameMaps(want, got); err != nil {
		b.Fatalf("mirror differs: %v", err)
	}
	_ = ctx
}

// preload writes n events under /src/ in transactions of perTxn puts (from 16 writers at
// once) and returns the revision before them.
func preload(tb testing.TB, cli *clientv3.Client, n, perTxn int) int64 {
	start := rev(tb, cli)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w * perTxn; i < n; i += 16 * perTxn {
				var ops []clientv3.Op
				for j := i; j < i+perTxn && j < n; j++ {
					k := fmt.Sprintf("/src/%c%05d", byte(j*7%256), j%10000)
					ops = append(ops, clientv3.OpPut(k, strconv.Itoa(j)))
				}
				if _, err := cli.Txn(context.Background()).Then(ops...).Commit(); err != nil {
					tb.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if tb.Failed() {
		tb.FailNow()
	}
	return start
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
