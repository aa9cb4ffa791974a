package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// binPath is the tidemark binary built once by TestMain for the subprocess tests. It is set
// only there, before any test runs.
var binPath string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tidemark-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "TestMain:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "tidemark")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-ldflags", "-X main.version=test-version", "-o", binPath, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "TestMain: go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// result is what one run of the binary produced.
type result struct {
	stdout, stderr string
	code           int
}

// runBin runs the built binary with args, bounded by a deadline.
func runBin(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		res.code = exitErr.ExitCode()
	default:
		t.Fatalf("run %v: %v", args, err)
	}
	return res
}

// runCLI runs the command tree in-process, which is faster than a subprocess for the many ctl
// calls; exit codes are the same because both go through run.
func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

func TestExitCodes(t *testing.T) {
	dataDir := t.TempDir()
	tests := []struct {
		name    string
		args    []string
		code    int
		wantOut string // in stdout
		wantErr string // in stderr
	}{
		{"version", []string{"version"}, exitOK, "tidemark test-version", ""},
		{"help", []string{"--help"}, exitOK, "playground", ""},
		{"no subcommand", nil, exitUsage, "", "needs a subcommand"},
		{"unknown subcommand", []string{"frobnicate"}, exitUsage, "", `unknown subcommand "frobnicate"`},
		{"unknown ctl subcommand", []string{"ctl", "frob"}, exitUsage, "", `unknown subcommand "frob" for "tidemark ctl"`},
		{"unknown flag", []string{"server", "--bogus"}, exitUsage, "", "unknown flag: --bogus"},
		{"server missing etcd", []string{"server", "--addr", "127.0.0.1:1"}, exitUsage, "", "--etcd is required"},
		{"server bad addr", []string{"server", "--etcd", "http://127.0.0.1:2379", "--addr", "nope",
			"--cluster", "c", "--data-dir", dataDir}, exitUsage, "", `--addr: "nope" is not HOST:PORT`},
		{"server addr without host", []string{"server", "--etcd", "http://127.0.0.1:2379", "--addr", ":8300",
			"--cluster", "c", "--data-dir", dataDir}, exitUsage, "", "has no host"},
		{"server bad port", []string{"server", "--etcd", "http://127.0.0.1:2379", "--addr", "127.0.0.1:99999",
			"--cluster", "c", "--data-dir", dataDir}, exitUsage, "", "not a number from 1 to 65535"},
		{"server bad etcd url", []string{"server", "--etcd", "127.0.0.1:2379", "--addr", "127.0.0.1:8300",
			"--cluster", "c", "--data-dir", dataDir}, exitUsage, "", "is not an etcd URL"},
		{"server bad log level", []string{"server", "--etcd", "http://127.0.0.1:2379", "--addr", "127.0.0.1:8300",
			"--cluster", "c", "--data-dir", dataDir, "--log-level", "loud"}, exitUsage, "", "--log-level"},
		{"server bad session ttl", []string{"server", "--etcd", "http://127.0.0.1:2379", "--addr", "127.0.0.1:8300",
			"--cluster", "c", "--data-dir", dataDir, "--session-ttl", "100ms"}, exitUsage, "", "--session-ttl"},
		{"server client certs without tls", []string{"server", "--etcd", "http://127.0.0.1:2379", "--addr", "127.0.0.1:8300",
			"--cluster", "c", "--data-dir", dataDir, "--status-require-client-cert"}, exitUsage, "", "needs --tls-ca/--tls-cert/--tls-key"},
		{"ctl half api tls", []string{"ctl", "nodes", "--tls-cert", "x.pem"}, exitUsage, "", "--tls-ca/--tls-cert/--tls-key"},
		{"bad tables", []string{"ctl", "changefeed", "create", "x", "--tables", "5-1"}, exitUsage, "", "write it as 1-5"},
		{"tables missing", []string{"ctl", "changefeed", "create", "x"}, exitUsage, "", "--tables is required"},
		{"create without name", []string{"ctl", "changefeed", "create", "--tables", "1"}, exitUsage, "", "the changefeed name"},
		{"bad load", []string{"ctl", "changefeed", "create", "x", "--tables", "1", "--load", "2=5"}, exitUsage, "", "not in --tables"},
		{"bad ctl etcd", []string{"ctl", "nodes", "--etcd", "ftp://x"}, exitUsage, "", "is not an etcd URL"},
		{"playground bad nodes", []string{"playground", "--nodes", "0"}, exitUsage, "", "--nodes 0"},
		{"playground bad url", []string{"playground", "--etcd-client-url", "localhost"}, exitUsage, "", "--etcd-client-url"},
		{"server etcd unreachable", []string{"server", "--etcd", "http://127.0.0.1:1", "--addr", "127.0.0.1:8300",
			"--cluster", "c", "--data-dir", dataDir}, exitError, "", "start etcd there, or run `tidemark playground`"},
		{"server listens on port 0", []string{"server", "--etcd", "http://127.0.0.1:1", "--addr", "127.0.0.1:0",
			"--status-addr", "127.0.0.1:0", "--cluster", "c", "--data-dir", dataDir}, exitError, "",
			"start etcd there, or run `tidemark playground`"},
		{"server bad cluster id", []string{"server", "--etcd", "http://127.0.0.1:2379", "--addr", "127.0.0.1:8300",
			"--cluster", "no spaces", "--data-dir", dataDir}, exitUsage, "", "cluster id"},
		{"etcd unreachable", []string{"ctl", "nodes", "--etcd", "http://127.0.0.1:1", "--timeout", "300ms"}, exitError, "",
			"tidemark playground"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runBin(t, tt.args...)
			if res.code != tt.code {
				t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", res.code, tt.code, res.stdout, res.stderr)
			}
			if !strings.Contains(res.stdout, tt.wantOut) {
				t.Errorf("stdout %q does not contain %q", res.stdout, tt.wantOut)
			}
			if !strings.Contains(res.stderr, tt.wantErr) {
				t.Errorf("stderr %q does not contain %q", res.stderr, tt.wantErr)
			}
		})
	}
}
