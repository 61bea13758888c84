package edge

import (
	"net/http"
	"net/netip"
	"testing"
)

// realIP always answers an address: the peer's, or one from
// X-Forwarded-For that is not a trusted proxy.
func FuzzRealIP(f *testing.F) {
	for _, s := range []string{"6.6.6.6", "6.6.6.6, 10.0.0.1", "::1, ,x", "", "10.0.0.1,10.0.0.2", "[::1]"} {
		f.Add(s, "10.0.0.9:1234")
	}
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	extract := realIP(proxies)
	f.Fuzz(func(t *testing.T, xff, remote string) {
		r := &http.Request{Header: http.Header{"X-Forwarded-For": {xff}}, RemoteAddr: remote}
		got := extract(r)
		peer := peerAddr(r)
		if !trusted(peer, proxies) {
			if peer.IsValid() && got != peer.String() {
				t.Fatalf("untrusted peer %v: RealIP %q", peer, got)
			}
			return
		}
		a, err := netip.ParseAddr(got)
		if err != nil {
			t.Fatalf("RealIP %q is not an address", got)
		}
		if trusted(a, proxies) && a != peer {
			t.Fatalf("RealIP %v is a trusted proxy other than the peer", a)
		}
	})
}
