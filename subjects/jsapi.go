package subjects

// JetStream API subjects Switchyard requests itself, beyond what nats.go
// builds: reads that only a stream's leader answers. Read-only; both are
// answered by the NATS server.
const (
	// JSStreamInfoPrefix + <stream>: the stream's configuration and state,
	// with its cluster leader and replicas (the /health quorum watch).
	JSStreamInfoPrefix = "$JS.API.STREAM.INFO."
	// JSStreamMsgGetPrefix + <stream>: one stored message, answered by the
	// stream leader only (unlike $JS.API.DIRECT.GET, which any replica
	// answers); the job runners' read-your-writes of job records.
	JSStreamMsgGetPrefix = "$JS.API.STREAM.MSG.GET."
)

// JSStreamInfo is the stream info request subject of stream.
func JSStreamInfo(stream string) string { return JSStreamInfoPrefix + stream }

// JSStreamMsgGet is the leader's message-get request subject of stream.
func JSStreamMsgGet(stream string) string { return JSStreamMsgGetPrefix + stream }

// KVStream is the JetStream stream behind KV bucket bucket.
func KVStream(bucket string) string { return "KV_" + bucket }

// ObjectStoreStream is the JetStream stream behind object store bucket.
func ObjectStoreStream(bucket string) string { return "OBJ_" + bucket }

// KVKey is the subject key key of KV bucket bucket is stored under.
func KVKey(bucket, key string) string { return "$KV." + bucket + "." + key }
