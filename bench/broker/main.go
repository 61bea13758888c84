// Command broker measures publish-to-WebSocket delivery: 128-byte messages
// published on NATS, round robin over 100 services with one WebSocket
// connection each, for
//
//	(a) Switchyard's broker edge (NATS publish on broker.svc.<service>.t, JSON frame),
//	(a') the same with ?batch=true (messages queued together share a frame, one a line),
//	(b) a minimal hub: one NATS subscription, gorilla/websocket, no envelope,
//	(c) raw NATS: one subscriber per service, no WebSocket,
//	(d) Centrifugo, when -centrifugo names its binary: NATS broker in raw
//	    mode, so a plain NATS publish reaches its WebSocket subscribers.
//
// One embedded nats-server runs in this process with the load generator
// (the publisher and the 100 WebSocket clients or NATS subscribers); each
// server under test runs as a process of its own, as deployed: the
// switchyard binary (`switchyard broker`, built for the run), this program
// again for the hub (-serve-hub), the centrifugo binary. So on a shared
// machine each gets the same share of the CPU. The publisher keeps at most
// -window messages in flight; each receiver reads the publish time from
// the payload. It prints messages/s, p50 and p99 publish-to-frame latency,
// and the ratios. Ports: 127.0.0.1:19300-19303. Run it from the repository
// root.
//
//	go run ./bench/broker [-duration 5s] [-centrifugo /path/to/centrifugo]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/jetstream"
)

const (
	natsPort       = 19300
	brokerPort     = 19301
	hubPort        = 19302
	centrifugoPort = 19303
)

var (
	duration   = flag.Duration("duration", 5*time.Second, "measured time per target")
	warmup     = flag.Duration("warmup", time.Second, "unmeasured time before it")
	services   = flag.Int("services", 100, "services, one connection each")
	size       = flag.Int("size", 128, "payload bytes")
	window     = flag.Int("window", 2000, "messages in flight at most")
	centrifugo = flag.String("centrifugo", "", "path of a centrifugo v6 binary; empty skips (d)")
	only       = flag.String("only", "", "run only these targets, e.g. ab")
	rounds     = flag.Int("rounds", 3, "runs of every target, interleaved; the median run of each is reported")
	cpuprofile = flag.String("cpuprofile", "", "write a CPU profile of the whole run")
	serveHub   = flag.String("serve-hub", "", "internal: serve the minimal hub, connected to this NATS URL, until interrupted")
)

func main() {
	flag.Parse()
	if *serveHub != "" {
		if err := runHub(*serveHub); err != nil {
			fmt.Fprintln(os.Stderr, "hub:", err)
			os.Exit(1)
		}
		return
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type result struct {
	name     string
	msgs     int64
	seconds  float64
	p50, p99 time.Duration
	skipped  string
}

func (r result) rate() float64 { return float64(r.msgs) / r.seconds }

func run() error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	dir, err := os.MkdirTemp("", "switchyard-bench-broker")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	emb, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{Host: "127.0.0.1", Port: natsPort,
		StoreDir: dir, MaxPayload: 1 << 20, ServerName: "bench"}, log)
	if err != nil {
		return err
	}
	defer emb.Shutdown()
	url := emb.ClientURL()
	switchyardBin = filepath.Join(dir, "switchyard")
	if b, err := exec.Command("go", "build", "-o", switchyardBin, "./cmd/switchyard").CombinedOutput(); err != nil {
		return fmt.Errorf("build switchyard (run from the repository root): %v\n%s", err, b)
	}

	targets := []struct {
		name string
		fn   func(string, *slog.Logger) (result, error)
	}{
		{"(c) raw NATS", benchRaw},
		{"(b) minimal hub", benchHub},
		{"(a) Switchyard broker", func(u string, l *slog.Logger) (result, error) { return benchBroker(u, l, false) }},
		{"(a') Switchyard broker, ?batch=true", func(u string, l *slog.Logger) (result, error) { return benchBroker(u, l, true) }},
		{"(d) Centrifugo", benchCentrifugo},
	}
	runs := map[string][]result{}
	for round := 1; round <= *rounds; round++ {
		for _, t := range targets {
			if *only != "" && !strings.Contains(*only, t.name[1:2]) {
				continue
			}
			fmt.Fprintf(os.Stderr, "round %d: %s... ", round, t.name)
			r, err := t.fn(url, log)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			r.name = t.name
			if r.skipped == "" {
				fmt.Fprintf(os.Stderr, "%s msgs/s, p50 %s, p99 %s\n", group(r.rate()), ms(r.p50), ms(r.p99))
			} else {
				fmt.Fprintln(os.Stderr, r.skipped)
			}
			runs[t.name] = append(runs[t.name], r)
		}
	}
	var results []result
	for _, t := range targets {
		rs := runs[t.name]
		if len(rs) == 0 {
			continue
		}
		slices.SortFunc(rs, func(x, y result) int {
			switch {
			case x.rate() < y.rate():
				return -1
			case x.rate() > y.rate():
				return 1
			}
			return 0
		})
		results = append(results, rs[len(rs)/2])
	}
	fmt.Printf("\n%d services x 1 connection, %d B messages round robin, window %d, %s measured, median of %d runs, GOMAXPROCS %d\n\n",
		*services, *size, *window, *duration, *rounds, runtime.GOMAXPROCS(0))
	fmt.Println("| target | msgs/s | p50 | p99 |")
	fmt.Println("|---|---|---|---|")
	by := map[string]result{}
	for _, r := range results {
		by[r.name[:3]] = r
		if r.skipped != "" {
			fmt.Printf("| %s | skipped: %s | | |\n", r.name, r.skipped)
			continue
		}
		fmt.Printf("| %s | %s | %s | %s |\n", r.name, group(r.rate()), ms(r.p50), ms(r.p99))
	}
	fmt.Println()
	for _, ak := range []string{"(a)", "(a'"} {
		a, ok := by[ak]
		if !ok {
			continue
		}
		for _, k := range []string{"(b)", "(c)", "(d)"} {
			o := by[k]
			if o.skipped != "" || o.msgs == 0 {
				continue
			}
			fmt.Printf("%s/%s: throughput %.2fx, p50 %.2fx, p99 %.2fx\n", a.name[:strings.IndexByte(a.name, ')')+1], k, a.rate()/o.rate(),
				float64(a.p50)/float64(o.p50), float64(a.p99)/float64(o.p99))
		}
	}
	return nil
}

func group(f float64) string {
	s := strconv.FormatInt(int64(f), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

// load is one measurement: a publisher with a window, and receivers that
// report each message's latency.
type load struct {
	sem      chan struct{}
	measure  atomic.Bool
	received atomic.Int64
	mu       sync.Mutex
	recs     []*recorder
}

// recorder keeps the latencies one receiver measured.
type recorder struct {
	l    *load
	mu   sync.Mutex
	lats []int64
}

func newLoad() *load { return &load{sem: make(chan struct{}, *window)} }

// recorder returns the latency sink of one receiver.
func (l *load) recorder() func(payload []byte) {
	r := &recorder{l: l, lats: make([]int64, 0, 1<<16)}
	l.mu.Lock()
	l.recs = append(l.recs, r)
	l.mu.Unlock()
	return r.record
}

func (r *recorder) record(p []byte) {
	ts := publishTime(p)
	if ts == 0 {
		return // a readiness probe
	}
	<-r.l.sem
	if !r.l.measure.Load() {
		return
	}
	r.l.received.Add(1)
	r.mu.Lock()
	r.lats = append(r.lats, time.Now().UnixNano()-ts)
	r.mu.Unlock()
}

var tKey = []byte(`"t":`)

// publishTime reads the "t" field (Unix nanoseconds) of a payload or frame.
func publishTime(p []byte) int64 {
	i := bytes.Index(p, tKey)
	if i < 0 {
		return 0
	}
	var n int64
	for _, c := range p[i+len(tKey):] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// payload returns a JSON payload of *size bytes with room for the time.
func payload() []byte {
	head := `{"t":0000000000000000000,"p":"`
	pad := *size - len(head) - 2
	if pad < 0 {
		pad = 0
	}
	return []byte(head + strings.Repeat("x", pad) + `"}`)
}

// stamp writes now (19 digits until 2286) into the payload's "t".
func stamp(p []byte, now int64) { strconv.AppendInt(p[5:5], now, 10) }

// drive publishes round robin on subjects until warmup+duration passed,
// then returns the measured result.
func (l *load) drive(nc *nats.Conn, subjects []string) (result, error) {
	p := payload()
	stop := time.Now().Add(*warmup + *duration)
	start := time.Now().Add(*warmup)
	measuring := false
	for i := 0; ; i++ {
		now := time.Now()
		if !measuring && now.After(start) {
			measuring = true
			l.measure.Store(true)
			start = now
		}
		if now.After(stop) {
			break
		}
		select {
		case l.sem <- struct{}{}:
		case <-time.After(5 * time.Second):
			return result{}, fmt.Errorf("no message received for 5s (%d received)", l.received.Load())
		}
		stamp(p, time.Now().UnixNano())
		if err := nc.Publish(subjects[i%len(subjects)], p); err != nil {
			return result{}, err
		}
	}
	l.measure.Store(false)
	elapsed := time.Since(start)
	var all []int64
	l.mu.Lock()
	for _, r := range l.recs {
		r.mu.Lock()
		all = append(all, r.lats...)
		r.mu.Unlock()
	}
	l.mu.Unlock()
	slices.Sort(all)
	r := result{msgs: l.received.Load(), seconds: elapsed.Seconds()}
	if len(all) > 0 {
		r.p50 = time.Duration(all[len(all)/2])
		r.p99 = time.Duration(all[len(all)*99/100])
	}
	return r, nil
}

func subjectList(format string) []string {
	s := make([]string, *services)
	for i := range s {
		s[i] = fmt.Sprintf(format, i)
	}
	return s
}

// ready publishes one probe per subject until every receiver got one.
func ready(nc *nats.Conn, subjects []string, got func() int64) error {
	deadline := time.Now().Add(20 * time.Second)
	for got() < int64(len(subjects)) {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d receivers ready", got(), len(subjects))
		}
		for _, s := range subjects {
			if err := nc.Publish(s, []byte(`{"probe":1}`)); err != nil {
				return err
			}
		}
		_ = nc.Flush()
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

// wsClients dials one WebSocket per URL and feeds every frame to rec.
// probe counts receivers that got at least one frame.
// A frame may carry several newline-separated messages (Centrifugo batches
// its pushes); each is recorded.
func wsClients(urls []string, l *load, onOpen func(*websocket.Conn) error) (probe func() int64, closeAll func(), err error) {
	var seen atomic.Int64
	var wg sync.WaitGroup
	var conns []*websocket.Conn
	for _, u := range urls {
		c, _, err := websocket.DefaultDialer.Dial(u, nil)
		if err != nil {
			for _, c := range conns {
				_ = c.Close()
			}
			return nil, nil, err
		}
		if onOpen != nil {
			if err := onOpen(c); err != nil {
				return nil, nil, err
			}
		}
		conns = append(conns, c)
		rec := l.recorder()
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			for {
				_, data, err := c.ReadMessage()
				if err != nil {
					return
				}
				if first {
					first = false
					seen.Add(1)
				}
				for len(data) > 0 {
					line := data
					if i := bytes.IndexByte(data, '\n'); i >= 0 {
						line, data = data[:i], data[i+1:]
					} else {
						data = nil
					}
					rec(line)
				}
			}
		}()
	}
	return seen.Load, func() {
		for _, c := range conns {
			_ = c.Close()
		}
		wg.Wait()
	}, nil
}

func benchRaw(url string, _ *slog.Logger) (result, error) {
	l := newLoad()
	sub, err := nats.Connect(url, nats.Name("bench-sub"))
	if err != nil {
		return result{}, err
	}
	defer sub.Close()
	subjects := subjectList("raw.s%03d")
	var seen atomic.Int64
	for _, s := range subjects {
		rec := l.recorder()
		first := true
		sb, err := sub.Subscribe(s, func(m *nats.Msg) {
			if first {
				first = false
				seen.Add(1)
			}
			rec(m.Data)
		})
		if err != nil {
			return result{}, err
		}
		_ = sb.SetPendingLimits(-1, -1)
	}
	pub, err := nats.Connect(url, nats.Name("bench-pub"))
	if err != nil {
		return result{}, err
	}
	defer pub.Close()
	if err := ready(pub, subjects, seen.Load); err != nil {
		return result{}, err
	}
	return l.drive(pub, subjects)
}

// hub is the minimal NATS-to-WebSocket hub: one subscription, a map of
// connections, one writer goroutine per connection, no envelope.
type hub struct {
	mu    sync.RWMutex
	conns map[string]chan []byte
}

// runHub serves the hub on hubPort until SIGINT or SIGTERM.
func runHub(url string) error {
	h := &hub{conns: map[string]chan []byte{}}
	nc, err := nats.Connect(url, nats.Name("bench-hub"))
	if err != nil {
		return err
	}
	defer nc.Close()
	sb, err := nc.Subscribe("hub.>", func(m *nats.Msg) {
		svc := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
		h.mu.RLock()
		ch := h.conns[svc]
		h.mu.RUnlock()
		if ch != nil {
			select {
			case ch <- m.Data:
			default: // full: dropped
			}
		}
	})
	if err != nil {
		return err
	}
	_ = sb.SetPendingLimits(-1, -1)
	up := websocket.Upgrader{}
	var wg sync.WaitGroup
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		svc := strings.TrimPrefix(r.URL.Path, "/ws/")
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		ch := make(chan []byte, 4096)
		h.mu.Lock()
		h.conns[svc] = ch
		h.mu.Unlock()
		wg.Add(2)
		go func() { // reader: notices the close
			defer wg.Done()
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					h.mu.Lock()
					delete(h.conns, svc)
					h.mu.Unlock()
					close(ch)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			defer c.Close()
			for m := range ch {
				if c.WriteMessage(websocket.TextMessage, m) != nil {
					return
				}
			}
		}()
	})}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", hubPort))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	_ = srv.Serve(ln)
	wg.Wait()
	return nil
}

// server runs one server under test as its own process until stop.
func server(name string, cmd *exec.Cmd) (stop func(), out *bytes.Buffer, err error) {
	out = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start %s: %w", name, err)
	}
	return func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}, out, nil
}

// waitDial waits until a WebSocket upgrade on url succeeds.
func waitDial(url string, out *bytes.Buffer) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err == nil {
			_ = c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server did not start: %v\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func benchHub(url string, _ *slog.Logger) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	stop, out, err := server("hub", exec.Command(self, "-serve-hub", url))
	if err != nil {
		return result{}, err
	}
	defer stop()
	if err := waitDial(fmt.Sprintf("ws://127.0.0.1:%d/ws/probe", hubPort), out); err != nil {
		return result{}, err
	}
	l := newLoad()
	urls := make([]string, *services)
	for i := range urls {
		urls[i] = fmt.Sprintf("ws://127.0.0.1:%d/ws/s%03d", hubPort, i)
	}
	probe, closeAll, err := wsClients(urls, l, nil)
	if err != nil {
		return result{}, err
	}
	defer closeAll()
	pub, err := nats.Connect(url, nats.Name("bench-pub"))
	if err != nil {
		return result{}, err
	}
	defer pub.Close()
	subjects := subjectList("hub.s%03d")
	if err := ready(pub, subjects, probe); err != nil {
		return result{}, err
	}
	return l.drive(pub, subjects)
}

// switchyardBin is the switchyard binary built for the run.
var switchyardBin string

func benchBroker(url string, _ *slog.Logger, batch bool) (result, error) {
	cmd := exec.Command(switchyardBin, "broker")
	cmd.Env = append(os.Environ(), "NATS_URL="+url, "HOST=127.0.0.1", "BROKER_PORT="+strconv.Itoa(brokerPort),
		"DATA_DIR="+os.TempDir(), "LOG_LEVEL=error", "CONFIG_FILE=")
	stop, out, err := server("switchyard broker", cmd)
	if err != nil {
		return result{}, err
	}
	defer stop()
	if err := waitDial(fmt.Sprintf("ws://127.0.0.1:%d/ws/probe", brokerPort), out); err != nil {
		return result{}, err
	}
	l := newLoad()
	urls := make([]string, *services)
	for i := range urls {
		urls[i] = fmt.Sprintf("ws://127.0.0.1:%d/ws/s%03d", brokerPort, i)
		if batch {
			urls[i] += "?batch=true"
		}
	}
	probe, closeAll, err := wsClients(urls, l, nil)
	if err != nil {
		return result{}, err
	}
	defer closeAll()
	pub, err := nats.Connect(url, nats.Name("bench-pub"))
	if err != nil {
		return result{}, err
	}
	defer pub.Close()
	subjects := subjectList("broker.svc.s%03d.t")
	if err := ready(pub, subjects, probe); err != nil {
		return result{}, err
	}
	return l.drive(pub, subjects)
}

// centrifugoConfig runs Centrifugo v6 with its NATS broker in raw mode:
// channel "s000" is NATS subject "cf.s000", so a plain NATS publish reaches
// the channel's WebSocket subscribers, as with (a).
func centrifugoConfig(url string) map[string]any {
	return map[string]any{
		"log":         map[string]any{"level": "error"},
		"http_server": map[string]any{"address": "127.0.0.1", "port": centrifugoPort},
		"client":      map[string]any{"insecure": true, "allowed_origins": []string{"*"}},
		"channel": map[string]any{"without_namespace": map[string]any{
			"allow_subscribe_for_client": true}},
		"broker": map[string]any{"enabled": true, "type": "nats", "nats": map[string]any{
			"url": url, "raw_mode": map[string]any{"enabled": true, "prefix": "cf."}}},
	}
}

func benchCentrifugo(url string, _ *slog.Logger) (result, error) {
	if *centrifugo == "" {
		return result{skipped: "no -centrifugo binary"}, nil
	}
	dir, err := os.MkdirTemp("", "bench-centrifugo")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	cfgPath := filepath.Join(dir, "config.json")
	raw, _ := json.Marshal(centrifugoConfig(url))
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		return result{}, err
	}
	cmd := exec.Command(*centrifugo, "--config", cfgPath)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	wsURL := fmt.Sprintf("ws://127.0.0.1:%d/connection/websocket", centrifugoPort)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			return result{}, fmt.Errorf("centrifugo did not start: %v\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	l := newLoad()
	urls := make([]string, *services)
	for i := range urls {
		urls[i] = wsURL
	}
	i := 0
	probe, closeAll, err := wsClients(urls, l, func(c *websocket.Conn) error {
		ch := fmt.Sprintf("s%03d", i)
		i++
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"connect":{}}`+"\n"+`{"id":2,"subscribe":{"channel":"`+ch+`"}}`)); err != nil {
			return err
		}
		for replies := 0; replies < 2; {
			_, data, err := c.ReadMessage()
			if err != nil {
				return err
			}
			for _, line := range bytes.Split(data, []byte("\n")) {
				if bytes.Contains(line, []byte(`"error"`)) {
					return fmt.Errorf("centrifugo: %s", line)
				}
				if bytes.HasPrefix(line, []byte(`{"id":`)) {
					replies++
				}
			}
		}
		return nil
	})
	if err != nil {
		return result{}, err
	}
	defer closeAll()
	pub, err := nats.Connect(url, nats.Name("bench-pub"))
	if err != nil {
		return result{}, err
	}
	defer pub.Close()
	subjects := subjectList("cf.s%03d")
	if err := ready(pub, subjects, probe); err != nil {
		return result{}, fmt.Errorf("%w\n%s", err, out.String())
	}
	return l.drive(pub, subjects)
}
