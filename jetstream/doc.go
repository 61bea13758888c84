// Package jetstream owns Switchyard's JetStream footprint and its NATS
// server: the embedded nats-server (StartEmbedded: loopback unless told
// otherwise, and never beyond loopback without credentials), the NATS
// connection options every part uses (Connect: reconnect forever, log each
// disconnect and reconnect; ClientOptions: credentials of every form
// nats.go supports, and the reconnect limit), and the declaration of every stream, consumer and
// key-value bucket (Assets, Ensure, JobsConsumer).
//
// Declarations are created or updated idempotently at every start, so any
// number of processes may start at once against one cluster; the replica
// count comes from configuration (1 embedded, 3 in a cluster). The
// upstream client package is imported as natsjs to avoid the name clash.
//
// Cluster mode: EmbeddedOptions.Cluster makes the embedded server one node
// of a JetStream cluster (routes on the client port's host, with the
// clients' credentials). A start on a forming cluster retries within its
// budget (ConnectRetry, EnsureRetry: backoff, a log line per wait); Ensure
// refuses a replica count that differs from the configured one
// (ErrReplicaMismatch) unless it is an explicit scale-up. QuorumWatch polls
// the leader and current replicas of every declared asset for /health and
// the switchyard_nats_* metrics; its Run goroutine ends at Shutdown.
//
// Subpackage jstest starts real embedded servers (one, or a cluster) for tests. Everything
// here is safe for concurrent use; Embedded.Shutdown may be called twice.
package jetstream
