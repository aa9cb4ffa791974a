package failover

import (
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// failpointPkgs are the directories whose markers the failpoint build rewrites; the Makefile's
// FAILPOINT_PKGS names the same.
var failpointPkgs = []string{"failpoints", "server", "maintainer", "dispatcher", "dispatchermanager", "messaging"}

// builds holds the binaries built once per test binary run, shared by every scenario.
var builds struct {
	sync.Once
	dir      string
	tidemark string
	etcd     string
	err      error
}

// binaries returns a failpoint-enabled tidemark and an etcd binary. TIDEMARK_FAILOVER_BIN names
// a prebuilt failpoint binary (make failover-test passes bin/tidemark-failpoint) to skip the build.
func binaries(t *testing.T) (tidemark, etcd string) {
	t.Helper()
	builds.Do(func() {
		builds.dir, builds.err = os.MkdirTemp("", "tidemark-failover-bin-")
		if builds.err != nil {
			return
		}
		if p := os.Getenv("TIDEMARK_FAILOVER_BIN"); p != "" {
			builds.tidemark, builds.err = filepath.Abs(p)
			return
		}
		builds.tidemark = filepath.Join(builds.dir, "tidemark-failpoint")
		builds.err = buildFailpointBinary(moduleRoot(t), builds.dir, builds.tidemark)
	})
	if builds.err != nil {
		t.Fatalf("building tidemark with failpoints: %v", builds.err)
	}
	return builds.tidemark, etcdBinary(t, builds.dir)
}

// buildFailpointBinary copies the module to a scratch dir, rewrites the markers there with
// failpoint-ctl and builds. The checkout is never rewritten, so an interrupted build cannot leave
// *__failpoint_* files behind and other work on the tree is never disturbed.
func buildFailpointBinary(root, scratch, out string) error {
	src := filepath.Join(scratch, "src")
	if err := copyTree(root, src); err != nil {
		return fmt.Errorf("copy module: %w", err)
	}
	defer os.RemoveAll(src)
	steps := [][]string{
		append([]string{"go", "tool", "failpoint-ctl", "enable"}, failpointPkgs...),
		{"go", "build", "-o", out, "./cmd/tidemark"},
	}
	for _, s := range steps {
		cmd := exec.Command(s[0], s[1:]...)
		cmd.Dir = src
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(s, " "), err, b)
		}
	}
	return nil
}

// copyTree copies the Go sources and module files of root, skipping .git, bin and leftovers of
// an in-place failpoint-ctl run.
func copyTree(root, dst string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == ".git" || rel == "bin" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if strings.Contains(d.Name(), "__failpoint_") || !d.Type().IsRegular() {
			return nil
		}
		return copyFile(path, filepath.Join(dst, rel))
	})
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// moduleRoot is the directory holding go.mod, two levels up from this package.
func moduleRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Clean(filepath.Join(wd, "..", ".."))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root %s: %v", root, err)
	}
	return root
}

// freePort asks the kernel for a free loopback port. Another process may take it before ours
// binds it; tests accept that small race.
func freePort(t *testing.T) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		// The kernel may offer a just-closed port again, and a port is chosen well before its
		// process binds it (nodes get their addresses when the cluster is laid out), so a port
		// is never handed out twice in one test binary.
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port
		}
	}
}

// handedOut is every port freePort returned in this test binary.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// process is one child process, in its own process group, killed if the test binary dies.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	log    *os.File
}

// startProcess runs bin with args and extra environment; stdout and stderr go to logPath.
func startProcess(bin string, args, env []string, logPath string) (*process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &process{cmd: cmd, exited: make(chan struct{}), log: f}
	go func() { _ = cmd.Wait(); f.Close(); close(p.exited) }()
	return p, nil
}

func (p *process) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *process) signal(sig syscall.Signal) {
	if p.alive() {
		_ = p.cmd.Process.Signal(sig)
	}
}

func (p *process) wait() { <-p.exited }

func (p *process) waitFor(d time.Duration) bool {
	select {
	case <-p.exited:
		return true
	case <-time.After(d):
		return false
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
