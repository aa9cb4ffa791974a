package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tidemark/tidemark/pki"
)

// certsFlags are the flags of `tidemark certs`.
type certsFlags struct {
	dir, cluster, nodes, hosts, client string
	valid                              time.Duration
	force                              bool
}

func newCertsCmd() *cobra.Command {
	var f certsFlags
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make a CA and one certificate per node (and one for ctl) for mutual TLS",
		Long: "certs writes ca.pem and ca-key.pem, and for every node <id>.pem and <id>-key.pem: ECDSA P-256\n" +
			"certificates that name the node as tidemark://<cluster>/node/<id> (peers accept a node only as\n" +
			"the node its certificate names) and the --hosts as IP or DNS SANs. It also writes a client\n" +
			"certificate <client>.pem for ctl. An existing CA in --dir is reused, so nodes can be added\n" +
			"later; any other existing file is an error unless --force (which also makes a new CA).",
		Example: "  tidemark certs --dir ./certs --cluster prod --nodes node-1,node-2,node-3 --hosts 10.0.0.5,node1.example\n" +
			"  tidemark server ... --node-id node-1 --tls-ca certs/ca.pem --tls-cert certs/node-1.pem --tls-key certs/node-1-key.pem",
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error { return runCerts(c, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dir, "dir", "", "directory to write the files into (required; created if missing)")
	fl.StringVar(&f.cluster, "cluster", "", "cluster ID the certificates are for (required)")
	fl.StringVar(&f.nodes, "nodes", "", "node IDs, comma-separated (required)")
	fl.StringVar(&f.hosts, "hosts", "127.0.0.1,localhost", "IPs and DNS names every node certificate is valid for (the hosts of --addr and --status-addr)")
	fl.StringVar(&f.client, "client", "ctl", "name of the client certificate for ctl; empty: none")
	fl.DurationVar(&f.valid, "valid", 8760*time.Hour, "validity of the CA and the certificates")
	fl.BoolVar(&f.force, "force", false, "overwrite existing files, the CA included")
	return cmd
}

// splitList splits a comma-separated flag value; empty elements are an error, so that a typo
// such as "a,,b" is not silently read as two names.
func splitList(flag, v string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, usagef("--%s %q has an empty element", flag, v)
		}
		out = append(out, s)
	}
	return out, nil
}

// certsSpec checks the flags; every error is a usage error.
func certsSpec(f certsFlags) (pki.ClusterSpec, error) {
	spec := pki.ClusterSpec{Dir: f.dir, Cluster: f.cluster, Valid: f.valid, Force: f.force}
	for _, req := range []struct{ name, val string }{{"dir", f.dir}, {"cluster", f.cluster}, {"nodes", f.nodes}} {
		if strings.TrimSpace(req.val) == "" {
			return spec, usagef("--%s is required", req.name)
		}
	}
	if f.valid <= 0 {
		return spec, usagef("--valid %s must be above zero", f.valid)
	}
	var err error
	if spec.Nodes, err = splitList("nodes", f.nodes); err != nil {
		return spec, err
	}
	if spec.Hosts, err = splitList("hosts", f.hosts); err != nil {
		return spec, err
	}
	if len(spec.Hosts) == 0 {
		return spec, usagef("--hosts is empty; name the IPs or host names peers dial")
	}
	if f.client != "" {
		spec.Clients = []string{f.client}
	}
	if err := spec.Validate(); err != nil {
		return spec, &usageError{err: err}
	}
	return spec, nil
}

func runCerts(c *cobra.Command, f certsFlags) error {
	spec, err := certsSpec(f)
	if err != nil {
		return err
	}
	w, err := pki.WriteCluster(spec)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	out := c.OutOrStdout()
	if w.ReusedCA {
		fmt.Fprintf(out, "reused the CA in %s\n", f.dir)
	}
	for _, p := range w.Files {
		fmt.Fprintf(out, "wrote %s\n", p)
	}
	n := spec.Nodes[0]
	fmt.Fprintf(out, "start each node with its own files, e.g.\n  tidemark server ... --cluster %s --node-id %s --tls-ca %s --tls-cert %s --tls-key %s\n",
		f.cluster, n, caPath(f.dir), certPath(f.dir, n), keyPath(f.dir, n))
	if f.client != "" {
		fmt.Fprintf(out, "and reach their HTTPS status API with\n  tidemark ctl ... --cluster %s %s\n", f.cluster, ctlTLSArgs(f.dir, f.client))
	}
	return nil
}

// caPath, certPath and keyPath are where `tidemark certs` writes into dir.
func caPath(dir string) string         { return filepath.Join(dir, pki.CAFile) }
func certPath(dir, name string) string { return pki.CertFile(dir, name) }
func keyPath(dir, name string) string  { return pki.KeyFile(dir, name) }
