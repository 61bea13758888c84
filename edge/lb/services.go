package lb

import (
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/micro"

	"github.com/switchyard/switchyard/internal/proxystatus"
	"github.com/switchyard/switchyard/subjects"
)

// serviceView is one service in GET /services.
type serviceView struct {
	Name         string         `json:"name"`
	Source       string         `json:"source"` // "config" or "discovered"
	Policy       string         `json:"policy,omitempty"`
	Upstreams    []upstreamView `json:"upstreams"`
	ProxyWorkers int            `json:"proxy_workers"`
	NATSWorkers  []workerView   `json:"nats_workers"`
}

// upstreamView merges what every proxy worker reports of one upstream.
type upstreamView struct {
	proxystatus.Upstream
	// HealthyIn counts the proxy workers that consider the upstream healthy.
	HealthyIn int `json:"healthy_in"`
}

type workerView struct {
	Name      string          `json:"name"`
	ID        string          `json:"id"`
	Version   string          `json:"version"`
	Endpoints []endpointStats `json:"endpoints"`
}

type endpointStats struct {
	Name              string  `json:"name"`
	Subject           string  `json:"subject"`
	QueueGroup        string  `json:"queue_group"`
	NumRequests       int     `json:"num_requests"`
	NumErrors         int     `json:"num_errors"`
	LastError         string  `json:"last_error,omitempty"`
	AverageProcessing float64 `json:"average_processing_ms"`
}

func (h *handler) services(c echo.Context) error {
	stats := h.disc.Stats(500 * time.Millisecond)
	views := map[string]*serviceView{}
	for _, name := range h.names {
		rs := h.configured[name]
		v := &serviceView{Name: name, Source: "config", Policy: rs.Policy, Upstreams: []upstreamView{}, NATSWorkers: []workerView{}}
		for _, u := range rs.Upstreams {
			v.Upstreams = append(v.Upstreams, upstreamView{Upstream: proxystatus.Upstream{URL: u.URL, Weight: u.Weight}})
		}
		views[name] = v
	}
	get := func(name string) *serviceView {
		v, ok := views[name]
		if !ok {
			v = &serviceView{Name: name, Source: "discovered", Upstreams: []upstreamView{}, NATSWorkers: []workerView{}}
			views[name] = v
		}
		return v
	}
	others := []workerView{}
	for _, s := range stats {
		if s.Name == subjects.ProxyServiceName {
			h.mergeProxy(s, get)
			continue
		}
		per := map[string][]endpointStats{}
		for _, ep := range s.Endpoints {
			svc := serviceOf(ep.Subject, ep.QueueGroup)
			if svc == "" {
				continue
			}
			per[svc] = append(per[svc], endpointStats{
				Name: ep.Name, Subject: ep.Subject, QueueGroup: ep.QueueGroup,
				NumRequests: ep.NumRequests, NumErrors: ep.NumErrors, LastError: ep.LastError,
				AverageProcessing: float64(ep.AverageProcessingTime) / float64(time.Millisecond),
			})
		}
		for svc, eps := range per {
			v := get(svc)
			v.NATSWorkers = append(v.NATSWorkers, workerView{Name: s.Name, ID: s.ID, Version: s.Version, Endpoints: eps})
		}
		if len(per) == 0 {
			// A micro service that routes no service (e.g. switchyard-cache):
			// listed with its statistics under "micro".
			w := workerView{Name: s.Name, ID: s.ID, Version: s.Version, Endpoints: []endpointStats{}}
			for _, ep := range s.Endpoints {
				w.Endpoints = append(w.Endpoints, endpointStats{
					Name: ep.Name, Subject: ep.Subject, QueueGroup: ep.QueueGroup,
					NumRequests: ep.NumRequests, NumErrors: ep.NumErrors, LastError: ep.LastError,
					AverageProcessing: float64(ep.AverageProcessingTime) / float64(time.Millisecond),
				})
			}
			others = append(others, w)
		}
	}
	sort.Slice(others, func(i, j int) bool {
		if others[i].Name != others[j].Name {
			return others[i].Name < others[j].Name
		}
		return others[i].ID < others[j].ID
	})
	out := make([]*serviceView, 0, len(views))
	for _, v := range views {
		sort.Slice(v.NATSWorkers, func(i, j int) bool { return v.NATSWorkers[i].ID < v.NATSWorkers[j].ID })
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return c.JSON(http.StatusOK, map[string]any{"services": out, "micro": others})
}

// mergeProxy folds one proxy worker's upstream states into the views.
func (h *handler) mergeProxy(s micro.Stats, get func(string) *serviceView) {
	for _, ep := range s.Endpoints {
		if ep.Subject != subjects.ProxyStatus || len(ep.Data) == 0 {
			continue
		}
		var status proxystatus.Report
		if json.Unmarshal(ep.Data, &status) != nil {
			continue
		}
		for svc, ups := range status {
			v := get(svc)
			v.ProxyWorkers++
			for _, u := range ups {
				i := indexOf(v.Upstreams, u.URL)
				if i < 0 {
					v.Upstreams = append(v.Upstreams, upstreamView{Upstream: proxystatus.Upstream{URL: u.URL, Weight: u.Weight}})
					i = len(v.Upstreams) - 1
				}
				m := &v.Upstreams[i]
				n := float64(v.ProxyWorkers)
				m.LatencyEWMAMs = (m.LatencyEWMAMs*(n-1) + u.LatencyEWMAMs) / n
				m.InFlight += u.InFlight
				m.Requests += u.Requests
				m.Errors += u.Errors
				if u.Healthy {
					m.HealthyIn++
				}
				m.Healthy = m.HealthyIn == v.ProxyWorkers
				if u.EjectedUntil != nil && (m.EjectedUntil == nil || u.EjectedUntil.After(*m.EjectedUntil)) {
					m.EjectedUntil = u.EjectedUntil
				}
			}
		}
	}
}

func indexOf(ups []upstreamView, url string) int {
	for i, u := range ups {
		if u.URL == url {
			return i
		}
	}
	return -1
}
