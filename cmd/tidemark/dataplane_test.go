package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidemark/tidemark/etcdutil/embedetcd"
)

func TestParseChangefeedSeries(t *testing.T) {
	text := `# HELP tidemark_replicated_events_total x
# TYPE tidemark_replicated_events_total counter
tidemark_replicated_events_total{changefeed="demo"} 1234
tidemark_replicated_events_total{changefeed="demo2"} 99
tidemark_replication_lag_seconds{changefeed="demo"} 0.25
tidemark_replication_lag_revisions{changefeed="demo"} 7
tidemark_sink_errors_total{changefeed="demo"} 3
`
	got, err := parseChangefeedSeries(strings.NewReader(text), "demo", metricReplicatedEvents, metricLagSeconds)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[metricReplicatedEvents] != 1234 || got[metricLagSeconds] != 0.25 || got[metricLagRevisions] != 0 {
		t.Fatalf("got %v", got)
	}
	if _, err := parseChangefeedSeries(strings.NewReader(`tidemark_replication_lag_seconds{changefeed="demo"} x`), "demo", metricLagSeconds); err == nil {
		t.Fatal("a bad value was accepted")
	}
}

// The playground's status line says when the checkpoint stopped moving, which the nodes'
// lag cannot show while a span is on no live node.
func TestDataPlaneMeterStall(t *testing.T) {
	etcd := embedetcd.StartForTest(t)
	cli := etcd.Client(t)
	m := &dataPlaneMeter{client: apiClient{scheme: "http", http: http.DefaultClient}}
	t0 := time.Now()
	ctx := context.Background()
	for _, step := range []struct {
		at      time.Duration
		cp      uint64
		stalled bool
	}{{0, 5, false}, {time.Second, 5, false}, {3 * time.Second, 5, true}, {4 * time.Second, 6, false}, {5 * time.Second, 6, false}} {
		line := m.part(ctx, cli, step.cp, t0.Add(step.at))
		if got := strings.Contains(line, "checkpoint stalled"); got != step.stalled {
			t.Errorf("at +%s checkpoint %d: %q, stalled %v, want %v", step.at, step.cp, line, got, step.stalled)
		}
		if step.stalled && !strings.Contains(line, "3.0s") {
			t.Errorf("stall of 3s shown as %q", line)
		}
	}
}
