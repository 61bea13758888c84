package broker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/micro"

	"github.com/switchyard/switchyard/edge"
	"github.com/switchyard/switchyard/edge/ws"
	"github.com/switchyard/switchyard/internal/apierr"
	"github.com/switchyard/switchyard/internal/microdisc"
	"github.com/switchyard/switchyard/subjects"
)

// Register adds the broker's routes to s and closes the connections with
// 1001 when s shuts down.
func (b *Broker) Register(s *edge.Server) {
	s.Echo.GET("/ws/:service", func(c echo.Context) error { return b.handleWS(c, s) })
	s.Echo.POST("/publish", func(c echo.Context) error { return b.handlePublish(c, s) })
	s.Echo.GET("/services", b.handleServices)
	s.OnShutdown(b.CloseConnections)
}

func (b *Broker) handleWS(c echo.Context, s *edge.Server) error {
	service := c.Param("service")
	if err := subjects.ValidName(service); err != nil {
		return apierr.Newf(http.StatusBadRequest, apierr.CodeBadRequest, "service: %v", err)
	}
	broadcast := false
	switch mode := c.QueryParam("mode"); mode {
	case "", modeQueue:
	case modeBroadcast:
		broadcast = true
	default:
		return apierr.Newf(http.StatusBadRequest, apierr.CodeBadRequest, "mode %q: want queue (the default) or broadcast", mode)
	}
	wsOpts := b.o.WS
	switch batch := c.QueryParam("batch"); batch {
	case "", "false", "0":
	case "true", "1":
		wsOpts.JoinText = true
	default:
		return apierr.Newf(http.StatusBadRequest, apierr.CodeBadRequest, "batch %q: want true or false", batch)
	}
	if s.Draining() {
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeShuttingDown, "edge is shutting down").WithRetry(time.Second)
	}
	if !b.o.NC.IsConnected() {
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable, "not connected to NATS").WithRetry(time.Second)
	}
	if b.hub.Len() >= b.o.MaxConnections {
		return apierr.Newf(http.StatusServiceUnavailable, apierr.CodeUnavailable,
			"this broker edge holds %d connections, its limit", b.o.MaxConnections).WithRetry(5 * time.Second)
	}
	cl := &client{id: randomName(), service: service, broadcast: broadcast,
		label: b.m.serviceLabel(service), pending: map[string]pendingMsg{}}
	wc, err := ws.Upgrade(c.Response(), c.Request(), wsOpts, func(wc *ws.Conn, _ int, data []byte) {
		b.onFrame(cl, wc, data)
	})
	if err != nil {
		return nil // Upgrade wrote the error response
	}
	cl.conn = wc
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		wc.Close(ws.CloseGoingAway, "going away")
		return nil
	}
	b.conns.Add(1) // under mu, before Shutdown waits
	b.mu.Unlock()
	b.hub.Add(wc)
	joinErr := b.join(cl)
	if joinErr != nil {
		code := ws.CloseInternal
		if errors.Is(joinErr, ErrShuttingDown) {
			code = ws.CloseGoingAway
		} else {
			b.log.Warn("connection refused: cannot join its service", "service", service, "err", joinErr)
		}
		wc.Close(code, joinErr.Error())
	}
	go func() {
		defer b.conns.Done()
		<-wc.Done()
		b.leave(cl, joinErr == nil)
	}()
	return nil
}

// publishBody is POST /publish's body.
type publishBody struct {
	Service    string          `json:"service"`
	Topic      string          `json:"topic"`
	Payload    json.RawMessage `json:"payload"`
	Persistent bool            `json:"persistent"`
	From       string          `json:"from"`
}

func (b *Broker) handlePublish(c echo.Context, s *edge.Server) error {
	req := c.Request()
	if req.ContentLength > b.o.MaxFrameBytes {
		return apierr.Newf(http.StatusRequestEntityTooLarge, apierr.CodeTooLarge, "message exceeds %d bytes", b.o.MaxFrameBytes)
	}
	req.Body = http.MaxBytesReader(c.Response(), req.Body, b.o.MaxFrameBytes)
	var body publishBody
	if err := edge.DecodeJSON(c, &body); err != nil {
		return err
	}
	if err := subjects.ValidName(body.Service); err != nil {
		return apierr.Newf(http.StatusBadRequest, apierr.CodeBadRequest, "service: %v", err)
	}
	toks, err := subjects.BrokerTopic(body.Topic)
	if err != nil {
		return apierr.Newf(http.StatusBadRequest, apierr.CodeBadRequest, "topic: %v", err)
	}
	if len(body.Payload) == 0 {
		return apierr.New(http.StatusBadRequest, apierr.CodeBadRequest, "payload is required (any JSON value)")
	}
	if body.From != "" {
		if err := subjects.ValidName(body.From); err != nil {
			return apierr.Newf(http.StatusBadRequest, apierr.CodeBadRequest, "from: %v", err)
		}
	}
	if s.Draining() {
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeShuttingDown, "edge is shutting down").WithRetry(time.Second)
	}
	id, err := b.publish(req.Context(), &outgoing{Service: body.Service, Topic: toks, Payload: body.Payload,
		Persistent: body.Persistent, From: body.From, Origin: pathHTTP})
	if err != nil {
		if errors.Is(err, errInvalid) {
			return apierr.New(http.StatusBadRequest, apierr.CodeBadRequest, err.Error())
		}
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable, err.Error()).WithRetry(time.Second)
	}
	return c.JSON(http.StatusAccepted, map[string]any{
		"id": id, "service": body.Service, "topic": body.Topic, "persistent": body.Persistent})
}

// serviceView is one service in GET /services: its WebSocket presence over
// every broker edge and its NATS micro service instances.
type serviceView struct {
	Name        string     `json:"name"`
	Connections int        `json:"connections"`
	Queue       int        `json:"queue"`
	Broadcast   int        `json:"broadcast"`
	Brokers     int        `json:"brokers"`
	Since       *time.Time `json:"since,omitempty"`
	LastSeen    *time.Time `json:"last_seen,omitempty"`
	Micro       *microView `json:"micro,omitempty"`
}

type microView struct {
	Version   string         `json:"version"`
	Versions  []string       `json:"versions"`
	Instances int            `json:"instances"`
	Endpoints []endpointView `json:"endpoints"`
}

type endpointView struct {
	Name       string `json:"name"`
	Subject    string `json:"subject"`
	QueueGroup string `json:"queue_group,omitempty"`
}

func (b *Broker) handleServices(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
	defer cancel()
	type result struct {
		recs []Record
		err  error
	}
	presenceCh := make(chan result, 1)
	go func() {
		recs, err := b.pres.list(ctx)
		presenceCh <- result{recs, err}
	}()
	infos := microdisc.Infos(b.o.NC, b.o.DiscoveryTimeout)
	pr := <-presenceCh
	if pr.err != nil {
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable, "presence: "+pr.err.Error()).WithRetry(time.Second)
	}
	views := map[string]*serviceView{}
	get := func(name string) *serviceView {
		v := views[name]
		if v == nil {
			v = &serviceView{Name: name}
			views[name] = v
		}
		return v
	}
	for _, r := range pr.recs {
		v := get(r.Service)
		v.Connections += r.Connections
		v.Queue += r.Queue
		v.Broadcast += r.Broadcast
		v.Brokers++
		if since := r.Since; v.Since == nil || since.Before(*v.Since) {
			v.Since = &since
		}
		if seen := r.LastSeen; v.LastSeen == nil || seen.After(*v.LastSeen) {
			v.LastSeen = &seen
		}
	}
	mergeMicro(infos, get)
	out := make([]*serviceView, 0, len(views))
	for _, v := range views {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return c.JSON(http.StatusOK, map[string]any{"services": out})
}

// mergeMicro folds micro service instances into the views, by service name.
func mergeMicro(infos []micro.Info, get func(string) *serviceView) {
	versions := map[string]map[string]int{}
	for _, i := range infos {
		v := get(i.Name)
		if v.Micro == nil {
			v.Micro = &microView{Versions: []string{}, Endpoints: []endpointView{}}
			versions[i.Name] = map[string]int{}
		}
		v.Micro.Instances++
		versions[i.Name][i.Version]++
		for _, ep := range i.Endpoints {
			e := endpointView{Name: ep.Name, Subject: ep.Subject, QueueGroup: ep.QueueGroup}
			found := false
			for _, x := range v.Micro.Endpoints {
				if x == e {
					found = true
					break
				}
			}
			if !found {
				v.Micro.Endpoints = append(v.Micro.Endpoints, e)
			}
		}
	}
	for name, vs := range versions {
		m := get(name).Micro
		best := -1
		for ver, n := range vs {
			m.Versions = append(m.Versions, ver)
			if n > best || n == best && ver > m.Version {
				best, m.Version = n, ver
			}
		}
		sort.Strings(m.Versions)
		sort.Slice(m.Endpoints, func(i, j int) bool { return m.Endpoints[i].Name < m.Endpoints[j].Name })
	}
}
