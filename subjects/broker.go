package subjects

import (
	"fmt"
	"strings"
)

// The broker's subject spaces, under RootBroker:
//
//	broker.svc.<service>.<topic>             transient message (core NATS)
//	broker.persist.<service>.<topic>         persistent message (stream BROKER)
//	broker.dead.<service>.<topic>            dead letter (stream BROKER_DEAD)
//	broker.presence.<service>                join and leave events
//	broker.reply.<node>.<conn>.<correlation> replies to a connection's requests
//	broker.undelivered.<node>.<path>         no-responders of transient publishes
const (
	brokerTransient   = RootBroker + "." + RootService
	brokerPersistent  = RootBroker + ".persist"
	brokerDead        = RootBroker + ".dead"
	brokerReply       = RootBroker + ".reply"
	brokerUndelivered = RootBroker + ".undelivered"
)

// StreamBrokerDead holds broker.dead.>: persistent messages that used up
// their delivery attempts without an ack.
const StreamBrokerDead = "BROKER_DEAD"

// BrokerMaxDeliveries is the JetStream advisory published when a persistent
// broker message used up its delivery attempts; broker edges turn it into a
// dead letter. BrokerAdvisoryQueue is their queue group, so one edge
// handles each advisory.
const (
	BrokerMaxDeliveries = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + StreamBroker + ".*"
	BrokerAdvisoryQueue = "switchyard-broker"
)

// Broker message headers. The payload of a broker message is the message
// payload itself; everything else travels in these headers (and HeaderMsgID,
// the message id).
const (
	// HeaderFrom names the service that sent a broker message (absent: anonymous).
	HeaderFrom = "Switchyard-From"
	// HeaderTime is when a broker message was published, in Unix nanoseconds.
	HeaderTime = "Switchyard-Time"
	// HeaderOrigin is the path a broker message entered by: "http" or "ws".
	// Absent means it was published straight to NATS.
	HeaderOrigin = "Switchyard-Origin"
	// HeaderCorrelationID is a request's correlation id, echoed on its reply.
	HeaderCorrelationID = "Switchyard-Correlation-Id"
	// HeaderDeliveries is the number of delivery attempts a dead letter had.
	HeaderDeliveries = "Switchyard-Deliveries"
)

// MaxTopicLen bounds a broker topic written with dots ("rooms.lobby").
const MaxTopicLen = 256

// BrokerTopic splits a topic written with dots ("rooms.lobby") into its
// tokens. It returns ErrInvalid for an empty topic, an empty token, more
// than MaxTokens tokens, a token ValidToken refuses, or more than
// MaxTopicLen bytes.
func BrokerTopic(topic string) ([]string, error) {
	if topic == "" || len(topic) > MaxTopicLen {
		return nil, fmt.Errorf("%w: topic %q must be 1 to %d characters", ErrInvalid, topic, MaxTopicLen)
	}
	toks := strings.Split(topic, ".")
	if len(toks) > MaxTokens {
		return nil, fmt.Errorf("%w: topic %q has more than %d tokens", ErrInvalid, topic, MaxTokens)
	}
	for _, t := range toks {
		if err := ValidToken(t); err != nil {
			return nil, fmt.Errorf("topic %q: %w", topic, err)
		}
	}
	return toks, nil
}

// BrokerServiceAll returns broker.svc.<service>.>, every transient message for service.
func BrokerServiceAll(service string) (string, error) {
	if err := ValidName(service); err != nil {
		return "", err
	}
	return brokerTransient + "." + service + ".>", nil
}

// BrokerQueue returns broker.svc.<service>, the queue group of the broker
// edges holding queue-mode connections of service.
func BrokerQueue(service string) (string, error) {
	if err := ValidName(service); err != nil {
		return "", err
	}
	return brokerTransient + "." + service, nil
}

// BrokerPersistent returns broker.persist.<service>.<topic tokens...>, a
// persistent message for service, stored in StreamBroker.
func BrokerPersistent(service string, topic ...string) (string, error) {
	return join(brokerPersistent, service, topic)
}

// BrokerPersistentAll returns broker.persist.<service>.>, the filter of the
// service's consumer.
func BrokerPersistentAll(service string) (string, error) {
	if err := ValidName(service); err != nil {
		return "", err
	}
	return brokerPersistent + "." + service + ".>", nil
}

// BrokerDead returns broker.dead.<service>.<topic tokens...>, the dead
// letter of a persistent message, stored in StreamBrokerDead.
func BrokerDead(service string, topic ...string) (string, error) {
	return join(brokerDead, service, topic)
}

// BrokerConsumer returns broker-<service>, the durable consumer on
// StreamBroker that every broker edge holding connections of service shares.
func BrokerConsumer(service string) (string, error) {
	if err := ValidName(service); err != nil {
		return "", err
	}
	return "broker-" + service, nil
}

// BrokerReply returns broker.reply.<node>.<conn>.<correlation>, the reply
// subject of a request that connection conn of broker edge node sent with
// correlation id correlation (a ValidToken).
func BrokerReply(node, conn, correlation string) (string, error) {
	if err := ValidName(node); err != nil {
		return "", err
	}
	if err := ValidName(conn); err != nil {
		return "", err
	}
	if err := ValidToken(correlation); err != nil {
		return "", err
	}
	return brokerReply + "." + node + "." + conn + "." + correlation, nil
}

// BrokerReplyAll returns broker.reply.<node>.>, what broker edge node subscribes to for replies.
func BrokerReplyAll(node string) (string, error) {
	if err := ValidName(node); err != nil {
		return "", err
	}
	return brokerReply + "." + node + ".>", nil
}

// ParseBrokerReply returns the connection and correlation id of a
// broker.reply.<node>.<conn>.<correlation> subject of broker edge node.
func ParseBrokerReply(node, subject string) (conn, correlation string, err error) {
	rest, ok := strings.CutPrefix(subject, brokerReply+"."+node+".")
	if ok {
		conn, correlation, ok = strings.Cut(rest, ".")
	}
	if !ok || conn == "" || correlation == "" || strings.Contains(correlation, ".") {
		return "", "", fmt.Errorf("%w: %q is not a reply subject of broker %s", ErrInvalid, subject, node)
	}
	return conn, correlation, nil
}

// ValidReplyTo reports whether a reply frame may be published to s: a
// broker.reply.> subject or a NATS client's inbox (_INBOX.>), with no
// wildcard and at most 512 characters.
func ValidReplyTo(s string) error {
	if len(s) > 512 || !strings.HasPrefix(s, brokerReply+".") && !strings.HasPrefix(s, "_INBOX.") {
		return fmt.Errorf("%w: reply_to %q is not a reply subject", ErrInvalid, s)
	}
	for _, t := range strings.Split(s, ".") {
		if err := ValidToken(t); err != nil {
			return fmt.Errorf("reply_to: %w", err)
		}
	}
	return nil
}

// BrokerUndelivered returns broker.undelivered.<node>.<path>, the reply
// subject broker edge node sets on a transient message it publishes for a
// client on path ("http" or "ws"): NATS answers there with a no-responders
// status (header Nats-Subject: the message's subject) when no broker edge
// holds a connection of the service.
func BrokerUndelivered(node, path string) (string, error) {
	if err := ValidName(node); err != nil {
		return "", err
	}
	if err := ValidName(path); err != nil {
		return "", err
	}
	return brokerUndelivered + "." + node + "." + path, nil
}

// BrokerUndeliveredAll returns broker.undelivered.<node>.*, what broker edge node subscribes to.
func BrokerUndeliveredAll(node string) (string, error) {
	if err := ValidName(node); err != nil {
		return "", err
	}
	return brokerUndelivered + "." + node + ".*", nil
}

// IsBrokerUndelivered reports whether subject is a broker.undelivered.>
// subject: a message carrying it as its reply subject is not a request.
func IsBrokerUndelivered(subject string) bool {
	return strings.HasPrefix(subject, brokerUndelivered+".")
}

// PresenceKey returns <service>.<node>, the key of one broker edge's
// presence record of service in BucketServices.
func PresenceKey(service, node string) (string, error) {
	if err := ValidName(service); err != nil {
		return "", err
	}
	if err := ValidName(node); err != nil {
		return "", err
	}
	return service + "." + node, nil
}

// PresenceKeySubject returns $KV.services.<service>.<node>, the stream
// subject of a presence key, for a put with a per-message TTL.
func PresenceKeySubject(service, node string) (string, error) {
	k, err := PresenceKey(service, node)
	if err != nil {
		return "", err
	}
	return "$KV." + BucketServices + "." + k, nil
}

// BrokerMessage is a broker subject taken apart.
type BrokerMessage struct {
	Service    string
	Topic      string // tokens joined with dots
	Persistent bool   // broker.persist.> rather than broker.svc.>
	Dead       bool   // broker.dead.>
}

// ParseBroker takes apart a broker.svc.>, broker.persist.> or broker.dead.>
// subject as NATS delivers it. It returns ErrInvalid for any other subject
// or an invalid service name.
func ParseBroker(subject string) (BrokerMessage, error) {
	var m BrokerMessage
	rest, ok := strings.CutPrefix(subject, brokerTransient+".")
	if !ok {
		if rest, ok = strings.CutPrefix(subject, brokerPersistent+"."); ok {
			m.Persistent = true
		} else if rest, ok = strings.CutPrefix(subject, brokerDead+"."); ok {
			m.Dead = true
		} else {
			return m, fmt.Errorf("%w: %q is not a broker message subject", ErrInvalid, subject)
		}
	}
	svc, topic, ok := strings.Cut(rest, ".")
	if !ok {
		return m, fmt.Errorf("%w: %q has no topic", ErrInvalid, subject)
	}
	if err := ValidName(svc); err != nil {
		return m, err
	}
	// A subject NATS delivered holds no empty token and no wildcard, so
	// the topic needs no further check.
	if topic == "" {
		return m, fmt.Errorf("%w: %q has an empty topic", ErrInvalid, subject)
	}
	m.Service, m.Topic = svc, topic
	return m, nil
}
