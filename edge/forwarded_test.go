package edge_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/edge"
)

// seenBy is what a handler behind the edge middleware sees.
type seenBy struct {
	Header http.Header
	RealIP string
}

// startTrusting runs an edge trusting proxies, with GET /seen answering
// what the handler saw.
func startTrusting(t *testing.T, proxies ...string) (string, *prometheus.Registry) {
	t.Helper()
	var prefixes []netip.Prefix
	for _, p := range proxies {
		prefixes = append(prefixes, netip.MustParsePrefix(p))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s := edge.New(edge.Options{Name: "fw", Listener: l, Log: slog.New(slog.DiscardHandler),
		Metrics: edge.NewMetrics(reg), TrustedProxies: prefixes})
	s.Echo.GET("/seen", func(c echo.Context) error {
		return c.JSON(http.StatusOK, seenBy{c.Request().Header, c.RealIP()})
	})
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		<-done
	})
	return "http://" + l.Addr().String() + "/seen", reg
}

func fetchSeen(t *testing.T, url string, h map[string][]string) seenBy {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, vs := range h {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s seenBy
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

var spoof = map[string][]string{
	"X-Forwarded-For":   {"6.6.6.6", "7.7.7.7"}, // two header lines
	"X-Forwarded-Host":  {"evil.example"},
	"X-Forwarded-Proto": {"https"},
	"X-Forwarded-Port":  {"443"},
	"X-Real-Ip":         {"6.6.6.6"},
	"Forwarded":         {"for=6.6.6.6;proto=https"},
}

func TestForwardedHeadersFromUntrustedPeerRemoved(t *testing.T) {
	for name, proxies := range map[string][]string{"none trusted": nil, "others trusted": {"10.0.0.0/8", "::1/128"}} {
		t.Run(name, func(t *testing.T) {
			url, reg := startTrusting(t, proxies...)
			s := fetchSeen(t, url, spoof)
			for k := range spoof {
				if v := s.Header.Values(k); len(v) > 0 {
					t.Errorf("the handler saw %s: %q", k, v)
				}
			}
			if s.RealIP != "127.0.0.1" {
				t.Errorf("RealIP %q, want the peer 127.0.0.1", s.RealIP)
			}
			if got := counterValue(t, reg, "switchyard_http_forwarded_headers_stripped_total"); got != 1 {
				t.Errorf("forwarded_headers_stripped_total = %v, want 1", got)
			}
			// A request without such headers is not counted.
			fetchSeen(t, url, nil)
			if got := counterValue(t, reg, "switchyard_http_forwarded_headers_stripped_total"); got != 1 {
				t.Errorf("forwarded_headers_stripped_total = %v after a clean request, want 1", got)
			}
		})
	}
}

func TestForwardedHeadersFromTrustedProxyKept(t *testing.T) {
	url, reg := startTrusting(t, "127.0.0.0/8", "10.0.0.0/8")
	s := fetchSeen(t, url, map[string][]string{
		"X-Forwarded-For":   {"6.6.6.6, 10.1.2.3"},
		"X-Forwarded-Host":  {"api.example"},
		"X-Forwarded-Proto": {"https"},
		"Forwarded":         {"for=6.6.6.6"},
	})
	if got := strings.Join(s.Header.Values("X-Forwarded-For"), ","); got != "6.6.6.6, 10.1.2.3" {
		t.Errorf("X-Forwarded-For %q, want it kept", got)
	}
	if s.Header.Get("X-Forwarded-Host") != "api.example" || s.Header.Get("X-Forwarded-Proto") != "https" || s.Header.Get("Forwarded") == "" {
		t.Errorf("headers from a trusted proxy not kept: %v", s.Header)
	}
	// The client is the last address a trusted proxy did not add.
	if s.RealIP != "6.6.6.6" {
		t.Errorf("RealIP %q, want 6.6.6.6", s.RealIP)
	}
	if got := counterValue(t, reg, "switchyard_http_forwarded_headers_stripped_total"); got != 0 {
		t.Errorf("forwarded_headers_stripped_total = %v, want 0", got)
	}
	// Garbage in X-Forwarded-For stops the walk: the peer is the client.
	if s := fetchSeen(t, url, map[string][]string{"X-Forwarded-For": {"not-an-ip"}}); s.RealIP != "127.0.0.1" {
		t.Errorf("RealIP with a bad X-Forwarded-For %q, want the peer", s.RealIP)
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
