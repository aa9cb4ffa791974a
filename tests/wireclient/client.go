package wireclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tidemark/tidemark/heartbeatpb"
	"github.com/tidemark/tidemark/messaging"
)

// Config names the stream to open: From is the sender name claimed, To the node at Addr.
type Config struct {
	Addr, ClusterID, From, To string
	TLS                       *tls.Config // nil: plaintext, as nodes without --tls-* flags
	HandshakeTimeout          time.Duration
}

// Client is one open stream to a node, as a peer that dialed it.
type Client struct {
	cc     *grpc.ClientConn
	stream grpc.BidiStreamingClient[heartbeatpb.Batch, heartbeatpb.Batch]
	cancel context.CancelFunc
}

// ErrRejected: the node refused the stream at the handshake.
var ErrRejected = errors.New("wireclient: stream rejected")

// Dial opens the stream and waits until the node accepts it (its header names it) or refuses it
// (the error wraps ErrRejected and the node's gRPC status, for status.Code). Note that a node accepts a claimed name
// only when it is below its own ID: the smaller ID dials.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 5 * time.Second
	}
	creds := insecure.NewCredentials()
	if cfg.TLS != nil {
		creds = credentials.NewTLS(cfg.TLS)
	}
	cc, err := grpc.NewClient(cfg.Addr, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(messaging.PeerCodec())))
	if err != nil {
		return nil, fmt.Errorf("wireclient: dial %s: %w", cfg.Addr, err)
	}
	sctx, cancel := context.WithCancel(metadata.NewOutgoingContext(context.Background(),
		messaging.PeerMetadata(cfg.ClusterID, cfg.From, cfg.To)))
	stream, err := heartbeatpb.NewMessengerClient(cc).Stream(sctx)
	if err != nil {
		cancel()
		_ = cc.Close()
		return nil, fmt.Errorf("wireclient: open stream to %s: %w", cfg.Addr, err)
	}
	c := &Client{cc: cc, stream: stream, cancel: cancel}
	hctx, hcancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer hcancel()
	stop := context.AfterFunc(hctx, cancel)
	hdr, _ := stream.Header()
	stop()
	if hdr == nil || len(hdr.Get(messaging.PeerNodeHeader)) == 0 {
		var f heartbeatpb.Batch
		rerr := stream.RecvMsg(&f)
		_ = c.Close()
		return nil, fmt.Errorf("%w: %s as %q to %q: %w", ErrRejected, cfg.Addr, cfg.From, cfg.To, rerr)
	}
	if got := hdr.Get(messaging.PeerNodeHeader)[0]; got != cfg.To {
		_ = c.Close()
		return nil, fmt.Errorf("%w: %s answered as %q, want %q", ErrRejected, cfg.Addr, got, cfg.To)
	}
	return c, nil
}

// Send sends the envelopes as one batch, as a node's sender does.
func (c *Client) Send(envs ...*heartbeatpb.Envelope) error {
	if err := c.stream.SendMsg(&heartbeatpb.Batch{Envelopes: envs}); err != nil {
		return fmt.Errorf("wireclient: send: %w", c.ended(err))
	}
	return nil
}

// ErrReplaced: the node ended the stream because a newer one claiming the same sender replaced
// it (the real peer redialing, say), so what was sent last may not have arrived.
var ErrReplaced = errors.New("wireclient: stream replaced")

// ended turns a send's io.EOF, which only says the node ended the stream, into the status the
// node ended it with, marked ErrReplaced when a newer stream took its place.
func (c *Client) ended(err error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	var f heartbeatpb.Batch
	for {
		rerr := c.stream.RecvMsg(&f)
		if rerr == nil {
			continue // the node's own traffic on the stream, before its end
		}
		if status.Code(rerr) == codes.Aborted {
			return fmt.Errorf("%w: %w", ErrReplaced, rerr)
		}
		if errors.Is(rerr, io.EOF) {
			return err
		}
		return rerr
	}
}

// rawFrame goes through the gogo codec as the bytes it holds: the codec marshals anything that
// has a Marshal method.
type rawFrame []byte

func (r rawFrame) Marshal() ([]byte, error) { return r, nil }

// SendRaw sends b as one stream message, whatever it decodes to.
func (c *Client) SendRaw(b []byte) error {
	if err := c.stream.SendMsg(rawFrame(b)); err != nil {
		return fmt.Errorf("wireclient: send raw: %w", c.ended(err))
	}
	return nil
}

// closeWait bounds how long Close waits for the node to end the stream.
const closeWait = 3 * time.Second

// Close ends the stream as a peer does, and the connection: it half-closes, then waits (at
// most closeWait) for the node to end the stream, which the node does once it has read
// everything sent before. Cancelling at once could reset the stream with frames still in
// flight, and an attack would be lost before it arrived (CI: forged-envelopes found no
// "undecodable batch dropped" after the garbage was sent). It returns ErrReplaced when the node
// ended the stream because a newer one took its place: then what was sent on it may never have
// been read (CI: forged-envelopes found no "stale epoch" after the replays were sent under the
// maintainer's name, which the real maintainer redialed meanwhile).
func (c *Client) Close() error {
	var err error
	if cerr := c.stream.CloseSend(); cerr == nil {
		stop := time.AfterFunc(closeWait, c.cancel)
		var f heartbeatpb.Batch
		for {
			rerr := c.stream.RecvMsg(&f)
			if rerr == nil {
				continue
			}
			if status.Code(rerr) == codes.Aborted {
				err = fmt.Errorf("%w: %w", ErrReplaced, rerr)
			}
			break
		}
		stop.Stop()
	}
	c.cancel()
	if cerr := c.cc.Close(); err == nil {
		err = cerr
	}
	return err
}
