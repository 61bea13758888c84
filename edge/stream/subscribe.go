package stream

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/edge/ws"
	"github.com/switchyard/switchyard/internal/apierr"
	"github.com/switchyard/switchyard/internal/streams"
	"github.com/switchyard/switchyard/subjects"
)

// Channels a subscriber may read.
const (
	ChannelIn  = "in"  // the chunks as sent (default)
	ChannelOut = "out" // the processing results
)

type subscriber struct {
	conn    *ws.Conn
	id      string
	typ     streams.Type
	channel string
}

// subscribe serves GET /stream/:id/subscribe: a WebSocket that receives
// every chunk (or, with ?channel=out, every result) in order, one frame
// each, read from JetStream by an ordered consumer at the subscriber's own
// pace. See the package doc for the frame layout.
func (h *Handler) subscribe(c echo.Context) error {
	req := c.Request()
	id := c.Param("id")
	r, err := h.lookup(req.Context(), id)
	if err != nil {
		if errors.Is(err, streams.ErrNotFound) {
			return notFound(id)
		}
		return apierr.From(err)
	}
	q := req.URL.Query()
	channel := q.Get("channel")
	if channel == "" {
		channel = ChannelIn
	}
	var subj string
	switch channel {
	case ChannelIn:
		subj, _ = subjects.StreamIn(id)
	case ChannelOut:
		if r.Service == "" {
			return apierr.Newf(http.StatusBadRequest, apierr.CodeBadRequest, "stream %s has no processing service: no channel out", id)
		}
		subj, _ = subjects.StreamOut(id)
	default:
		return apierr.Newf(http.StatusBadRequest, apierr.CodeBadRequest, "channel %q is not in or out", channel)
	}
	cfg := natsjs.OrderedConsumerConfig{FilterSubjects: []string{subj}, InactiveThreshold: 30 * time.Second}
	switch from := q.Get("from"); from {
	case "":
		cfg.DeliverPolicy = natsjs.DeliverNewPolicy
	case "start":
		cfg.DeliverPolicy = natsjs.DeliverAllPolicy
	case "latest":
		cfg.DeliverPolicy = natsjs.DeliverLastPolicy
	default:
		seq, err := strconv.ParseUint(from, 10, 64)
		if err != nil || seq == 0 {
			return apierr.Newf(http.StatusBadRequest, apierr.CodeBadRequest, "from %q is not start, latest or a sequence (1 or more)", from)
		}
		cfg.DeliverPolicy = natsjs.DeliverByStartSequencePolicy
		cfg.OptStartSeq = seq
	}
	if !websocketUpgrade(req) {
		return apierr.New(http.StatusBadRequest, apierr.CodeBadRequest, "this endpoint needs a WebSocket upgrade")
	}
	cons, err := h.o.JS.OrderedConsumer(req.Context(), jetstreamName(id), cfg)
	if err != nil {
		if errors.Is(err, natsjs.ErrStreamNotFound) {
			return notFound(id)
		}
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable, "could not read the stream").
			WithRetry(time.Second).WithCause(err)
	}
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeShuttingDown, "edge is shutting down").WithRetry(time.Second)
	}
	h.subsWG.Add(1)
	h.mu.Unlock()
	conn, err := ws.Upgrade(c.Response(), req, ws.Options{
		ReadLimit: 4 << 10, QueueBytes: h.queueBytes(r.Type), Metrics: h.o.WSMetrics,
		Log: h.o.Log.With("edge", "stream", "stream", id), Context: h.ctx,
	}, nil)
	if err != nil {
		h.subsWG.Done()
		return nil // the error response is written
	}
	h.hub.Add(conn)
	s := &subscriber{conn: conn, id: id, typ: r.Type, channel: channel}
	h.mu.Lock()
	if h.subs[id] == nil {
		h.subs[id] = map[*subscriber]struct{}{}
	}
	h.subs[id][s] = struct{}{}
	h.mu.Unlock()
	// A delete that won the race against this subscribe closes it now.
	if cur := h.replica.Get(id); cur == nil || cur.State != streams.StateOpen {
		reason := streams.ReasonDeleted
		if cur != nil && cur.Reason != "" {
			reason = cur.Reason
		}
		conn.Close(closeCode(reason), reason)
	}
	h.o.Metrics.Subscribers.WithLabelValues(string(r.Type)).Inc()
	go h.pump(s, cons)
	return nil
}

func websocketUpgrade(r *http.Request) bool {
	for _, v := range r.Header.Values("Upgrade") {
		if strings.EqualFold(strings.TrimSpace(v), "websocket") {
			return true
		}
	}
	return false
}

func (h *Handler) queueBytes(t streams.Type) int {
	switch t {
	case streams.Vision:
		return int(h.o.Config.VisionBufferBytes)
	case streams.Audio:
		return int(h.o.Config.AudioBufferBytes)
	}
	return int(h.o.Config.ParametersBufferBytes)
}

// pump feeds the subscriber from its ordered consumer until the
// connection closes. Messages are handed to a callback, one at a time in
// order, from the consumer's own subscription; while the callback waits
// for room in the WebSocket queue, nothing more is pulled beyond the
// window (bounded in chunks and in the subscriber's buffer bytes), and the
// subscription's own status messages are never dropped.
func (h *Handler) pump(s *subscriber, cons natsjs.Consumer) {
	defer h.subsWG.Done()
	defer func() {
		h.mu.Lock()
		delete(h.subs[s.id], s)
		if len(h.subs[s.id]) == 0 {
			delete(h.subs, s.id)
		}
		h.mu.Unlock()
		h.o.Metrics.Subscribers.WithLabelValues(string(s.typ)).Dec()
		<-s.conn.Done()
	}()
	typ := string(s.typ)
	framesOut := h.o.Metrics.FramesOut.WithLabelValues(typ, s.channel)
	bytesOut := h.o.Metrics.BytesOut.WithLabelValues(typ, s.channel)
	var stopped atomic.Bool
	cc, err := cons.Consume(func(m natsjs.Msg) {
		if stopped.Load() {
			return
		}
		md, err := m.Metadata()
		if err != nil {
			return
		}
		msgType, data := frame(s, md.Sequence.Stream, m)
		if !h.room(s, len(data)) {
			stopped.Store(true)
			return
		}
		if err := s.conn.Send(msgType, data); err != nil {
			stopped.Store(true)
			switch {
			case errors.Is(err, ws.ErrSlow):
				h.o.Metrics.SlowDisconnects.WithLabelValues(typ).Inc()
				h.o.Log.Info("slow subscriber closed", "stream", s.id, "seq", md.Sequence.Stream)
			case errors.Is(err, ws.ErrFrameTooBig):
				s.conn.Close(ws.CloseTooBig, "chunk larger than the subscriber buffer")
			}
			return
		}
		framesOut.Inc()
		bytesOut.Add(float64(len(data)))
	}, natsjs.PullMaxMessagesWithBytesLimit(h.o.Config.SubscriberWindow, h.queueBytes(s.typ)),
		natsjs.ConsumeErrHandler(func(_ natsjs.ConsumeContext, err error) {
			if errors.Is(err, natsjs.ErrStreamNotFound) || errors.Is(err, natsjs.ErrConsumerNotFound) ||
				errors.Is(err, natsjs.ErrConsumerDeleted) {
				h.closeIfGone(s)
			}
		}))
	if err != nil {
		s.conn.Close(ws.CloseInternal, "subscription failed")
		return
	}
	<-s.conn.Done()
	cc.Stop()
	<-cc.Closed()
}

// closeIfGone closes the subscriber when its stream is closing or gone,
// with the stream's reason.
func (h *Handler) closeIfGone(s *subscriber) {
	if cur := h.replica.Get(s.id); cur == nil || cur.State != streams.StateOpen {
		reason := streams.ReasonDeleted
		if cur != nil && cur.Reason != "" {
			reason = cur.Reason
		}
		s.conn.Close(closeCode(reason), reason)
	}
}

// room waits until the subscriber's queue has room for n more bytes, for
// at most stream.slow_after: a subscriber that reads at network speed
// catches up with a burst instead of being dropped; one whose queue stays
// full that long is then refused by Send and closed 4008. It returns false
// when the connection closed meanwhile.
func (h *Handler) room(s *subscriber, n int) bool {
	limit := h.queueBytes(s.typ)
	if s.conn.Queued()+n+frameOverhead <= limit {
		return true
	}
	deadline := time.NewTimer(h.o.Config.SlowAfter.D())
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for s.conn.Queued()+n+frameOverhead > limit {
		select {
		case <-s.conn.Done():
			return false
		case <-deadline.C:
			return true // Send refuses the frame: closed 4008
		case <-tick.C:
		}
	}
	return true
}

// frameOverhead is what edge/ws counts for each queued frame on top of its payload.
const frameOverhead = 10

// frame builds the WebSocket message of one stored chunk or result:
//   - JSON (parameters chunks, JSON results): a text frame
//     {"seq":<seq>,"data":<the JSON>} (results add "source_seq");
//   - anything else: a binary frame of the 8-byte big-endian sequence
//     (results: then the 8-byte source sequence) followed by the bytes.
func frame(s *subscriber, seq uint64, m natsjs.Msg) (int, []byte) {
	data := m.Data()
	var src uint64
	if s.channel == ChannelOut {
		src, _ = strconv.ParseUint(m.Headers().Get(subjects.HeaderStreamSeq), 10, 64)
	}
	if isJSON(s, m, data) {
		b := make([]byte, 0, len(data)+48)
		b = append(b, `{"seq":`...)
		b = strconv.AppendUint(b, seq, 10)
		if s.channel == ChannelOut {
			b = append(b, `,"source_seq":`...)
			b = strconv.AppendUint(b, src, 10)
		}
		b = append(b, `,"data":`...)
		b = append(b, data...)
		b = append(b, '}')
		return ws.TextMessage, b
	}
	head := 8
	if s.channel == ChannelOut {
		head = 16
	}
	b := make([]byte, head+len(data))
	binary.BigEndian.PutUint64(b, seq)
	if s.channel == ChannelOut {
		binary.BigEndian.PutUint64(b[8:], src)
	}
	copy(b[head:], data)
	return ws.BinaryMessage, b
}

func isJSON(s *subscriber, m natsjs.Msg, data []byte) bool {
	if s.channel == ChannelIn {
		return s.typ == streams.Parameters
	}
	mt, _, err := mime.ParseMediaType(m.Headers().Get("Content-Type"))
	if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return false
	}
	return len(data) > 0 && json.Valid(data)
}

// closeSubscribers closes every local subscriber of stream id.
func (h *Handler) closeSubscribers(id, reason string) {
	h.mu.Lock()
	subs := make([]*subscriber, 0, len(h.subs[id]))
	for s := range h.subs[id] {
		subs = append(subs, s)
	}
	h.mu.Unlock()
	for _, s := range subs {
		s.conn.Close(closeCode(reason), reason)
	}
}
