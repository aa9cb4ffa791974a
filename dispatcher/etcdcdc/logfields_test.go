package etcdcdc

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestLazyDispatcherField: the dispatcher's ID, formatted only when a line is written, still
// reads as sink records name it.
func TestLazyDispatcherField(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	zap.New(core).WithLazy(idField("dispatcher", did(1<<40, 7))).Warn("x")
	got := logs.All()
	if len(got) != 1 {
		t.Fatalf("logged %d lines", len(got))
	}
	if v := got[0].ContextMap()["dispatcher"]; v != "1099511627776-7" {
		t.Fatalf("dispatcher field %#v, want \"1099511627776-7\"", v)
	}
}
