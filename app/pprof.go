package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"
)

// pprofServer serves net/http/pprof on its own address (PPROF_ADDR), never
// on an edge's port.
type pprofServer struct {
	srv *http.Server
	log *slog.Logger
}

func newPprof(addr string, log *slog.Logger) *pprofServer {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &pprofServer{srv: &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}, log: log}
}

func (p *pprofServer) Run(context.Context) error {
	p.log.Info("pprof listening", "addr", p.srv.Addr)
	if err := p.srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (p *pprofServer) Shutdown(ctx context.Context) error { return p.srv.Shutdown(ctx) }
