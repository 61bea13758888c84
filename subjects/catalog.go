package subjects

// Entry names one item of the public contract: a subject pattern, a stream,
// a bucket, a consumer, a queue group or a header.
type Entry struct {
	Kind    string // "subject", "queue", "stream", "bucket", "object store", "consumer", "header"
	Pattern string // as written in subjects/README.md, e.g. "svc.<service>.<tokens>"
}

// Catalog lists every entry of the contract. subjects/README.md documents
// each of them; a test fails when the two disagree.
func Catalog() []Entry {
	return []Entry{
		{"subject", "svc.<service>.<tokens>"},
		{"queue", "svc.<service>"},
		{"subject", "jobs.<service>.<tokens>"},
		{"consumer", "jobs-<service>"},
		{"subject", "cache.<op>.<namespace>"},
		{"subject", "stream.<id>.in"},
		{"subject", "stream.<id>.out"},
		{"subject", "broker.svc.<service>.<topic>"},
		{"subject", "broker.presence.<service>"},
		{"subject", "broker.persist.<service>.<topic>"},
		{"subject", "broker.dead.<service>.<topic>"},
		{"subject", "broker.reply.<node>.<conn>.<correlation>"},
		{"subject", "broker.undelivered.<node>.<path>"},
		{"subject", BrokerMaxDeliveries},
		{"queue", "broker.svc.<service>"},
		{"queue", BrokerAdvisoryQueue},
		{"stream", StreamBrokerDead},
		{"consumer", "broker-<service>"},
		{"header", HeaderFrom},
		{"header", HeaderTime},
		{"header", HeaderOrigin},
		{"header", HeaderCorrelationID},
		{"header", HeaderDeliveries},
		{"subject", DiscoveryPing},
		{"subject", DiscoveryInfo},
		{"subject", DiscoveryStats},
		{"stream", StreamJobs},
		{"stream", StreamPrefix + "<id>"},
		{"consumer", StreamProcessConsumer},
		{"header", HeaderStreamID},
		{"header", HeaderStreamSeq},
		{"header", HeaderStreamType},
		{"stream", StreamBroker},
		{"bucket", BucketJobs},
		{"bucket", BucketStreams},
		{"bucket", BucketServices},
		{"bucket", BucketCache},
		{"object store", ObjectStoreJobResults},
		{"header", HeaderMethod},
		{"header", HeaderPath},
		{"header", HeaderQuery},
		{"header", HeaderStatus},
		{"header", HeaderJobID},
		{"header", HeaderErrorCode},
		{"header", HeaderRetryAfter},
		{"header", HeaderMicroError},
		{"header", HeaderMicroErrorCode},
		{"header", HeaderMsgID},
		{"header", HeaderDeadline},
		{"micro", ProxyServiceName},
		{"subject", ProxyStatus},
		{"subject", JobsMaxDeliveries},
		{"queue", JobsAdvisoryQueue},
	}
}
