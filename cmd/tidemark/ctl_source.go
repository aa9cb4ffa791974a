package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tidemark/tidemark/etcdutil"
)

// sourceFlags are the `ctl changefeed create` flags of the etcd dispatcher.
type sourceFlags struct {
	dispatcher       string
	sourceEtcd       string
	sourcePrefix     string
	sourceRanges     []string
	tablePrefix      string
	tableCount       int
	tableWidth       int
	sourceTLS        etcdutil.TLSFiles
	sink, sinkEtcd   string
	sinkPrefix       string
	sinkTLS          etcdutil.TLSFiles
	sinkFileMaxBytes int64
}

func (s *sourceFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&s.dispatcher, "dispatcher", etcdutil.DefaultDispatcher,
		"dispatcher kind every node runs for the spans: sim (simulated), etcd (replicate a source etcd's keys), or one a program embedding a node adds")
	fl.StringVar(&s.sourceEtcd, "source-etcd", "", "etcd dispatcher: source etcd client URLs, comma-separated")
	fl.StringVar(&s.sourcePrefix, "source-prefix", "", "etcd dispatcher: the source key prefix to replicate (one table)")
	fl.StringArrayVar(&s.sourceRanges, "source-range", nil, "etcd dispatcher: a source key range START..END (END empty: no bound), one table each; repeatable")
	fl.StringVar(&s.tablePrefix, "source-table-prefix", "", "etcd dispatcher: numbered tables under this prefix; table i is the keys under PREFIX + i zero-padded + \"/\" (with --source-tables)")
	fl.IntVar(&s.tableCount, "source-tables", 0, "etcd dispatcher: how many numbered tables --source-table-prefix holds (1 to N)")
	fl.IntVar(&s.tableWidth, "source-table-width", 0, "etcd dispatcher: digits of a table ID in its keys (default: the digits of --source-tables)")
	fl.StringVar(&s.sourceTLS.CA, "source-ca", "", "CA file to verify the source etcd (turns on TLS)")
	fl.StringVar(&s.sourceTLS.Cert, "source-cert", "", "client certificate file for the source etcd")
	fl.StringVar(&s.sourceTLS.Key, "source-key", "", "client key file for the source etcd")
	fl.StringVar(&s.sink, "sink", "", "etcd dispatcher: file (JSON lines under each node's data dir) or etcd (a mirror)")
	fl.StringVar(&s.sinkEtcd, "sink-etcd", "", "mirror sink: target etcd client URLs, comma-separated")
	fl.StringVar(&s.sinkPrefix, "sink-prefix", "", "mirror sink: the prefix that replaces the source prefix in the target")
	fl.StringVar(&s.sinkTLS.CA, "sink-ca", "", "CA file to verify the target etcd (turns on TLS)")
	fl.StringVar(&s.sinkTLS.Cert, "sink-cert", "", "client certificate file for the target etcd")
	fl.StringVar(&s.sinkTLS.Key, "sink-key", "", "client key file for the target etcd")
	fl.Int64Var(&s.sinkFileMaxBytes, "sink-file-max-bytes", 0, "file sink: start a new file beyond this size (default 64 MiB)")
}

// used reports whether any etcd-dispatcher flag was given.
func (s *sourceFlags) used() bool {
	return s.sourceEtcd != "" || s.sourcePrefix != "" || len(s.sourceRanges) > 0 || s.tablePrefix != "" || s.tableCount != 0 || s.tableWidth != 0 || s.sourceTLS.Enabled() ||
		s.sink != "" || s.sinkEtcd != "" || s.sinkPrefix != "" || s.sinkTLS.Enabled() || s.sinkFileMaxBytes != 0
}

// apply fills the dispatcher, source, sink and tables of info. Its errors are plain errors
// (exit 1), not usage errors: they are about the values, which ChangefeedInfo.Validate and the
// TLS files judge.
func (s *sourceFlags) apply(info *etcdutil.ChangefeedInfo, tablesGiven bool) error {
	if s.dispatcher != etcdutil.DefaultDispatcher {
		// The default stays unwritten, so definitions read the same as before kinds existed.
		info.Dispatcher = s.dispatcher
	}
	if s.dispatcher != etcdutil.EtcdDispatcher {
		if s.used() {
			return usagef("--source-*/--sink-* flags need --dispatcher etcd")
		}
		return nil
	}
	if tablesGiven {
		return usagef("--tables: with --dispatcher etcd the tables are the source key ranges (--source-prefix, --source-range or --source-table-prefix)")
	}
	if (s.tablePrefix == "") != (s.tableCount == 0) || (s.tableWidth != 0 && s.tablePrefix == "") {
		return usagef("--source-table-prefix and --source-tables go together (--source-table-width with them)")
	}
	if s.sourcePrefix == "" && len(s.sourceRanges) == 0 && s.tablePrefix == "" {
		return fmt.Errorf("--dispatcher etcd needs --source-prefix P, --source-range START..END or --source-table-prefix P --source-tables N: the source keys to replicate")
	}
	src := &etcdutil.SourceConfig{Endpoints: splitURLs(s.sourceEtcd), Prefix: s.sourcePrefix}
	if s.tablePrefix != "" {
		src.TableKeys = &etcdutil.TableKeys{Prefix: s.tablePrefix, Count: s.tableCount, Width: s.tableWidth}
		if s.tableWidth == 0 && s.tableCount > 0 {
			// Written out, so a table's keys never depend on the count.
			src.TableKeys.Width = len(strconv.Itoa(s.tableCount))
		}
	}
	for _, r := range s.sourceRanges {
		start, end, ok := strings.Cut(r, "..")
		if !ok {
			return fmt.Errorf("--source-range %q: want START..END", r)
		}
		src.Ranges = append(src.Ranges, etcdutil.KeyRange{Start: start, End: end})
	}
	if s.sourceTLS.Enabled() {
		t := s.sourceTLS
		src.TLS = &t
	}
	kind := s.sink
	if kind == "" {
		kind = etcdutil.SinkFile
	}
	sink := &etcdutil.SinkConfig{Kind: kind, Endpoints: splitURLs(s.sinkEtcd), Prefix: s.sinkPrefix, FileMaxBytes: s.sinkFileMaxBytes}
	if s.sinkTLS.Enabled() {
		t := s.sinkTLS
		sink.TLS = &t
	}
	info.Source, info.Sink = src, sink
	info.Tables = nil
	for i := range src.TableCount() {
		info.Tables = append(info.Tables, etcdutil.TableInfo{ID: int64(i + 1)})
	}
	if err := info.Validate(); err != nil {
		return err
	}
	// The files must be readable certificates here; every node reads them again.
	for name, f := range map[string]*etcdutil.TLSFiles{"--source-ca/--source-cert/--source-key": src.TLS, "--sink-ca/--sink-cert/--sink-key": sink.TLS} {
		if f == nil {
			continue
		}
		if _, err := etcdutil.ClientTLS(*f); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// sourceStartRevision reads the source's current revision: a new etcd changefeed starts there
// unless --start-ts names one.
func sourceStartRevision(ctx context.Context, src *etcdutil.SourceConfig) (uint64, error) {
	tlsCfg, err := tlsOrNil(src.TLS)
	if err != nil {
		return 0, err
	}
	cli, err := etcdutil.Connect(ctx, src.Endpoints, tlsCfg, 0)
	if err != nil {
		return 0, fmt.Errorf("source: %w", err)
	}
	defer func() { _ = cli.Close() }()
	resp, err := cli.Get(ctx, "\x00", countOnly())
	if err != nil {
		return 0, fmt.Errorf("source etcd at %v: read its revision: %w", src.Endpoints, err)
	}
	return uint64(resp.Header.Revision), nil
}

func splitURLs(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func tlsOrNil(f *etcdutil.TLSFiles) (*tls.Config, error) {
	if f == nil {
		return nil, nil
	}
	return etcdutil.ClientTLS(*f)
}

func countOnly() clientv3.OpOption { return clientv3.WithCountOnly() }
