package broker

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// Frame types. Outbound (broker to client): "message", "reply",
// "published", "error". Inbound (client to broker): "publish", "reply",
// "ack", "nack". The format is documented in README.md ("Message broker")
// and in doc.go; fields are only ever added, never renamed or removed.
const (
	typeMessage   = "message"
	typeReply     = "reply"
	typePublished = "published"
	typeError     = "error"
	typePublish   = "publish"
	typeAck       = "ack"
	typeNack      = "nack"
)

// Error codes of error frames.
const (
	codeBadFrame     = "bad_frame"     // not JSON, or a field of the wrong type
	codeUnknownType  = "unknown_type"  // "type" missing or not one of the inbound types
	codeBadRequest   = "bad_request"   // a field is missing or invalid
	codeUnknownID    = "unknown_id"    // ack/nack of no message awaiting an ack on this connection
	codeUnavailable  = "unavailable"   // NATS or JetStream could not take the message
	codeNoResponders = "no_responders" // a request reached no connection of the service
	codeTooLarge     = "payload_too_large"
)

// inFrame is any inbound frame; which fields count depends on Type.
type inFrame struct {
	Type          string          `json:"type"`
	Service       string          `json:"service"`
	Topic         string          `json:"topic"`
	Payload       json.RawMessage `json:"payload"`
	Persistent    bool            `json:"persistent"`
	Reply         bool            `json:"reply"`
	CorrelationID string          `json:"correlation_id"`
	ReplyTo       string          `json:"reply_to"`
	ID            string          `json:"id"`
	Ref           string          `json:"ref"`
}

// message is what a "message" or "reply" frame carries.
type message struct {
	Type          string // typeMessage or typeReply
	ID            string
	Service       string
	Topic         string
	From          string
	Payload       []byte // raw NATS payload: JSON is embedded, anything else becomes a JSON string
	TS            time.Time
	Persistent    bool
	Delivery      uint64 // persistent: delivery attempt, from 1
	ReplyTo       string // a request: where the reply frame goes
	CorrelationID string
}

// appendMessage appends m as one JSON object:
//
//	{"type":"message","id":"...","service":"...","topic":"...","from":"...",
//	 "payload":<json>,"ts":"<RFC 3339>","persistent":false}
//
// plus "delivery" for persistent messages and "reply_to" and
// "correlation_id" when set. It allocates nothing beyond growing buf.
func appendMessage(buf []byte, m *message) []byte {
	buf = append(buf, `{"type":`...)
	buf = appendString(buf, m.Type)
	buf = append(buf, `,"id":`...)
	buf = appendString(buf, m.ID)
	buf = append(buf, `,"service":`...)
	buf = appendString(buf, m.Service)
	buf = append(buf, `,"topic":`...)
	buf = appendString(buf, m.Topic)
	buf = append(buf, `,"from":`...)
	buf = appendString(buf, m.From)
	buf = append(buf, `,"payload":`...)
	buf = appendPayload(buf, m.Payload)
	buf = append(buf, `,"ts":"`...)
	buf = m.TS.UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","persistent":`...)
	buf = strconv.AppendBool(buf, m.Persistent)
	if m.Delivery > 0 {
		buf = append(buf, `,"delivery":`...)
		buf = strconv.AppendUint(buf, m.Delivery, 10)
	}
	if m.ReplyTo != "" {
		buf = append(buf, `,"reply_to":`...)
		buf = appendString(buf, m.ReplyTo)
	}
	if m.CorrelationID != "" {
		buf = append(buf, `,"correlation_id":`...)
		buf = appendString(buf, m.CorrelationID)
	}
	return append(buf, '}')
}

// outError is an "error" frame.
type outError struct {
	Type          string `json:"type"`
	Code          string `json:"code"`
	Message       string `json:"message"`
	Ref           string `json:"ref,omitempty"`
	ID            string `json:"id,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
}

// outPublished is a "published" frame: the answer to a publish frame that carried a ref.
type outPublished struct {
	Type       string `json:"type"`
	Ref        string `json:"ref"`
	ID         string `json:"id"`
	Persistent bool   `json:"persistent"`
}

func errorFrame(code, msg string, in *inFrame) []byte {
	e := outError{Type: typeError, Code: code, Message: msg}
	if in != nil {
		e.Ref, e.ID, e.CorrelationID = in.Ref, in.ID, in.CorrelationID
	}
	b, _ := json.Marshal(e)
	return b
}

// appendPayload embeds p as JSON: as is when it is valid JSON, null when
// empty, and as a JSON string otherwise. A frame never holds a raw line
// break (batched frames are split on them): in valid JSON one can only be
// whitespace between tokens, and becomes a space.
func appendPayload(buf, p []byte) []byte {
	switch {
	case len(p) == 0:
		return append(buf, "null"...)
	case validJSON(p):
		if bytes.IndexByte(p, '\n') < 0 && bytes.IndexByte(p, '\r') < 0 {
			return append(buf, p...)
		}
		start := len(buf)
		buf = append(buf, p...)
		for i := start; i < len(buf); i++ {
			if buf[i] == '\n' || buf[i] == '\r' {
				buf[i] = ' '
			}
		}
		return buf
	}
	return appendString(buf, string(p))
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
