// Package broker is the message broker edge (default port 8081): a
// WebSocket per service, publishing over HTTP, WebSocket and plain NATS,
// persistent delivery through JetStream with acks, redelivery and dead
// letters, request/reply between services, presence in the KV bucket
// services, and discovery merged with NATS micro services. It serves
// /health and /metrics like every edge.
//
// # Routes
//
//	GET  /ws/:service[?mode=queue|broadcast][&batch=true]  upgrade; 400 bad name, mode or batch; 503 draining, not connected or full
//	POST /publish                              {"service","topic","payload","persistent","from"} -> 202 {"id",...}
//	GET  /services                             presence over every broker process plus micro services
//
// # Subjects
//
// A transient message travels on broker.svc.<service>.<topic> (core
// NATS), a persistent one on broker.persist.<service>.<topic> (stream
// BROKER, work queue), a dead letter on broker.dead.<service>.<topic>
// (stream BROKER_DEAD). The payload is the message payload; id, sender,
// publish time, origin path and correlation id travel in headers. So a
// message reaches a connection the same way whether it came from POST
// /publish, a publish frame or a plain NATS publish; the origin header
// (absent for NATS) labels the metrics.
//
// # Delivery
//
// Per service, a process holds at most one queue subscription (queue group
// broker.svc.<service>) while it has queue-mode connections, one plain
// subscription while it has broadcast connections, and one Consume on the
// durable consumer broker-<service> while it has any connection. NATS
// spreads transient messages over processes; a process hands each one to
// its queue-mode connections round robin, or to all its broadcast
// connections. A persistent message goes to one connection of any mode and
// stays pending on it until an ack frame (Ack), a nack frame or the
// connection's close (Nak: delivered again at once), or the ack wait
// (JetStream redelivers). JetStream's max-deliveries advisory, taken by one
// process through queue group switchyard-broker, turns an exhausted message
// into a dead letter.
//
// Transient publishes carry the reply subject broker.undelivered.<node>.<path>:
// when no process holds a connection of the service, the NATS server
// answers there with a no-responders status and the publishing process
// counts the message undeliverable. A request from a connection carries
// broker.reply.<node>.<conn>.<correlation> instead, so the reply (or the
// no-responders status) comes back to that connection with its
// correlation id and no state is kept.
//
// # Concurrency
//
// Each connection has the edge/ws reader and writer goroutines plus one
// goroutine that waits for its end and leaves its group. Deliveries run on
// the NATS subscription and consumer goroutines, read an immutable snapshot
// of the group's members (atomic pointer, replaced under the group's
// mutex) and never block: ws.Conn.Send queues or closes a slow connection
// with 4008. Frames are encoded once per message and shared by every
// connection that gets it. Presence is written by one goroutine; Shutdown
// closes every connection with 1001, waits for them to leave, stops the
// subscriptions and removes this process's presence records. Everything
// exported is safe for concurrent use; Shutdown may be called twice.
package broker
