package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/etcdutil"
	"github.com/tidemark/tidemark/etcdutil/embedetcd"
)

// cluster is one embedded etcd and the server processes of one size's run.
type cluster struct {
	bin string
	dir string
	id  string
	ttl time.Duration
	// logLevel and pprof are passed to every server (--log-level, --enable-pprof).
	logLevel string
	pprof    bool
	etcd     *embedetcd.Server
	cli      *clientv3.Client
	keys     etcdutil.Keys
	nodes    map[string]*node
	logf     func(format string, args ...any)
}

// node is one `tidemark server` process.
type node struct {
	id         string
	statusAddr string
	cmd        *exec.Cmd
	exited     chan struct{}
}

func startCluster(rc runConfig, n int) (*cluster, error) {
	srv, err := embedetcd.Start(embedetcd.Config{Dir: filepath.Join(rc.dir, "etcd"), Name: "bench", LogLevel: "panic"})
	if err != nil {
		return nil, err
	}
	if rc.logLevel == "" {
		rc.logLevel = "warn"
	}
	c := &cluster{bin: rc.bin, dir: rc.dir, id: "bench", ttl: rc.ttl, logLevel: rc.logLevel, pprof: rc.pprof, etcd: srv,
		keys: etcdutil.Keys{Cluster: "bench"}, nodes: map[string]*node{}, logf: rc.logf}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.cli, err = etcdutil.Connect(ctx, srv.ClientURLs(), nil, 5*time.Second)
	if err != nil {
		c.close()
		return nil, err
	}
	for i := 1; i <= n; i++ {
		if err := c.start(fmt.Sprintf("n%d", i)); err != nil {
			c.close()
			return nil, err
		}
	}
	if err := c.waitFor("nodes registered", 30*time.Second, func() (bool, error) {
		if err := c.exitedNode(); err != nil {
			return false, stopWaiting{err}
		}
		live, err := c.liveNodes()
		if err == nil && live != n {
			err = fmt.Errorf("%d of %d registered (their logs are in %s)", live, n, c.dir)
		}
		return live == n, err
	}); err != nil {
		c.close()
		return nil, err
	}
	if err := c.learnStatusAddrs(); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// start runs one server. It binds port 0 for both its listeners and advertises the ports it got,
// which learnStatusAddrs reads back: picking a free port here and handing it over would race every
// other process on the machine for it (CI runs the test packages side by side), and a server that
// lost that race never registered.
func (c *cluster) start(id string) error {
	args := []string{"server", "--etcd", strings.Join(c.etcd.ClientURLs(), ","), "--addr", "127.0.0.1:0",
		"--status-addr", "127.0.0.1:0", "--cluster", c.id, "--data-dir", filepath.Join(c.dir, id), "--node-id", id,
		"--session-ttl", c.ttl.String(), "--log-file", filepath.Join(c.dir, id+".log"), "--log-level", c.logLevel}
	if c.pprof || os.Getenv("BENCH_PPROF") != "" {
		args = append(args, "--enable-pprof") // profiles of the servers: go tool pprof http://STATUS/debug/pprof/profile
	}
	cmd := exec.Command(c.bin, args...)
	dieWithParent(cmd)
	stderr, err := os.Create(filepath.Join(c.dir, id+".stderr"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		stderr.Close()
		return fmt.Errorf("start %s: %w", id, err)
	}
	n := &node{id: id, cmd: cmd, exited: make(chan struct{})}
	c.logf("%s: pid %d", id, cmd.Process.Pid)
	go func() { _ = cmd.Wait(); stderr.Close(); close(n.exited) }()
	c.nodes[id] = n
	return nil
}

// exitedNode is an error naming a server that has exited, with the end of its stderr, or nil.
func (c *cluster) exitedNode() error {
	for id, n := range c.nodes {
		select {
		case <-n.exited:
			out, _ := os.ReadFile(filepath.Join(c.dir, id+".stderr"))
			tail := strings.TrimSpace(string(out))
			if len(tail) > 2000 {
				tail = "..." + tail[len(tail)-2000:]
			}
			return fmt.Errorf("node %s exited (%s); its stderr: %s", id, n.cmd.ProcessState, tail)
		default:
		}
	}
	return nil
}

// learnStatusAddrs reads every node's bound status address from its registration.
func (c *cluster) learnStatusAddrs() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	infos, err := etcdutil.ListNodes(ctx, c.cli, c.keys)
	if err != nil {
		return fmt.Errorf("read the nodes' registrations: %w", err)
	}
	for _, info := range infos {
		if n := c.nodes[info.ID]; n != nil {
			n.statusAddr = info.StatusAddr
			c.logf("%s: status http://%s", info.ID, info.StatusAddr)
		}
	}
	for id, n := range c.nodes {
		if n.statusAddr == "" {
			return fmt.Errorf("node %s registered no status address", id)
		}
	}
	return nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *cluster) kill(id string) {
	n := c.nodes[id]
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
	delete(c.nodes, id)
}

func (c *cluster) close() {
	for id, n := range c.nodes {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(10 * time.Second):
			_ = n.cmd.Process.Signal(syscall.SIGKILL)
			<-n.exited
		}
		delete(c.nodes, id)
	}
	if c.cli != nil {
		_ = c.cli.Close()
	}
	_ = c.etcd.Close()
}

// ctl runs `tidemark ctl` against the cluster and returns its output; a non-zero exit is an error.
func (c *cluster) ctl(timeout time.Duration, args ...string) (string, error) {
	full := append([]string{"ctl", "--etcd", strings.Join(c.etcd.ClientURLs(), ","), "--cluster", c.id,
		"--timeout", timeout.String()}, args...)
	out, err := exec.Command(c.bin, full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("tidemark %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func (c *cluster) liveNodes() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := c.cli.Get(ctx, c.keys.NodesPrefix(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return int(resp.Count), nil
}

// status is the changefeed's published status; ok is false while there is none.
func (c *cluster) status(cf string) (etcdutil.ChangefeedStatus, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := etcdutil.GetStatus(ctx, c.cli, c.keys, cf)
	return st, err == nil
}

// stopWaiting is an error of a waitFor condition that waiting longer cannot mend.
type stopWaiting struct{ err error }

func (s stopWaiting) Error() string { return s.err.Error() }

// waitFor polls cond every 50 ms until it holds, returns a stopWaiting error, or d passes.
func (c *cluster) waitFor(what string, d time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(d)
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if stop, is := err.(stopWaiting); is {
			return fmt.Errorf("%s: %w", what, stop.err)
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("%s: not within %v: %w", what, d, err)
			}
			return fmt.Errorf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metric sums the samples of one metric family on a node's /metrics.
func (c *cluster) metric(id, name string) (float64, error) {
	resp, err := http.Get("http://" + c.nodes[id].statusAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return sumMetric(resp.Body, name)
}

// sumMetric adds up every sample of name (any labels) in the Prometheus text format.
func sumMetric(r io.Reader, name string) (float64, error) {
	var sum float64
	found := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue // a longer name with this prefix
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += v
		found = true
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("no metric %s", name)
	}
	return sum, nil
}

// rss is a process's resident set in bytes, from /proc.
func (c *cluster) rss(id string) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.nodes[id].cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc status of %s", id)
}
