package config

import "sort"

// DefaultServices are routed even when config.yaml declares nothing; their
// upstreams come from the rust.*_service_url keys.
var DefaultServices = []string{"vision", "ai", "analytics"}

// ResolvedService is a service with every default filled in.
type ResolvedService struct {
	Name string
	Service
}

// ResolveServices returns every routed service, sorted by name: vision, ai
// and analytics with the upstreams from rust.*_service_url unless
// config.yaml declares them, then every service config.yaml declares.
func (c *Config) ResolveServices() []ResolvedService {
	all := map[string]Service{}
	for name, u := range map[string]string{
		"vision": c.Rust.VisionServiceURL, "ai": c.Rust.AIServiceURL, "analytics": c.Rust.AnalyticsServiceURL,
	} {
		var s Service
		for _, one := range SplitList(u) {
			s.Upstreams = append(s.Upstreams, Upstream{URL: one, Weight: 1})
		}
		all[name] = s
	}
	for name, s := range c.Services {
		all[name] = s
	}
	out := make([]ResolvedService, 0, len(all))
	for name, s := range all {
		out = append(out, ResolvedService{Name: name, Service: s.withDefaults()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s Service) withDefaults() Service {
	ups := make([]Upstream, len(s.Upstreams))
	for i, u := range s.Upstreams {
		if u.Weight == 0 {
			u.Weight = 1
		}
		ups[i] = u
	}
	s.Upstreams = ups
	if s.Policy == "" {
		s.Policy = PolicyWeighted
	}
	if s.HealthPath == "" {
		s.HealthPath = "/health"
	}
	if s.HealthyThreshold == 0 {
		s.HealthyThreshold = 1
	}
	if s.UnhealthyThreshold == 0 {
		s.UnhealthyThreshold = 2
	}
	if s.EjectAfter == 0 {
		s.EjectAfter = 5
	}
	if s.EjectBase == 0 {
		s.EjectBase = Duration(10e9)
	}
	if s.MaxEjectedPercent == 0 {
		s.MaxEjectedPercent = 50
	}
	if s.RetryBudgetPercent == 0 {
		s.RetryBudgetPercent = 20
	}
	return s
}
