package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/tidemark/tidemark/maintainer"
)

// startStatusAPI binds the HTTP status API. Binding happens here, not in a goroutine, so a port
// in use fails Run with a clear error instead of a log line.
func (s *Server) startStatusAPI(ctx context.Context) (*statusServer, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.StatusAddr)
	if err != nil {
		return nil, fmt.Errorf("server: status api: listen %s: %w", s.cfg.StatusAddr, err)
	}
	s.statusAddr = ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/api/v1/status", s.handleStatus)
	s.mountAPI(mux)
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.mountFailpoints(mux)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			s.log.Error("status api stopped", zap.Error(err))
		}
	}()
	return srv, nil
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
	Manager *managerView `json:"dispatcher_manager,omitempty"`
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
