package embedetcd

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func TestStartForTestServesClients(t *testing.T) {
	start := time.Now()
	s := StartForTest(t)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("start took %v, want under 2s", took)
	}
	cli := s.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/k", "v"); err != nil {
		t.Fatalf("put: %v", err)
	}
	resp, err := cli.Get(ctx, "/k")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("get /k = %v, want v", resp.Kvs)
	}
}

func TestCloseIsIdempotentAndStops(t *testing.T) {
	s, err := Start(Config{TickMs: 10, ElectionMs: 100})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	url := s.ClientURLs()[0]
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	host := strings.TrimPrefix(url, "http://")
	if c, err := net.DialTimeout("tcp", host, 200*time.Millisecond); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Close", host)
	}
}

func TestPortInUseIsAClearError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer l.Close()
	busy := "http://" + l.Addr().String()
	_, err = Start(Config{Dir: t.TempDir(), ClientURL: busy, TickMs: 10, ElectionMs: 100})
	if err == nil {
		t.Fatal("Start on a busy client port succeeded")
	}
	for _, want := range []string{"embedetcd:", "already in use", l.Addr().String()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestBadURLIsRejected(t *testing.T) {
	for _, bad := range []string{"127.0.0.1:2379", "ftp://127.0.0.1:1", "http://"} {
		if _, err := Start(Config{Dir: t.TempDir(), ClientURL: bad}); err == nil {
			t.Errorf("Start with client URL %q succeeded", bad)
		} else if !strings.HasPrefix(err.Error(), "embedetcd: ") {
			t.Errorf("error %q lacks the package prefix", err)
		}
	}
}
