package failover

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcdMember is one etcd server process of the test's cluster.
type etcdMember struct {
	name      string
	clientURL string
	peerURL   string
	args      []string
	logPath   string
	proc      *process
}

// etcdCluster is a real multi-member etcd cluster on loopback, one process per member.
type etcdCluster struct {
	t       *testing.T
	bin     string
	members []*etcdMember
}

// startEtcdCluster starts n members (3 in every scenario) and waits until the cluster serves.
func startEtcdCluster(t *testing.T, bin, dir string, n int) *etcdCluster {
	t.Helper()
	ec := &etcdCluster{t: t, bin: bin}
	var initial []string
	for i := 1; i <= n; i++ {
		m := &etcdMember{
			name:      fmt.Sprintf("etcd%d", i),
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		}
		m.logPath = filepath.Join(dir, m.name+".log")
		initial = append(initial, m.name+"="+m.peerURL)
		ec.members = append(ec.members, m)
	}
	for _, m := range ec.members {
		m.args = []string{
			"--name", m.name, "--data-dir", filepath.Join(dir, m.name),
			"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "tidemark-failover",
			"--heartbeat-interval", "100", "--election-timeout", "1000", "--log-level", "warn",
		}
		ec.start(m)
	}
	t.Cleanup(ec.stopAll)
	ec.waitHealthy(30 * time.Second)
	return ec
}

func (ec *etcdCluster) start(m *etcdMember) {
	ec.t.Helper()
	p, err := startProcess(ec.bin, m.args, nil, m.logPath)
	if err != nil {
		ec.t.Fatalf("start etcd member %s: %v", m.name, err)
	}
	m.proc = p
}

// endpoints are every member's client URL: clients fail over between them.
func (ec *etcdCluster) endpoints() []string {
	var out []string
	for _, m := range ec.members {
		out = append(out, m.clientURL)
	}
	return out
}

func (ec *etcdCluster) client() *clientv3.Client {
	ec.t.Helper()
	// The client logs every retry while a member is down on purpose; the scenarios say what happens.
	cli, err := clientv3.New(clientv3.Config{Endpoints: ec.endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		ec.t.Fatal(err)
	}
	ec.t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// leader returns the member that currently leads raft, asking each live member.
func (ec *etcdCluster) leader() (*etcdMember, error) {
	for _, m := range ec.members {
		if !m.proc.alive() {
			continue
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.clientURL}, DialTimeout: time.Second, Logger: zap.NewNop()})
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := cli.Status(ctx, m.clientURL)
		cancel()
		_ = cli.Close()
		if err == nil && st.Leader == st.Header.MemberId {
			return m, nil
		}
	}
	return nil, fmt.Errorf("no etcd member says it leads")
}

// waitHealthy waits until a quorum answers a linearizable read.
func (ec *etcdCluster) waitHealthy(timeout time.Duration) {
	ec.t.Helper()
	cli := ec.client()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "health")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			ec.t.Fatalf("etcd cluster not healthy after %v: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill sends SIGKILL to a member; restart brings it back with its data dir.
func (ec *etcdCluster) kill(m *etcdMember) { m.proc.signal(syscall.SIGKILL); m.proc.wait() }

func (ec *etcdCluster) restart(m *etcdMember) {
	ec.t.Helper()
	ec.start(m)
	ec.waitHealthy(30 * time.Second)
}

func (ec *etcdCluster) stopAll() {
	for _, m := range ec.members {
		if m.proc != nil && m.proc.alive() {
			m.proc.signal(syscall.SIGTERM)
			if !m.proc.waitFor(10 * time.Second) {
				m.proc.signal(syscall.SIGKILL)
				m.proc.wait()
			}
		}
	}
	if ec.t.Failed() {
		for _, m := range ec.members {
			if b, err := os.ReadFile(m.logPath); err == nil && len(b) > 0 {
				ec.t.Logf("--- log of %s (last 2 KiB) ---\n%s", m.name, tail(b, 2048))
			}
		}
	}
}

// etcdBinary is Debian's etcd (etcd-server) when installed, else an etcd member built from the
// etcd server module this project uses. TIDEMARK_FAILOVER_ETCD=builtin forces the latter.
func etcdBinary(t *testing.T, workDir string) string {
	t.Helper()
	if os.Getenv("TIDEMARK_FAILOVER_ETCD") != "builtin" {
		if p, err := exec.LookPath("etcd"); err == nil {
			return p
		}
	}
	out := filepath.Join(workDir, "etcdmember")
	cmd := exec.Command("go", "build", "-o", out, "./tests/failover/internal/etcdmember")
	cmd.Dir = moduleRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building etcdmember: %v\n%s", err, b)
	}
	return out
}
