package failover

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/dispatcher"
	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/failpoints"
)

// node is one `tidemark server` child process and what it keeps across restarts.
type node struct {
	id         string
	dataDir    string
	logPath    string
	statusAddr string
	args       []string
	proc       *process
	paused     bool
}

// cluster is the tidemark processes of one scenario and the etcd cluster they share.
type cluster struct {
	t         *testing.T
	bin       string
	etcd      *etcdCluster
	cli       *clientv3.Client
	clusterID string
	keys      etcdutil.Keys
	ttl       time.Duration
	dir       string
	nodes     map[string]*node
	logsShown bool
}

func newCluster(t *testing.T, ttl time.Duration) *cluster {
	t.Helper()
	bin, etcdBin := binaries(t)
	dir := t.TempDir()
	if os.Getenv("TIDEMARK_FAILOVER_KEEP") != "" {
		// Logs, sinks and etcd data stay for a post-mortem.
		var err error
		if dir, err = os.MkdirTemp("", "tidemark-failover-"+strings.ReplaceAll(t.Name(), "/", "_")+"-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("keeping the run's files in %s", dir)
	}
	ec := startEtcdCluster(t, etcdBin, dir, 3)
	c := &cluster{
		t: t, bin: bin, etcd: ec, cli: ec.client(), clusterID: "failover", keys: etcdutil.Keys{Cluster: "failover"},
		ttl: ttl, dir: dir, nodes: map[string]*node{},
	}
	t.Cleanup(c.stopAll)
	return c
}

// ids are the nodes ever started, sorted.
func (c *cluster) ids() []string {
	out := make([]string, 0, len(c.nodes))
	for id := range c.nodes {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// define fixes node id's ports and dirs without starting it.
func (c *cluster) define(id string) *node {
	c.t.Helper()
	n := c.nodes[id]
	if n == nil {
		n = &node{id: id, dataDir: filepath.Join(c.dir, id), logPath: filepath.Join(c.dir, id+".log"),
			statusAddr: fmt.Sprintf("127.0.0.1:%d", freePort(c.t))}
		n.args = []string{"server",
			"--etcd", strings.Join(c.etcd.endpoints(), ","),
			"--addr", fmt.Sprintf("127.0.0.1:%d", freePort(c.t)),
			"--status-addr", n.statusAddr,
			"--cluster", c.clusterID, "--data-dir", n.dataDir, "--node-id", id,
			"--session-ttl", c.ttl.String(), "--log-file", n.logPath,
		}
		c.nodes[id] = n
	}
	return n
}

// start launches node id (again, with the same data dir and ports, if it ran before). env is
// extra environment, e.g. GO_FAILPOINTS=...; it waits until the status API answers.
func (c *cluster) start(id string, env ...string) *node {
	c.t.Helper()
	n := c.define(id)
	p, err := startProcess(c.bin, n.args, env, n.logPath+".stderr")
	if err != nil {
		c.t.Fatalf("start %s: %v", id, err)
	}
	n.proc, n.paused = p, false
	c.waitUp(n)
	return n
}

// waitUp waits until the node's status API answers, and checks that it has failpoints compiled
// in: a scenario on a binary without them would test nothing and pass.
func (c *cluster) waitUp(n *node) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var l failpoints.Listing
		err := c.httpJSON(n, http.MethodGet, failpoints.Prefix, "", &l)
		if err == nil {
			if !l.CompiledIn {
				c.t.Fatalf("node %s runs %s, a binary without failpoints compiled in", n.id, c.bin)
			}
			return
		}
		if !n.proc.alive() || time.Now().After(deadline) {
			b, _ := os.ReadFile(n.logPath + ".stderr")
			c.t.Fatalf("node %s did not come up: %v\n%s", n.id, err, tail(b, 2048))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *cluster) node(id string) *node {
	c.t.Helper()
	n := c.nodes[id]
	if n == nil {
		c.t.Fatalf("no node %s", id)
	}
	return n
}

// kill sends SIGKILL to node id and waits until it is gone.
func (c *cluster) kill(id string) {
	n := c.node(id)
	n.proc.signal(syscall.SIGKILL)
	n.proc.wait()
}

// pause and resume send SIGSTOP and SIGCONT.
func (c *cluster) pause(id string) {
	n := c.node(id)
	n.proc.signal(syscall.SIGSTOP)
	n.paused = true
}

func (c *cluster) resume(id string) {
	n := c.node(id)
	n.proc.signal(syscall.SIGCONT)
	n.paused = false
}

// alive reports whether node id runs (paused counts as running).
func (c *cluster) alive(id string) bool {
	n := c.nodes[id]
	return n != nil && n.proc != nil && n.proc.alive()
}

// stop sends SIGTERM and waits (graceful), killing after 10 s.
func (c *cluster) stop(id string) {
	n := c.nodes[id]
	if n == nil || n.proc == nil || !n.proc.alive() {
		return
	}
	if n.paused {
		c.resume(id)
	}
	n.proc.signal(syscall.SIGTERM)
	if !n.proc.waitFor(10 * time.Second) {
		c.t.Errorf("node %s ignored SIGTERM for 10s; killing it", id)
		n.proc.signal(syscall.SIGKILL)
		n.proc.wait()
	}
}

func (c *cluster) stopAll() {
	for _, id := range c.ids() {
		c.stop(id)
	}
	if c.t.Failed() && !c.logsShown {
		c.logsShown = true
		for _, id := range c.ids() {
			if b, err := os.ReadFile(c.nodes[id].logPath); err == nil {
				c.t.Logf("--- log of %s (last 3 KiB) ---\n%s", id, tail(b, 3072))
			}
		}
		c.keepLogs()
	}
}

// keepLogs copies the nodes' whole logs to $TIDEMARK_FAILOVER_LOGS/<test>/ when that is set: the
// 3 KiB tails above rarely reach back to where a failure began, and the test's own directory is
// deleted when it ends.
func (c *cluster) keepLogs() {
	root := os.Getenv("TIDEMARK_FAILOVER_LOGS")
	if root == "" {
		return
	}
	dir := filepath.Join(root, strings.ReplaceAll(c.t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Logf("keeping logs: %v", err)
		return
	}
	for _, id := range c.ids() {
		for _, path := range []string{c.nodes[id].logPath, c.nodes[id].logPath + ".stderr"} {
			if b, err := os.ReadFile(path); err == nil {
				_ = os.WriteFile(filepath.Join(dir, filepath.Base(path)), b, 0o644)
			}
		}
	}
	c.t.Logf("whole logs kept in %s", dir)
}

// httpJSON calls a node's status API and decodes the JSON answer into out (nil: ignore it).
func (c *cluster) httpJSON(n *node, method, path, body string, out any) error {
	req, err := http.NewRequest(method, "http://"+n.statusAddr+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// enable turns failpoint name on at node id with terms, over HTTP.
func (c *cluster) enable(id, name, terms string) {
	c.t.Helper()
	if err := c.httpJSON(c.node(id), http.MethodPut, failpoints.Prefix+"/"+name, terms, nil); err != nil {
		c.t.Fatalf("enable %s=%s on %s: %v", name, terms, id, err)
	}
}

// disable turns failpoint name off at node id; a dead node has nothing to disable.
func (c *cluster) disable(id, name string) {
	c.t.Helper()
	if !c.alive(id) || c.node(id).paused {
		return
	}
	if err := c.httpJSON(c.node(id), http.MethodDelete, failpoints.Prefix+"/"+name, "", nil); err != nil {
		c.t.Errorf("disable %s on %s: %v", name, id, err)
	}
}

// logSize is where node id's log ends now; waitLog looks at what comes after.
func (c *cluster) logSize(id string) int64 {
	st, err := os.Stat(c.node(id).logPath)
	if err != nil {
		return 0
	}
	return st.Size()
}

// waitLog waits until a line after offset in node id's log contains every part; it returns
// false after timeout.
func (c *cluster) waitLog(id string, offset int64, timeout time.Duration, parts ...string) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if logHas(c.node(id).logPath, offset, parts) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func logHas(path string, offset int64, parts []string) bool {
	_, ok := logLine(path, offset, parts)
	return ok
}

// logLastLine returns the last line of the log that contains every part.
func logLastLine(path string, parts []string) (string, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
next:
	for i := len(lines) - 1; i >= 0; i-- {
		for _, p := range parts {
			if !strings.Contains(lines[i], p) {
				continue next
			}
		}
		return lines[i], true
	}
	return "", false
}

// logLine returns the first line after offset that contains every part.
func logLine(path string, offset int64, parts []string) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return "", false
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
next:
	for sc.Scan() {
		for _, p := range parts {
			if !strings.Contains(sc.Text(), p) {
				continue next
			}
		}
		return sc.Text(), true
	}
	return "", false
}

// status reads the changefeed status the maintainer publishes.
func (c *cluster) status(cf string) (etcdutil.ChangefeedStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return etcdutil.GetStatus(ctx, c.cli, c.keys, cf)
}

// leader reads the changefeed's current maintainer from its election key.
func (c *cluster) leader(cf string) (etcdutil.Leader, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return etcdutil.GetLeader(ctx, c.cli, c.keys, cf)
}

// waitFor polls the published status until ok holds or timeout passes; it returns the status and
// how long it took, and fails the test on timeout.
func (c *cluster) waitFor(cf string, timeout time.Duration, what string, ok func(etcdutil.ChangefeedStatus) bool) (etcdutil.ChangefeedStatus, time.Duration) {
	c.t.Helper()
	st, took, reached := c.poll(cf, timeout, ok)
	if !reached {
		c.t.Fatalf("%s: not reached within %v; last status %+v", what, timeout, st)
	}
	return st, took
}

// poll is waitFor without failing: reached is false on timeout, with the last status seen.
func (c *cluster) poll(cf string, timeout time.Duration, ok func(etcdutil.ChangefeedStatus) bool) (st etcdutil.ChangefeedStatus, took time.Duration, reached bool) {
	start := time.Now()
	for time.Since(start) < timeout {
		if cur, err := c.status(cf); err == nil {
			st = cur
			if ok(cur) {
				return cur, time.Since(start), true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return st, time.Since(start), false
}

// records reads every node's sink file of changefeed cf.
func (c *cluster) records(cf string) []dispatcher.Record {
	c.t.Helper()
	var all []dispatcher.Record
	for _, id := range c.ids() {
		rs, err := dispatcher.ReadRecords(filepath.Join(c.nodes[id].dataDir, "sink", cf+".jsonl"))
		if errors.Is(err, os.ErrNotExist) {
			continue // the node never ran a dispatcher of cf
		}
		if err != nil {
			c.t.Fatalf("sink of %s: %v", id, err)
		}
		all = append(all, rs...)
	}
	return all
}
