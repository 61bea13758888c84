package edge

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/labstack/echo/v4"
)

// forwardingHeaders are the request headers through which a proxy tells
// who the client was. A client can write them too, so they are believed
// only from a trusted proxy.
var forwardingHeaders = []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
	"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Ssl", "X-Real-Ip", "Forwarded"}

// peerAddr is the address of the TCP peer of r (invalid when unknown).
func peerAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		a, _ := netip.ParseAddr(host)
		return a.Unmap()
	}
	return ap.Addr().Unmap()
}

func trusted(a netip.Addr, proxies []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// stripForwarded removes the forwarding headers of r unless its peer is a
// trusted proxy, and reports whether it removed any. The edge then adds
// its own (what it saw: the peer, the Host header, http or https) where it
// forwards the request.
func stripForwarded(r *http.Request, proxies []netip.Prefix) bool {
	if len(proxies) > 0 && trusted(peerAddr(r), proxies) {
		return false
	}
	removed := false
	for _, h := range forwardingHeaders {
		if _, ok := r.Header[h]; ok {
			delete(r.Header, h)
			removed = true
		}
	}
	return removed
}

// realIP is the client address of a request, for logs: the peer, or, when
// the peer is a trusted proxy, the last address in X-Forwarded-For that is
// not a trusted proxy (the rightmost one an untrusted party could write).
func realIP(proxies []netip.Prefix) echo.IPExtractor {
	return func(r *http.Request) string {
		peer := peerAddr(r)
		if !trusted(peer, proxies) {
			if peer.IsValid() {
				return peer.String()
			}
			return r.RemoteAddr
		}
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			if a = a.Unmap(); !trusted(a, proxies) {
				return a.String()
			}
		}
		return peer.String()
	}
}
