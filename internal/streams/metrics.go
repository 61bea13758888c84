package streams

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/internal/obs"
)

// Reasons a chunk is refused, the label of RejectedChunks.
const (
	RejectNotFound = "not_found" // 404: no such stream
	RejectInvalid  = "invalid"   // 400: malformed for the stream's type
	RejectMedia    = "media"     // 415: another media type
	RejectTooLarge = "too_large" // 413: over stream.max_chunk_bytes
	RejectBacklog  = "backlog"   // 429: processing backlog over its limit
	RejectFull     = "full"      // 507: the stream's retention bytes are full
	RejectStore    = "store"     // 503: JetStream did not acknowledge
)

// Outcomes of processing one chunk, the label of Processed.
const (
	OutcomeDone     = "done"     // result stored, chunk acked
	OutcomeRetry    = "retry"    // failed, redelivered later
	OutcomeRejected = "rejected" // the service answered 4xx: terminated
	OutcomeFailed   = "failed"   // the last attempt failed: terminated
)

// Metrics are the stream processor's metrics (subsystem "stream"), shared
// by the edge and the processing pool of one process. Labels are bounded:
// the stream type (vision, audio, parameters), a reason or an outcome.
type Metrics struct {
	ChunksIn        *prometheus.CounterVec
	BytesIn         *prometheus.CounterVec
	FramesOut       *prometheus.CounterVec
	BytesOut        *prometheus.CounterVec
	Rejected        *prometheus.CounterVec
	Subscribers     *prometheus.GaugeVec
	SlowDisconnects *prometheus.CounterVec
	Closed          *prometheus.CounterVec
	Processed       *prometheus.CounterVec
	ProcessDuration *prometheus.HistogramVec
	Backlog         *prometheus.GaugeVec
	Streams         *prometheus.GaugeVec
}

// NewMetrics registers the stream metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns, sub = "switchyard", "stream"
	byType := []string{"type"}
	m := &Metrics{
		ChunksIn: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "chunks_in_total",
			Help: "Chunks stored (acknowledged with 202), by stream type."}, byType),
		BytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "bytes_in_total",
			Help: "Bytes of chunks stored, by stream type."}, byType),
		FramesOut: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "frames_out_total",
			Help: "Chunks and results queued to WebSocket subscribers, by stream type and channel (in, out)."}, []string{"type", "channel"}),
		BytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "bytes_out_total",
			Help: "Bytes queued to WebSocket subscribers, by stream type and channel (in, out)."}, []string{"type", "channel"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "rejected_chunks_total",
			Help: "Chunks refused, by stream type (unknown for a missing stream) and reason (not_found, invalid, media, too_large, backlog, full, store)."},
			[]string{"type", "reason"}),
		Subscribers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "subscribers",
			Help: "WebSocket subscribers connected to this process, by stream type."}, byType),
		SlowDisconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "slow_disconnects_total",
			Help: "Subscribers closed with 4008 because their queue passed its byte limit, by stream type."}, byType),
		Closed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "closed_total",
			Help: "Streams closed by this process, by stream type and reason (deleted, idle, expired)."}, []string{"type", "reason"}),
		Processed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "processed_total",
			Help: "Processing attempts, by stream type and outcome (done, retry, rejected, failed)."}, []string{"type", "outcome"}),
		ProcessDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "process_duration_seconds",
			Help: "Time from handing a chunk to its processing service to its result being stored, by stream type.", Buckets: obs.LatencyBuckets}, byType),
		Backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "backlog",
			Help: "Chunks stored and not yet processed (pending plus ack pending), summed by stream type, as last seen by this process."}, byType),
		Streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "streams",
			Help: "Open streams, by stream type."}, byType),
	}
	reg.MustRegister(m.ChunksIn, m.BytesIn, m.FramesOut, m.BytesOut, m.Rejected, m.Subscribers, m.SlowDisconnects,
		m.Closed, m.Processed, m.ProcessDuration, m.Backlog, m.Streams)
	return m
}
