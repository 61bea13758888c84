package lb_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// The lb's service catch-all does not shadow the edge's own routes: other
// methods on them answer 405 with Allow, and HEAD is served wherever GET is.
func TestOwnRoutesNotShadowedByServices(t *testing.T) {
	up, hits := echoUpstream(t, "one")
	cfg := baseConfig(t)
	cfg.Rust.VisionServiceURL = up.URL
	s := startSys(t, cfg)

	for _, tc := range []struct{ method, path, allow string }{
		{"POST", "/health", "GET, HEAD"},
		{"DELETE", "/health", "GET, HEAD"},
		{"POST", "/services", "GET, HEAD"},
		{"PUT", "/metrics", "GET, HEAD"},
		{"OPTIONS", "/jobs/x", "GET, HEAD"},
		{"POST", "/jobs/abc", "GET, HEAD"},
		{"DELETE", "/jobs/abc/result", "GET, HEAD"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp := do(t, tc.method, s.url+tc.path, nil)
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow {
				t.Errorf("status %d Allow %q, want 405 with Allow %q", resp.StatusCode, resp.Header.Get("Allow"), tc.allow)
			}
			if code := apiError(t, resp); code != "method_not_allowed" {
				t.Errorf("code %s", code)
			}
		})
	}
	for _, path := range []string{"/health", "/services", "/metrics", "/jobs/abc"} {
		get := do(t, "GET", s.url+path, nil)
		get.Body.Close()
		head := do(t, "HEAD", s.url+path, nil)
		b, _ := io.ReadAll(head.Body)
		head.Body.Close()
		if head.StatusCode != get.StatusCode || len(b) != 0 || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
			t.Errorf("HEAD %s: %d %q %v; GET answered %d", path, head.StatusCode, b, head.Header, get.StatusCode)
		}
	}
	// A service's HEAD still reaches the service as a HEAD.
	resp := do(t, "HEAD", s.url+"/vision/items/1", nil)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Upstream") != "one" || hits.Load() != 1 {
		t.Errorf("HEAD /vision/items/1: %d %v, upstream hits %d", resp.StatusCode, resp.Header, hits.Load())
	}
	resp = do(t, "OPTIONS", s.url+"/vision/items/1", nil)
	var got seen
	err := json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || got.Method != "OPTIONS" {
		t.Errorf("OPTIONS /vision/items/1: %d %+v %v", resp.StatusCode, got, err)
	}
}
