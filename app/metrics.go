package app

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsServer serves the process's registry at metrics.path on
// metrics.port, the port the first configuration format named. It is then
// the process's one scrape target: the edges' /metrics name it instead of
// serving the same registry again.
type metricsServer struct {
	srv *http.Server
	l   net.Listener
	log *slog.Logger
}

func newMetricsServer(l net.Listener, path string, g prometheus.Gatherer, log *slog.Logger) *metricsServer {
	mux := http.NewServeMux()
	mux.Handle("GET "+path, promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	return &metricsServer{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second},
		l:   l, log: log,
	}
}

func (m *metricsServer) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = m.srv.Close() })
	defer stop()
	m.log.Info("metrics listening", "addr", m.l.Addr().String())
	if err := m.srv.Serve(m.l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (m *metricsServer) Shutdown(ctx context.Context) error { return m.srv.Shutdown(ctx) }
