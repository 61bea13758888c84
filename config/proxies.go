package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParsePrefixes parses IP addresses and CIDR prefixes (server.trusted_proxies):
// a bare address is a prefix of its full length. Empty items are skipped.
func ParsePrefixes(items []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range items {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not an IP or CIDR", s)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP or CIDR", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// TrustedPrefixes is server.trusted_proxies parsed (validated by Load).
func (s *Server) TrustedPrefixes() []netip.Prefix {
	p, _ := ParsePrefixes(s.TrustedProxies)
	return p
}
