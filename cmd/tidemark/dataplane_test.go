package main

import (
	"strings"
	"testing"
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
