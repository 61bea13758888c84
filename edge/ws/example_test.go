package ws_test

import (
	"context"
	"log/slog"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/edge"
	"github.com/switchyard/switchyard/edge/ws"
)

// An echo endpoint on an edge: every message comes back, connections close
// with 1001 when the edge shuts down.
func ExampleUpgrade() {
	var srv *edge.Server // from edge.New
	log := slog.Default().With("edge", "broker")
	hub := ws.NewHub()
	srv.OnShutdown(func(ctx context.Context) { _ = hub.Shutdown(ctx) })
	opts := ws.Options{Metrics: ws.NewMetrics(prometheus.NewRegistry(), "broker"), Log: log}
	srv.Echo.GET("/ws/echo", func(c echo.Context) error {
		conn, err := ws.Upgrade(c.Response(), c.Request(), opts, func(conn *ws.Conn, typ int, data []byte) {
			_ = conn.Send(typ, data) // ErrSlow closes the connection with 4008
		})
		if err != nil {
			return nil // the JSON error response is written
		}
		hub.Add(conn)
		return nil
	})
}
