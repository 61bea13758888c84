// Package streamproc is the stream processing worker pool. For every open
// stream that names a processing service it consumes the durable pull
// consumer "process" on the stream's JetStream stream STREAM_<id> (filter
// stream.<id>.in), hands each chunk to the service as an HTTP-over-NATS
// POST on svc.<service>.<path tokens> (so the proxy workers serve it from
// HTTP upstreams and any NATS worker in queue group svc.<service> can
// serve it too), and stores the answer on stream.<id>.out.
//
// A chunk is acked only after its result is stored (or the service
// answered 204: nothing to store). No responders, a timeout, 408, 429 or a
// 5xx naks it with a growing delay; a 4xx is a poison chunk and is
// terminated at once; the last of MaxDeliver attempts terminates it too.
// A result carries Nats-Msg-Id <id>-<seq>, so a chunk processed twice (its
// worker died between storing and acking) stores one result.
//
// The pool learns which streams exist from a watch of bucket streams, so
// any number of pools share the work of every stream. Concurrency: at most
// Concurrency chunks of one stream and Workers chunks in all are in flight
// in one pool; with Concurrency 1 results are stored in chunk order.
// Shutdown stops pulling, waits for chunks in flight until its context
// ends, and leaves the rest unacked (redelivered after AckWait).
package streamproc
