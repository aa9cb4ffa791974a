package failover

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/etcdutil"
)

// binaryOnce builds cmd/tidemark once per test binary run.
var binaryOnce struct {
	sync.Once
	path string
	err  error
}

// tidemarkBinary returns the path of a tidemark binary built from this tree.
func tidemarkBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tidemark-bin-")
		if err != nil {
			binaryOnce.err = err
			return
		}
		binaryOnce.path = filepath.Join(dir, "tidemark")
		cmd := exec.Command("go", "build", "-o", binaryOnce.path, "github.com/tidemark/tidemark/cmd/tidemark")
		if out, err := cmd.CombinedOutput(); err != nil {
			binaryOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binaryOnce.err != nil {
		t.Fatalf("building tidemark: %v", binaryOnce.err)
	}
	return binaryOnce.path
}

// freePort asks the kernel for a free loopback port. Another process may take it before we bind
// it; tests accept that small race.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// node is one `tidemark server` child process.
type node struct {
	id      string
	dataDir string
	logPath string
	args    []string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// cluster is the processes of one test and the etcd they share.
type cluster struct {
	t         *testing.T
	bin       string
	endpoints []string
	clusterID string
	ttl       time.Duration
	dir       string
	cli       *clientv3.Client
	keys      etcdutil.Keys
	nodes     map[string]*node
}

func newCluster(t *testing.T, endpoints []string, cli *clientv3.Client, ttl time.Duration) *cluster {
	c := &cluster{
		t: t, bin: tidemarkBinary(t), endpoints: endpoints, clusterID: "failover", ttl: ttl,
		dir: t.TempDir(), cli: cli, keys: etcdutil.Keys{Cluster: "failover"}, nodes: map[string]*node{},
	}
	t.Cleanup(c.stopAll)
	return c
}

// start launches node id (again, with the same data dir, if it ran before).
func (c *cluster) start(id string) *node {
	c.t.Helper()
	n := c.nodes[id]
	if n == nil {
		n = &node{id: id, dataDir: filepath.Join(c.dir, id), logPath: filepath.Join(c.dir, id+".log")}
		n.args = []string{"server",
			"--etcd", strings.Join(c.endpoints, ","),
			"--addr", fmt.Sprintf("127.0.0.1:%d", freePort(c.t)),
			"--status-addr", fmt.Sprintf("127.0.0.1:%d", freePort(c.t)),
			"--cluster", c.clusterID, "--data-dir", n.dataDir, "--node-id", id,
			"--session-ttl", c.ttl.String(), "--log-file", n.logPath,
		}
		c.nodes[id] = n
	}
	cmd := exec.Command(c.bin, n.args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", id, err)
	}
	n.cmd = cmd
	n.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { _ = cmd.Wait(); close(exited) }(cmd, n.exited)
	return n
}

// kill sends SIGKILL to node id and waits until it is gone.
func (c *cluster) kill(id string) {
	c.t.Helper()
	n := c.nodes[id]
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// stop sends SIGTERM and waits (graceful), killing after 10 s.
func (c *cluster) stop(id string) {
	n := c.nodes[id]
	if n == nil || n.cmd == nil {
		return
	}
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		c.t.Errorf("node %s ignored SIGTERM for 10s; killing it", id)
		_ = n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.exited
	}
}

func (c *cluster) stopAll() {
	for id := range c.nodes {
		c.stop(id)
	}
	if c.t.Failed() {
		for id, n := range c.nodes {
			if b, err := os.ReadFile(n.logPath); err == nil {
				c.t.Logf("--- log of %s (last 4 KiB) ---\n%s", id, tail(b, 4096))
			}
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// status reads the changefeed status the maintainer publishes.
func (c *cluster) status(cf string) (etcdutil.ChangefeedStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return etcdutil.GetStatus(ctx, c.cli, c.keys, cf)
}

// waitFor polls the published status until ok holds or timeout passes; it returns the status and
// how long it took.
func (c *cluster) waitFor(cf string, timeout time.Duration, what string, ok func(etcdutil.ChangefeedStatus) bool) (etcdutil.ChangefeedStatus, time.Duration) {
	c.t.Helper()
	start := time.Now()
	var last etcdutil.ChangefeedStatus
	for time.Since(start) < timeout {
		if st, err := c.status(cf); err == nil {
			last = st
			if ok(st) {
				return st, time.Since(start)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("%s: not reached within %v; last status %+v", what, timeout, last)
	return last, 0
}

// records reads every node's sink file of changefeed cf.
func (c *cluster) records(cf string) []dispatcher.Record {
	c.t.Helper()
	var all []dispatcher.Record
	for id, n := range c.nodes {
		rs, err := dispatcher.ReadRecords(filepath.Join(n.dataDir, "sink", cf+".jsonl"))
		if err != nil {
			c.t.Fatalf("sink of %s: %v", id, err)
		}
		all = append(all, rs...)
	}
	return all
}
