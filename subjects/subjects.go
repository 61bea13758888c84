package subjects

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is returned (wrapped) by every builder and validator for input
// that cannot form a valid NATS subject, stream, bucket or consumer name.
var ErrInvalid = errors.New("invalid name")

// Subject roots. Each is the first token of a family of subjects.
const (
	// RootService is the root of core-NATS service calls: svc.<service>.<tokens>.
	RootService = "svc"
	// RootJobs is the root of durable jobs: jobs.<service>.<tokens>, stored in StreamJobs.
	RootJobs = "jobs"
	// RootCache is the root of cache operations: cache.<op>.<namespace>.
	RootCache = "cache"
	// RootStream is the root of stream chunks: stream.<id>.in and stream.<id>.out.
	RootStream = "stream"
	// RootBroker is the root of broker traffic: broker.svc.<service>.<topic> and broker.presence.<service>.
	RootBroker = "broker"
)

// JetStream streams.
const (
	// StreamJobs is a work-queue stream holding jobs.> until a worker acks them.
	StreamJobs = "JOBS"
	// StreamPrefix starts the name of every stream's own JetStream stream,
	// STREAM_<id>, which holds stream.<id>.in and stream.<id>.out (see StreamOf).
	StreamPrefix = "STREAM_"
	// StreamBroker holds broker.svc.> messages for persistent delivery.
	StreamBroker = "BROKER"
)

// JetStream key-value buckets.
const (
	// BucketJobs holds one record per durable job, keyed by job id.
	BucketJobs = "jobs"
	// BucketStreams holds stream metadata, keyed by stream id.
	BucketStreams = "streams"
	// BucketServices holds broker presence, keyed by service name.
	BucketServices = "services"
	// BucketCache is the shared cache tier, keyed by <namespace>.<key>.
	BucketCache = "cache"
)

// JetStream object stores.
const (
	// ObjectStoreJobResults holds the result bodies of durable jobs that are
	// too large for their record in BucketJobs.
	ObjectStoreJobResults = "job-results"
)

// Subjects served by the micro discovery protocol (see nats.go/micro).
const (
	// DiscoveryPing is answered by every micro service.
	DiscoveryPing = "$SRV.PING"
	// DiscoveryInfo returns endpoints and metadata of every micro service.
	DiscoveryInfo = "$SRV.INFO"
	// DiscoveryStats returns per-endpoint statistics of every micro service.
	DiscoveryStats = "$SRV.STATS"
)

// ProxyServiceName is the micro service name every proxy worker registers,
// so `nats micro ls` and the lb edge's GET /services see it.
const ProxyServiceName = "switchyard-proxy"

// ProxyStatus is the subject of the proxy workers' status endpoint: every
// proxy worker answers with the state of its upstreams (no queue group, so
// a scatter-gather request reaches them all).
const ProxyStatus = "switchyard.proxy.status"

// JobsMaxDeliveries is the JetStream advisory published when a job's
// delivery attempts ran out without an ack (its runner died during the last
// one); the job runners mark such a job failed. JobsAdvisoryQueue is their
// queue group, so one runner handles each advisory.
const (
	JobsMaxDeliveries = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + StreamJobs + ".*"
	JobsAdvisoryQueue = "switchyard-jobs"
)

// HTTP-over-NATS headers. A request carries the method, path and query as
// headers and the HTTP body as the payload; the reply carries the status
// code as a header and the response body as the payload. Every other header
// is an end-to-end HTTP header passed through unchanged.
const (
	// HeaderMethod is the HTTP method of a request (absent means GET).
	HeaderMethod = "Switchyard-Method"
	// HeaderPath is the request path with the service prefix stripped, always starting with "/".
	HeaderPath = "Switchyard-Path"
	// HeaderQuery is the raw query string without "?" (absent means none).
	HeaderQuery = "Switchyard-Query"
	// HeaderStatus is the HTTP status of a reply (absent means 200).
	HeaderStatus = "Switchyard-Status"
	// HeaderJobID names the durable job a jobs.> message belongs to.
	HeaderJobID = "Switchyard-Job-Id"
	// HeaderErrorCode is the machine-readable error code of an error reply.
	HeaderErrorCode = "Switchyard-Error-Code"
	// HeaderRetryAfter is the Retry-After value, in seconds, of an error reply.
	HeaderRetryAfter = "Retry-After"
	// HeaderMicroError and HeaderMicroErrorCode are the micro protocol's error
	// headers; a reply carrying them is mapped to an HTTP error.
	HeaderMicroError     = "Nats-Service-Error"
	HeaderMicroErrorCode = "Nats-Service-Error-Code"
	// HeaderMsgID is JetStream's de-duplication header.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderDeadline is the instant a request's caller stops waiting for
	// the reply, in Unix milliseconds (absent means the worker's own
	// timeout). A worker drops a request received after it and stops its
	// work on the request at it.
	HeaderDeadline = "Switchyard-Deadline"
	// HeaderUpstream names, on a reply of the proxy worker, the upstream
	// (host:port) that gave the answer, or the last one tried. The lb edge
	// logs it on the request's access line and does not pass it on.
	HeaderUpstream = "Switchyard-Upstream"
)

// MaxTokens bounds the number of path tokens a subject may carry.
const MaxTokens = 16

// ValidName reports whether s is a valid service, namespace or operation
// name: 1 to 64 characters of [a-z0-9_-], starting with a letter or digit.
// Such a name is a valid subject token, stream-safe and bucket-key-safe.
func ValidName(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("%w: name %q must be 1 to 64 characters", ErrInvalid, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return fmt.Errorf("%w: name %q may hold only a-z, 0-9, '_' and '-', starting with a letter or digit", ErrInvalid, s)
		}
	}
	return nil
}

// ValidToken reports whether s can stand as one subject token: 1 to 128
// printable ASCII characters other than '.', '*' and '>'.
func ValidToken(s string) error {
	if s == "" || len(s) > 128 {
		return fmt.Errorf("%w: token %q must be 1 to 128 characters", ErrInvalid, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' {
			return fmt.Errorf("%w: token %q holds %q", ErrInvalid, s, c)
		}
	}
	return nil
}

// PathTokens turns an HTTP path into subject tokens, one per non-empty
// segment. Characters that cannot stand in a token ('.', '*', '>', spaces,
// control and non-ASCII bytes) become '_'; a path with no segment gives the
// single token "_". At most MaxTokens tokens are kept: the rest of the path
// is folded into the last token. The subject is for routing and filtering;
// the exact path always travels in HeaderPath.
func PathTokens(path string) []string {
	var toks []string
	for _, seg := range strings.Split(path, "/") {
		if seg == "" {
			continue
		}
		if len(seg) > 128 {
			seg = seg[:128]
		}
		toks = append(toks, sanitize(seg))
	}
	if len(toks) == 0 {
		return []string{"_"}
	}
	if len(toks) > MaxTokens {
		toks = append(toks[:MaxTokens-1], "_")
	}
	return toks
}

func sanitize(seg string) string {
	ok := true
	for i := 0; i < len(seg); i++ {
		if c := seg[i]; c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' {
			ok = false
			break
		}
	}
	if ok {
		return seg
	}
	b := []byte(seg)
	for i, c := range b {
		if c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' {
			b[i] = '_'
		}
	}
	return string(b)
}

func join(root, name string, tokens []string) (string, error) {
	if err := ValidName(name); err != nil {
		return "", err
	}
	if len(tokens) == 0 {
		return "", fmt.Errorf("%w: %s.%s needs at least one token", ErrInvalid, root, name)
	}
	if len(tokens) > MaxTokens {
		return "", fmt.Errorf("%w: more than %d tokens", ErrInvalid, MaxTokens)
	}
	n := len(root) + 1 + len(name)
	for _, t := range tokens {
		if err := ValidToken(t); err != nil {
			return "", err
		}
		n += 1 + len(t)
	}
	var sb strings.Builder
	sb.Grow(n)
	sb.WriteString(root)
	sb.WriteByte('.')
	sb.WriteString(name)
	for _, t := range tokens {
		sb.WriteByte('.')
		sb.WriteString(t)
	}
	return sb.String(), nil
}

// Service returns svc.<service>.<tokens...>, the subject of a core-NATS
// service call. It returns ErrInvalid for a bad service name or token.
func Service(service string, tokens ...string) (string, error) {
	return join(RootService, service, tokens)
}

// ServiceAll returns svc.<service>.>, the subject a worker of service subscribes to.
func ServiceAll(service string) (string, error) {
	if err := ValidName(service); err != nil {
		return "", err
	}
	return RootService + "." + service + ".>", nil
}

// ServiceOf returns the service a subject or queue group belongs to: the
// <service> of svc.<service> or svc.<service>.<tokens>. ok is false for
// anything else, including a service name that is not valid.
func ServiceOf(subject string) (service string, ok bool) {
	rest, found := strings.CutPrefix(subject, RootService+".")
	if !found {
		return "", false
	}
	name, _, _ := strings.Cut(rest, ".")
	if ValidName(name) != nil {
		return "", false
	}
	return name, true
}

// ServiceQueue returns svc.<service>, the queue group every worker of service joins.
func ServiceQueue(service string) (string, error) {
	if err := ValidName(service); err != nil {
		return "", err
	}
	return RootService + "." + service, nil
}

// Job returns jobs.<service>.<tokens...>, the subject of a durable job.
func Job(service string, tokens ...string) (string, error) {
	return join(RootJobs, service, tokens)
}

// JobsAll returns jobs.<service>.>, the filter of the service's jobs consumer.
func JobsAll(service string) (string, error) {
	if err := ValidName(service); err != nil {
		return "", err
	}
	return RootJobs + "." + service + ".>", nil
}

// JobsConsumer returns jobs-<service>, the durable consumer on StreamJobs
// that the service's job workers share.
func JobsConsumer(service string) (string, error) {
	if err := ValidName(service); err != nil {
		return "", err
	}
	return "jobs-" + service, nil
}

// JobCall returns the service and the svc.<service>.<tokens> subject that
// runs the durable job published on jobs.<service>.<tokens>. It returns
// ErrInvalid for anything that is not a valid job subject.
func JobCall(jobSubject string) (service, call string, err error) {
	rest, ok := strings.CutPrefix(jobSubject, RootJobs+".")
	if !ok {
		return "", "", fmt.Errorf("%w: %q is not under %s.", ErrInvalid, jobSubject, RootJobs)
	}
	parts := strings.Split(rest, ".")
	call, err = join(RootService, parts[0], parts[1:])
	if err != nil {
		return "", "", err
	}
	return parts[0], call, nil
}

// Cache returns cache.<op>.<namespace>, the subject of a cache operation.
func Cache(op, namespace string) (string, error) {
	if err := ValidName(op); err != nil {
		return "", err
	}
	if err := ValidName(namespace); err != nil {
		return "", err
	}
	return RootCache + "." + op + "." + namespace, nil
}

// Cache operations, the <op> of cache.<op>.<namespace>. The cache micro
// service (CacheServiceName) serves get, set, delete, batch and stats in
// queue group CacheQueue; inval carries invalidations between processes.
const (
	CacheOpGet        = "get"
	CacheOpSet        = "set"
	CacheOpDelete     = "delete"
	CacheOpBatch      = "batch"
	CacheOpStats      = "stats"
	CacheOpInvalidate = "inval"
	// CacheServiceName is the micro service every cache coordinator registers
	// (named like switchyard-proxy; "cache" is the bucket's name).
	CacheServiceName = "switchyard-cache"
	// CacheQueue is the queue group of the cache operations.
	CacheQueue = "cache-workers"
)

// Cache headers.
const (
	// HeaderCacheKey carries the key of a cache.get/set/delete request.
	HeaderCacheKey = "Switchyard-Cache-Key"
	// HeaderCacheTTL is the TTL in seconds of a cache.set request.
	HeaderCacheTTL = "Switchyard-Cache-Ttl"
	// HeaderCacheTier says which tier answered a cache.get: HIT-LOCAL or HIT-SHARED.
	HeaderCacheTier = "Switchyard-Cache"
	// HeaderCacheExpires is when the value of a cache.get reply expires, in
	// Unix milliseconds (absent: never).
	HeaderCacheExpires = "Switchyard-Cache-Expires"
	// HeaderCacheOrigin names the process that sent an invalidation.
	HeaderCacheOrigin = "Switchyard-Cache-Origin"
)

// CacheAll returns cache.<op>.*, the subject of one operation in every namespace.
func CacheAll(op string) (string, error) {
	if err := ValidName(op); err != nil {
		return "", err
	}
	return RootCache + "." + op + ".*", nil
}

// StreamIn returns stream.<id>.in, the subject of chunks sent into stream id.
func StreamIn(id string) (string, error) {
	if err := ValidName(id); err != nil {
		return "", err
	}
	return RootStream + "." + id + ".in", nil
}

// StreamOut returns stream.<id>.out, the subject of processed chunks of stream id.
func StreamOut(id string) (string, error) {
	if err := ValidName(id); err != nil {
		return "", err
	}
	return RootStream + "." + id + ".out", nil
}

// StreamOf returns STREAM_<id>, the JetStream stream that holds the
// chunks and results of stream id.
func StreamOf(id string) (string, error) {
	if err := ValidName(id); err != nil {
		return "", err
	}
	return StreamPrefix + id, nil
}

// StreamAll returns stream.<id>.*, every subject of stream id.
func StreamAll(id string) (string, error) {
	if err := ValidName(id); err != nil {
		return "", err
	}
	return RootStream + "." + id + ".*", nil
}

// StreamsFilter matches the subjects of every stream, stream.*.*: the
// filter that lists the STREAM_<id> JetStream streams.
const StreamsFilter = RootStream + ".*.*"

// StreamProcessConsumer is the durable pull consumer on each STREAM_<id>
// (filter stream.<id>.in) that the stream processing workers share.
const StreamProcessConsumer = "process"

// Stream processing headers: on the HTTP-over-NATS request that hands a
// chunk to a processing service (they reach HTTP upstreams too), and on
// the result stored on stream.<id>.out.
const (
	// HeaderStreamID names the stream a chunk belongs to.
	HeaderStreamID = "X-Stream-Id"
	// HeaderStreamSeq is the chunk's sequence in its stream.
	HeaderStreamSeq = "X-Stream-Seq"
	// HeaderStreamType is the stream's type: vision, audio or parameters.
	HeaderStreamType = "X-Stream-Type"
)

// BrokerService returns broker.svc.<service>.<topic tokens...>, a message for service.
func BrokerService(service string, topic ...string) (string, error) {
	s, err := join(RootService, service, topic)
	if err != nil {
		return "", err
	}
	return RootBroker + "." + s, nil
}

// Presence returns broker.presence.<service>, where a service's presence changes are announced.
func Presence(service string) (string, error) {
	if err := ValidName(service); err != nil {
		return "", err
	}
	return RootBroker + ".presence." + service, nil
}
