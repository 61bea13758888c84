// Package stream is the stream processor edge (default port 8084) and the
// part that runs it with the stream processing workers (package
// workers/streamproc): typed streams of vision frames, audio and parameter
// JSON stored on JetStream, fanned out to WebSocket subscribers with
// replay, handed to a processing service, with ack-driven backpressure.
//
// # Routes
//
//	POST   /stream/create         201 {"id":...}; 400 bad spec; 507 too many streams or no storage
//	GET    /streams               every open stream with chunks, bytes, subscribers, backlog, last activity
//	GET    /stream/:id            one stream; 404
//	DELETE /stream/:id            204; subscribers closed 1000 "deleted", data and record purged; 404
//	POST   /stream/:id/chunk      202 {"seq":N} after the JetStream ack; 400/404/413/415/429/503/507
//	GET    /stream/:id/subscribe  WebSocket; ?from=start|latest|<seq>, ?channel=in|out
//
// # Storage: one JetStream stream per stream id
//
// Each stream's chunks (stream.<id>.in) and results (stream.<id>.out) live
// in a JetStream stream of their own, STREAM_<id>, created with the
// stream and deleted with it. The alternative was one STREAMS stream over
// stream.*.in|out. Measured with `go run ./bench/streamstore` (1,000
// streams, each with its processing consumer, file store, embedded
// server; two runs on the shared 2-core machine):
//
//	                     one STREAMS stream    one stream per id
//	create, per stream   1.7 to 3.4 ms         3.0 to 3.7 ms
//	server heap          +34 MiB               +76 MiB
//	goroutines           +4,000                +7,000
//	publish, 1 KiB       16k to 115k msgs/s    16k to 43k msgs/s (noise dominates)
//	delete one stream    22 to 174 ms (purge)  0.4 to 1 ms (delete)
//	restart recovery     0.2 to 0.4 s          0.5 to 1.1 s
//
// Per id costs about 42 KiB of heap and 3 goroutines more per stream and
// a slower restart; at the default limit of 1,000 streams (stream.max_streams)
// that is 42 MiB. What it buys is what the issue asks of each stream and
// what one stream cannot give: its own retention age and bytes enforced
// by JetStream (one stream has per-subject message counts but no
// per-subject byte limit, and per-message TTLs do not bound bytes); a full
// stream refusing new chunks with an error the edge maps to 507 instead of
// dropping old ones unseen (discard new); bytes, message count and last
// activity read from the stream's own state; delete in constant time,
// where a subject purge of a large shared stream took up to 174 ms and
// grows with it; and storage reserved up front, so a create that the
// server cannot hold answers 507 at once rather than failing chunks
// later. The processing consumer per stream is needed in both layouts,
// for per-stream backlog and so one slow service cannot hold up another
// stream's chunks.
//
// # Frames
//
// A subscriber receives one WebSocket message per chunk, in stream order.
// The sequence is the chunk's JetStream sequence in STREAM_<id>: the
// number its 202 answered. Chunks and results share the numbering, so the
// sequences of one channel increase but are not contiguous.
//
//   - Binary streams (vision, audio): a binary frame, the 8-byte
//     big-endian sequence followed by the chunk's bytes.
//   - Parameters: a text frame {"seq":<seq>,"data":<the JSON object>}.
//   - Results (?channel=out): a JSON result is a text frame
//     {"seq":<seq>,"source_seq":<chunk seq>,"data":<JSON>}; any other is a
//     binary frame of the 8-byte sequence, the 8-byte sequence of the
//     chunk it came from, then the bytes.
//
// ?from=start replays everything retained, ?from=latest starts at the last
// stored chunk, ?from=<seq> at that sequence (a reconnecting client passes
// its last sequence plus one and misses nothing still retained), and no
// from starts with the next chunk.
//
// # Subscribers and close codes
//
// Each subscriber reads from JetStream through its own ordered consumer,
// pulling at most stream.subscriber_window chunks ahead, into its
// WebSocket queue (package edge/ws), bounded by the buffer of the stream's
// type (stream.vision_buffer_bytes, ...). Ingest never waits for a
// subscriber, nor does one subscriber wait for another. When a
// subscriber's queue has no room for its next chunk, its reader waits and
// reads JetStream later, so a burst costs a client that reads at network
// speed nothing; a subscriber whose queue stays too full for
// stream.slow_after (2s) is closed with 4008 "slow" and resumes with
// ?from=<last seq + 1>. Other close codes:
// 1000 "deleted" (DELETE), 4001 "idle" (no chunk within
// stream.idle_timeout), 4002 "expired" (older than stream.max_age), 1001
// (the edge shuts down), 1009 (a chunk larger than the subscriber buffer),
// 1011 (the subscription failed).
//
// # Backpressure
//
// A stream with a processing service has a backlog: the pending plus ack
// pending count of its processing consumer. It is read from JetStream at
// most every 100 ms, plus the chunks this process accepted since; at
// stream.backlog_limit the chunk answers 429 with Retry-After, and is
// accepted again as processing acks drain it. A stream without a service
// has no backlog: only its retention bounds it, and when its bytes are
// used a chunk answers 507 until old chunks age out. Nothing is dropped
// silently.
//
// # Concurrency and state
//
// Handlers are safe for concurrent use. The edge holds a copy of the
// stream records (bucket streams), kept by a KV watch, and the local
// subscribers; everything else is in JetStream. Records move forward only
// (open, closing, gone) by compare-and-set, so several edge processes may
// delete or expire the same stream at once. A janitor in every process
// closes idle and expired streams, and deletes a STREAM_<id> that has had
// no record for a minute (left by a create that died half way: the
// JetStream stream is created first, so a record always has its stream). Shutdown closes subscribers with 1001
// and waits for their goroutines.
package stream
