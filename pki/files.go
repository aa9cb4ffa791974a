package pki

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names inside a certificate directory.
const (
	CAFile    = "ca.pem"
	CAKeyFile = "ca-key.pem"
)

// CertFile and KeyFile are where WriteCluster puts the certificate and key of a node or client.
func CertFile(dir, name string) string { return filepath.Join(dir, name+".pem") }
func KeyFile(dir, name string) string  { return filepath.Join(dir, name+"-key.pem") }

// ClusterSpec is what WriteCluster makes.
type ClusterSpec struct {
	Dir     string
	Cluster string
	Nodes   []string      // node IDs; each gets <id>.pem and <id>-key.pem
	Clients []string      // client names (ctl); each gets a client-only certificate
	Hosts   []string      // IP or DNS SANs of every node certificate
	Valid   time.Duration // validity of the CA and of every certificate
	// Force overwrites existing files, the CA included. Without it an existing CA (both files) is
	// reused to sign, so nodes can be added to a running cluster, and any other existing file
	// is an error.
	Force bool
}

// Written is what WriteCluster did.
type Written struct {
	Files    []string // every file written, in order
	ReusedCA bool     // ca.pem and ca-key.pem existed and signed the new certificates
}

// WriteCluster checks spec, then writes the CA and every certificate. Every conflict is found
// before the first file is written, so a refused run leaves the directory as it was.
func WriteCluster(spec ClusterSpec) (Written, error) {
	var w Written
	if err := spec.Validate(); err != nil {
		return w, err
	}
	if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
		return w, fmt.Errorf("pki: certificate dir: %w", err)
	}
	ca, err := spec.loadCA()
	if err != nil {
		return w, err
	}
	var leaves []string
	for _, n := range append(append([]string(nil), spec.Nodes...), spec.Clients...) {
		leaves = append(leaves, CertFile(spec.Dir, n), KeyFile(spec.Dir, n))
	}
	if !spec.Force {
		if err := refuseExisting(leaves); err != nil {
			return w, err
		}
	}
	if ca == nil {
		if ca, err = NewCA("tidemark "+spec.Cluster+" CA", spec.Valid); err != nil {
			return w, err
		}
		if err := spec.write(&w, filepath.Join(spec.Dir, CAFile), ca.CertPEM, filepath.Join(spec.Dir, CAKeyFile), ca.KeyPEM); err != nil {
			return w, err
		}
	} else {
		w.ReusedCA = true
	}
	for i, name := range append(append([]string(nil), spec.Nodes...), spec.Clients...) {
		var p Pair
		if i < len(spec.Nodes) {
			p, err = ca.IssueNode(spec.Cluster, name, spec.Hosts, spec.Valid)
		} else {
			p, err = ca.IssueClient(spec.Cluster, name, spec.Valid)
		}
		if err != nil {
			return w, err
		}
		if err := spec.write(&w, CertFile(spec.Dir, name), p.CertPEM, KeyFile(spec.Dir, name), p.KeyPEM); err != nil {
			return w, err
		}
	}
	return w, nil
}

// Validate checks the spec, including that no two outputs share a file name ("a-key" as a node
// would be node a's key file).
func (spec ClusterSpec) Validate() error {
	switch {
	case strings.TrimSpace(spec.Dir) == "":
		return errors.New("pki: no certificate directory")
	case len(spec.Nodes) == 0:
		return errors.New("pki: no node IDs; name every node of the cluster")
	case len(spec.Hosts) == 0:
		return errors.New("pki: no hosts; node certificates must name the hosts peers dial")
	case spec.Valid <= 0:
		return fmt.Errorf("pki: validity %v must be above zero", spec.Valid)
	}
	if err := validID("cluster", spec.Cluster); err != nil {
		return err
	}
	owner := map[string]string{CAFile: "the CA", CAKeyFile: "the CA key"}
	claim := func(file, what string) error {
		if prev, ok := owner[file]; ok {
			return fmt.Errorf("pki: %s and %s would both be written to %s; rename one", prev, what, file)
		}
		owner[file] = what
		return nil
	}
	for i, name := range append(append([]string(nil), spec.Nodes...), spec.Clients...) {
		kind := KindNode
		if i >= len(spec.Nodes) {
			kind = KindClient
		}
		if err := validID(kind, name); err != nil {
			return err
		}
		what := kind + " " + name
		if err := claim(name+".pem", what); err != nil {
			return err
		}
		if err := claim(name+"-key.pem", what+"'s key"); err != nil {
			return err
		}
	}
	for _, h := range spec.Hosts {
		if strings.TrimSpace(h) == "" {
			return errors.New("pki: an empty host in the host list")
		}
	}
	return nil
}

// loadCA returns the existing CA to reuse, nil when a new one is to be made.
func (spec ClusterSpec) loadCA() (*CA, error) {
	certPath, keyPath := filepath.Join(spec.Dir, CAFile), filepath.Join(spec.Dir, CAKeyFile)
	certPEM, cerr := os.ReadFile(certPath)
	keyPEM, kerr := os.ReadFile(keyPath)
	missing := func(err error) bool { return errors.Is(err, fs.ErrNotExist) }
	switch {
	case spec.Force || (missing(cerr) && missing(kerr)):
		return nil, nil
	case cerr != nil && !missing(cerr):
		return nil, fmt.Errorf("pki: read %s: %w", certPath, cerr)
	case kerr != nil && !missing(kerr):
		return nil, fmt.Errorf("pki: read %s: %w", keyPath, kerr)
	case missing(kerr):
		return nil, fmt.Errorf("pki: %s exists but %s does not; restore the key, or pass --force to make a new CA (every node then needs new certificates)", certPath, keyPath)
	case missing(cerr):
		return nil, fmt.Errorf("pki: %s exists but %s does not; restore the certificate, or pass --force to make a new CA", keyPath, certPath)
	}
	ca, err := LoadCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: existing CA in %s: %w", spec.Dir, err)
	}
	return ca, nil
}

// refuseExisting fails naming every file of paths that exists already.
func refuseExisting(paths []string) error {
	var exist []string
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			exist = append(exist, p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pki: %w", err)
		}
	}
	if len(exist) > 0 {
		return fmt.Errorf("pki: %s already exist; pass --force to overwrite, or choose another --dir", strings.Join(exist, ", "))
	}
	return nil
}

// write writes a certificate (world-readable) and its key (owner only). Without Force a file
// that appeared since the check is not overwritten either (O_EXCL).
func (spec ClusterSpec) write(w *Written, certPath string, certPEM []byte, keyPath string, keyPEM []byte) error {
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{keyPath, keyPEM, 0o600}, {certPath, certPEM, 0o644}} {
		flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
		if spec.Force {
			flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		}
		fh, err := os.OpenFile(f.path, flags, f.mode)
		if err != nil {
			return fmt.Errorf("pki: %w", err)
		}
		_, werr := fh.Write(f.data)
		if cerr := fh.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("pki: write %s: %w", f.path, werr)
		}
		if spec.Force {
			// O_TRUNC keeps the old mode; a key must never stay readable by others.
			if err := os.Chmod(f.path, f.mode); err != nil {
				return fmt.Errorf("pki: %w", err)
			}
		}
		w.Files = append(w.Files, f.path)
	}
	return nil
}
