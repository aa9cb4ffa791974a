package dispatchermanager

import (
	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/heartbeatpb"
)

// fakePrepared is the fake factory's prepared dispatcher; it checks that nothing is committed
// twice or after being abandoned, and counts abandons (testdata/prepare.txt snapshots them).
type fakePrepared struct {
	f                 *fakeFactory
	cfg               heartbeatpb.DispatcherConfig
	committed, closed bool
	cold              bool // not warm yet (dispatcher.Warmer): the "warm" command warms it
}

// Warm makes fakePrepared a dispatcher.Warmer, cold while the factory prepares cold ones.
func (p *fakePrepared) Warm() bool { return !p.cold }

func (p *fakePrepared) ID() heartbeatpb.DispatcherID { return p.cfg.Id }

func (p *fakePrepared) Commit(final uint64) (dispatcher.Dispatcher, error) {
	if p.committed || p.closed {
		p.f.violations = append(p.f.violations, "commit of a spent prepared "+dispatcher.FormatID(p.cfg.Id))
	}
	p.committed = true
	cfg := p.cfg
	cfg.StartTs = final
	return p.f.New(cfg, heartbeatpb.TableConfig{TableId: cfg.Span.TableId})
}

func (p *fakePrepared) Close() error {
	if p.committed {
		p.f.violations = append(p.f.violations, "close of a committed prepared "+dispatcher.FormatID(p.cfg.Id))
	}
	p.closed = true
	p.f.abandoned++
	return nil
}

func (f *fakeFactory) Prepare(cfg heartbeatpb.DispatcherConfig, _ heartbeatpb.TableConfig) (dispatcher.Prepared, error) {
	if f.failNew {
		return nil, errInjected
	}
	p := &fakePrepared{f: f, cfg: cfg, cold: f.cold}
	if f.prepared == nil {
		f.prepared = map[heartbeatpb.DispatcherID]*fakePrepared{}
	}
	f.prepared[cfg.Id] = p
	return p, nil
}

// plainFactory hides the fake factory's Prepare: a dispatcher kind that cannot prepare.
type plainFactory struct{ f *fakeFactory }

func (p plainFactory) New(cfg heartbeatpb.DispatcherConfig, t heartbeatpb.TableConfig) (dispatcher.Dispatcher, error) {
	return p.f.New(cfg, t)
}
func (p plainFactory) Flush() error { return p.f.Flush() }
