package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/api"
	"github.com/tidemark/tidemark/maintainer"
)

// startStatusAPI binds the HTTP status API. Binding happens here, not in a goroutine, so a port
// in use fails Run with a clear error instead of a log line. With peer TLS it serves HTTPS only.
func (s *Server) startStatusAPI(ctx context.Context) (*statusServer, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.StatusAddr)
	if err != nil {
		return nil, fmt.Errorf("server: status api: listen %s: %w", s.cfg.StatusAddr, err)
	}
	s.statusAddr = ln.Addr().String()
	if tlsCfg := s.statusTLS(); tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	srv := &http.Server{Handler: s.statusMux(), ReadHeaderTimeout: 5 * time.Second,
		// Failed handshakes (a plain-HTTP client, a wrong certificate) are the client's business.
		ErrorLog: statusErrorLog(s.log)}
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			s.log.Error("status api stopped", zap.Error(err))
		}
	}()
	return srv, nil
}

// statusErrorLog sends net/http's own messages to the node's log at debug level.
func statusErrorLog(lg *zap.Logger) *log.Logger {
	std, err := zap.NewStdLogAt(lg.Named("http"), zap.DebugLevel)
	if err != nil { // only for an invalid level, and DebugLevel is valid
		return zap.NewStdLog(lg.Named("http"))
	}
	return std
}

// statusTLS is the status API's server config: the node's own certificate, and client
// certificates verified against the cluster CA when shown (required with
// StatusRequireClientCert). nil without peer TLS.
func (s *Server) statusTLS() *tls.Config {
	if s.cfg.PeerTLS == nil {
		return nil
	}
	cfg := s.cfg.PeerTLS.Clone()
	cfg.ClientAuth = tls.VerifyClientCertIfGiven
	if s.cfg.StatusRequireClientCert {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	cfg.NextProtos = []string{"h2", "http/1.1"}
	return cfg
}

// statusScheme is how clients reach the status API.
func (s *Server) statusScheme() string {
	if s.cfg.PeerTLS != nil {
		return "https"
	}
	return "http"
}

// statusMux routes the status API. pprof is mounted only with EnablePprof.
func (s *Server) statusMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/api/v1/status", s.handleStatus)
	s.mountAPI(mux)
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	if s.cfg.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s.mountFailpoints(mux)
	return mux
}

// nodeStatus is the /api/v1/status document.
type nodeStatus struct {
	Node        string             `json:"node"`
	Addr        string             `json:"addr"`
	PID         int                `json:"pid"`
	Version     string             `json:"version"`
	UptimeSec   float64            `json:"uptime_sec"`
	Changefeeds []changefeedStatus `json:"changefeeds"`
}

type changefeedStatus struct {
	ID string `json:"id"`
	// Manager is this node's dispatcher manager for the changefeed.
	Manager *api.ManagerView `json:"dispatcher_manager,omitempty"`
	// Maintainer is set when this node maintains the changefeed.
	Maintainer *maintainer.Status `json:"maintainer,omitempty"`
}

func (s *Server) handleStatus(w http.ResponseWriter, _ *http.Request) {
	st := nodeStatus{
		Node: s.nodeID, Addr: s.cfg.Addr, PID: os.Getpid(), Version: s.cfg.Version,
		UptimeSec: time.Since(s.startedAt).Seconds(),
	}
	for _, wk := range s.workers.list() {
		mgr, mt := wk.views.get()
		cs := changefeedStatus{ID: wk.id, Manager: mgr, Maintainer: mt}
		st.Changefeeds = append(st.Changefeeds, cs)
	}
	sort.Slice(st.Changefeeds, func(i, j int) bool { return st.Changefeeds[i].ID < st.Changefeeds[j].ID })
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(st)
}
