package failover

import (
	"context"
	"time"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/failpoints"
	"github.com/tidemark/tidemark/ts"
)

// diskFullUnhealthyAfter is the --unhealthy-after of the full-disk scenario: short, so the
// long outage stays short, and well above the short outage.
const diskFullUnhealthyAfter = 6 * time.Second

// fullDiskOnNode: a node's sink writes fail with ENOSPC while spans replicate, each failed
// write leaving half a line the sink must cut off. With the etcd dispatcher (file sinks, under
// the load) the failpoint is dispatcher/etcdcdc/file-sink-enospc and finish checks the files
// against the source's history (CheckFileSinks); on the simulated dispatcher (the -sim copy)
// it is dispatcher/sink-enospc and finish checks I1/I2 over its records.
//
//  1. A short outage (below --unhealthy-after): the node and the cause appear in the published
//     status within 5 s, the checkpoint stalls (with the etcd dispatcher: it stays at or below
//     the source revision of the moment the disk filled), and once space returns it moves
//     again within 5 s without a restart.
//  2. A long outage: the node marks itself unhealthy, its spans replicate on the other nodes
//     within --unhealthy-after + 5 s, and the checkpoint moves on while its disk is still full.
//  3. Space returns: the mark goes and the node takes spans again (finish checks I1-I6).
func fullDiskOnNode(e *env) {
	for _, id := range e.ids() {
		n := e.define(id)
		n.args = append(n.args, "--unhealthy-after", diskFullUnhealthyAfter.String())
	}
	e.startNodes()
	e.createChangefeed()
	e.converge(30*time.Second, "initial placement")
	maint, _ := e.maintainer()
	victim := e.other(maint)
	fp, recovered := "dispatcher/"+failpoints.SinkENOSPC, "sink recovered"
	if !e.sc.sim {
		fp, recovered = "dispatcher/etcdcdc/"+failpoints.FileSinkENOSPC, "sink flushes again"
	}
	named := func(st etcdutil.ChangefeedStatus) bool { return st.SpanErrors[victim].Spans > 0 }

	// The checkpoint moves before the disk fills, so that holding it means something.
	before := e.mark()
	e.waitFor(e.cf, 10*time.Second, "checkpoint moving before the disk fills",
		func(st etcdutil.ChangefeedStatus) bool { return st.CheckpointTs > before })

	// 1. Short outage.
	logAt := e.logSize(victim)
	e.enable(victim, fp, `return("torn")`)
	st, took := e.waitFor(e.cf, 5*time.Second, victim+" named with its sink error", named)
	e.t.Logf("DISKFULL short: %s named in the status %v after the first failure: %d spans: %s",
		victim, took.Round(10*time.Millisecond), st.SpanErrors[victim].Spans, st.SpanErrors[victim].Error)
	full := e.mark()
	time.Sleep(diskFullUnhealthyAfter / 2)
	held, _ := e.status(e.cf)
	if e.sc.sim {
		if lag := ts.Lag(held.CheckpointTs, time.Now()); lag < diskFullUnhealthyAfter/4 {
			e.t.Errorf("checkpoint lag %v while %s cannot write: the checkpoint did not wait for its spans", lag, victim)
		}
	} else if held.CheckpointTs > full {
		// Every write after the failpoint's enabling fails, and the load keeps the victim's
		// spans busy: none of them may report a revision above what it had before.
		e.t.Errorf("checkpoint at revision %d after %v while %s cannot write, above the source revision %d when its disk filled",
			held.CheckpointTs, diskFullUnhealthyAfter/2, victim, full)
	} else {
		e.t.Logf("DISKFULL short: checkpoint held at revision %d (source at %d when the disk filled, %d now)",
			held.CheckpointTs, full, e.mark())
	}
	e.disable(victim, fp)
	// Moving again means passing the moment space returned, not only the records the sink held
	// being written: those alone lift the checkpoint once and then it would stall again.
	back := e.mark()
	_, took = e.waitFor(e.cf, 5*time.Second, "checkpoint passing the moment space returned",
		func(st etcdutil.ChangefeedStatus) bool { return st.CheckpointTs > back && !named(st) })
	e.t.Logf("DISKFULL short: checkpoint moving again and the error gone %v after space returned (no restart)",
		took.Round(10*time.Millisecond))
	if !e.waitLog(victim, logAt, 5*time.Second, recovered) {
		e.t.Errorf("%s never logged that its sink recovered", victim)
	}

	// 2. Long outage: the spans leave the sick node.
	e.enable(victim, fp, `return(true)`)
	start := time.Now()
	e.waitFor(e.cf, 5*time.Second, victim+" named with its sink error again", named)
	others := []string{}
	for _, id := range e.live() {
		if id != victim {
			others = append(others, id)
		}
	}
	st, took = e.waitFor(e.cf, diskFullUnhealthyAfter+5*time.Second, "spans moved off unhealthy "+victim, converged(others))
	e.t.Logf("DISKFULL long: every span replicating on %v %v after the first failure (--unhealthy-after %v)",
		others, took.Round(10*time.Millisecond), diskFullUnhealthyAfter)
	if took < diskFullUnhealthyAfter-time.Second {
		e.t.Errorf("spans left %s after %v, before --unhealthy-after %v", victim, took, diskFullUnhealthyAfter)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	marks, err := etcdutil.ListUnhealthy(ctx, e.cli, e.keys)
	cancel()
	if err != nil || len(marks) != 1 || marks[0].Node != victim {
		e.t.Errorf("unhealthy marks %+v, %v; want %s's", marks, err, victim)
	}
	moved := e.mark()
	e.waitFor(e.cf, 5*time.Second, "checkpoint moving with the sick node's disk still full",
		func(st etcdutil.ChangefeedStatus) bool { return st.CheckpointTs > moved })
	e.t.Logf("DISKFULL long: checkpoint moving %v after the outage began, disk still full", time.Since(start).Round(10*time.Millisecond))

	// 3. Space returns.
	e.disable(victim, fp)
	back = e.mark()
	_, took, ok := e.poll(e.cf, 5*time.Second, func(etcdutil.ChangefeedStatus) bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		marks, err := etcdutil.ListUnhealthy(ctx, e.cli, e.keys)
		return err == nil && len(marks) == 0
	})
	if !ok {
		e.t.Errorf("%s still marked unhealthy 5s after space returned", victim)
	} else {
		e.t.Logf("DISKFULL: %s healthy again %v after space returned", victim, took.Round(10*time.Millisecond))
	}
	e.waitFor(e.cf, 5*time.Second, "checkpoint passing the moment space returned again",
		func(st etcdutil.ChangefeedStatus) bool { return st.CheckpointTs > back })
	if !e.alive(victim) {
		e.t.Errorf("%s died of its full disk", victim)
	}
}

// mark is the changefeed checkpoint's clock now: the source revision with the etcd dispatcher,
// a ts of the current time on the simulated one. A checkpoint above it passed this moment.
func (e *env) mark() uint64 {
	e.t.Helper()
	if e.sc.sim {
		return ts.FromTime(time.Now())
	}
	return uint64(e.revision())
}
