package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/subjects"
)

// ClusterMetrics counts start-up retries and replica mismatches, and
// shows the quorum of every asset. Labels are bounded: stage is
// connect|assets, asset one of the declared streams.
type ClusterMetrics struct {
	retries  *prometheus.CounterVec
	mismatch prometheus.Counter
	quorum   *prometheus.GaugeVec
	current  *prometheus.GaugeVec
}

// NewClusterMetrics registers the metrics with reg (nil: not registered).
func NewClusterMetrics(reg prometheus.Registerer) *ClusterMetrics {
	m := &ClusterMetrics{
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "switchyard", Subsystem: "nats",
			Name: "start_retries_total", Help: "Failed start-up attempts retried while NATS or the cluster forms, by stage (connect, assets)."},
			[]string{"stage"}),
		mismatch: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "switchyard", Subsystem: "nats",
			Name: "replica_mismatch_total", Help: "Starts refused because an asset's replica count differs from NATS_REPLICAS."}),
		quorum: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "switchyard", Subsystem: "nats",
			Name: "asset_quorum", Help: "1 while the JetStream asset (stream name) has a leader and a quorum of current replicas, else 0."},
			[]string{"asset"}),
		current: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "switchyard", Subsystem: "nats",
			Name: "asset_current_replicas", Help: "Replicas of the JetStream asset (stream name) that are current, the leader included."},
			[]string{"asset"}),
	}
	if reg != nil {
		reg.MustRegister(m.retries, m.mismatch, m.quorum, m.current)
	}
	return m
}

// StartRetry counts one retried start-up attempt; it is a Waiter.
func (m *ClusterMetrics) StartRetry(stage string) { m.retries.WithLabelValues(stage).Inc() }

// Mismatch counts one start refused for a replica mismatch.
func (m *ClusterMetrics) Mismatch() { m.mismatch.Inc() }

// ConnsCheck is ready while every connection conns returns is connected;
// the error names those that are not.
func ConnsCheck(conns func() []*nats.Conn) func(context.Context) error {
	return func(context.Context) error {
		var down []string
		for _, nc := range conns() {
			if s := nc.Status(); s != nats.CONNECTED {
				down = append(down, nc.Opts.Name+" "+s.String())
			}
		}
		if len(down) > 0 {
			return errors.New("nats connection " + strings.Join(down, ", "))
		}
		return nil
	}
}

// AssetState is the cluster state of one asset on /health.
type AssetState struct {
	Replicas int    `json:"replicas"`
	Leader   string `json:"leader,omitempty"`
	// Current lists the replicas (the leader first) that are up to date.
	Current []string `json:"current"`
	Quorum  bool     `json:"quorum"`
	Error   string   `json:"error,omitempty"`
}

// QuorumWatch polls, every Interval, the leader and replicas of every
// declared asset, so /health reports them and turns unready within about
// Interval+Timeout of an asset losing its quorum (and ready as soon as it
// has it again). It is a component: Run until Shutdown.
type QuorumWatch struct {
	nc      *nats.Conn
	streams []string
	m       *ClusterMetrics
	log     *slog.Logger
	// Interval between polls and Timeout of one asset's query.
	Interval, Timeout time.Duration

	mu     sync.Mutex
	state  map[string]AssetState
	polled bool
	bad    string // first asset without quorum, with why

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// NewQuorumWatch watches the streams behind every asset of a.
func NewQuorumWatch(nc *nats.Conn, a Assets, m *ClusterMetrics, log *slog.Logger) *QuorumWatch {
	var streams []string
	for _, n := range a.storeNames() {
		streams = append(streams, n[0])
	}
	if m == nil {
		m = NewClusterMetrics(nil)
	}
	// A single replica has no quorum to lose: its server going away is
	// the connection check's to see, so it is polled less often.
	interval := 500 * time.Millisecond
	if a.Replicas <= 1 {
		interval = 2 * time.Second
	}
	return &QuorumWatch{nc: nc, streams: streams, m: m, log: log, Interval: interval, Timeout: time.Second,
		state: map[string]AssetState{}, stop: make(chan struct{}), done: make(chan struct{})}
}

// Run polls until Shutdown or ctx ends.
func (q *QuorumWatch) Run(ctx context.Context) error {
	defer close(q.done)
	for {
		q.Poll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-q.stop:
			return nil
		case <-time.After(q.Interval):
		}
	}
}

// Shutdown stops Run and waits for it. Safe to call twice.
func (q *QuorumWatch) Shutdown(ctx context.Context) error {
	q.once.Do(func() { close(q.stop) })
	select {
	case <-q.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// Poll queries every asset once, concurrently, and updates the state.
func (q *QuorumWatch) Poll(ctx context.Context) {
	out := make([]AssetState, len(q.streams))
	var wg sync.WaitGroup
	for i, name := range q.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = q.query(ctx, name)
		}()
	}
	wg.Wait()
	q.mu.Lock()
	defer q.mu.Unlock()
	bad := ""
	for i, name := range q.streams {
		st := out[i]
		prev, seen := q.state[name]
		q.state[name] = st
		q.m.current.WithLabelValues(name).Set(float64(len(st.Current)))
		if st.Quorum {
			q.m.quorum.WithLabelValues(name).Set(1)
		} else {
			q.m.quorum.WithLabelValues(name).Set(0)
			if bad == "" {
				bad = name + ": " + st.Error
			}
		}
		if q.log != nil && seen && prev.Quorum != st.Quorum {
			if st.Quorum {
				q.log.Info("jetstream asset has its quorum again", "asset", name, "leader", st.Leader, "current", st.Current)
			} else {
				q.log.Warn("jetstream asset lost its quorum", "asset", name, "err", st.Error)
			}
		}
		if q.log != nil && seen && st.Quorum && prev.Leader != "" && st.Leader != prev.Leader {
			q.log.Info("jetstream asset has a new leader", "asset", name, "leader", st.Leader, "was", prev.Leader)
		}
	}
	q.bad, q.polled = bad, true
}

func (q *QuorumWatch) query(ctx context.Context, stream string) AssetState {
	ctx, cancel := context.WithTimeout(ctx, q.Timeout)
	defer cancel()
	msg, err := q.nc.RequestWithContext(ctx, subjects.JSStreamInfo(stream), nil)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = errors.New("no answer (no leader or no quorum)")
		}
		return AssetState{Error: err.Error()}
	}
	var resp struct {
		Config struct {
			Replicas int `json:"num_replicas"`
		} `json:"config"`
		Cluster *struct {
			Leader   string `json:"leader"`
			Replicas []struct {
				Name    string `json:"name"`
				Current bool   `json:"current"`
				Offline bool   `json:"offline"`
			} `json:"replicas"`
		} `json:"cluster"`
		Error *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return AssetState{Error: "bad stream info: " + err.Error()}
	}
	if resp.Error != nil {
		return AssetState{Error: resp.Error.Description}
	}
	st := AssetState{Replicas: max(resp.Config.Replicas, 1), Current: []string{}}
	if resp.Cluster == nil || resp.Cluster.Leader == "" {
		if st.Replicas == 1 && resp.Cluster == nil {
			st.Quorum = true // a single server: it answered
			return st
		}
		st.Error = "no leader"
		return st
	}
	st.Leader = resp.Cluster.Leader
	st.Current = append(st.Current, st.Leader)
	var rest []string
	for _, r := range resp.Cluster.Replicas {
		if r.Current && !r.Offline {
			rest = append(rest, r.Name)
		}
	}
	sort.Strings(rest)
	st.Current = append(st.Current, rest...)
	st.Quorum = len(st.Current) >= st.Replicas/2+1
	if !st.Quorum {
		st.Error = fmt.Sprintf("%d of %d replicas current, %d needed", len(st.Current), st.Replicas, st.Replicas/2+1)
	}
	return st
}

// Check is ready while every asset has a leader and a quorum of current
// replicas (as of the last poll; before the first, it polls once).
func (q *QuorumWatch) Check(ctx context.Context) error {
	q.mu.Lock()
	polled := q.polled
	q.mu.Unlock()
	if !polled {
		q.Poll(ctx)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.bad != "" {
		return errors.New(q.bad)
	}
	return nil
}

// Info returns the state of every asset by stream name, for /health.
func (q *QuorumWatch) Info() any {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make(map[string]AssetState, len(q.state))
	for k, v := range q.state {
		out[k] = v
	}
	return out
}
