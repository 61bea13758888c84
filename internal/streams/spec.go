package streams

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchyard/switchyard/subjects"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrSpec: a create request with an unknown type or bad options (400).
	ErrSpec = errors.New("invalid stream spec")
	// ErrChunk: a chunk whose content does not hold together for its
	// stream's type: truncated image, wrong frame size, bad JSON (400).
	ErrChunk = errors.New("invalid chunk")
	// ErrMedia: a chunk of another media type than its stream's, by its
	// Content-Type or its signature (415).
	ErrMedia = errors.New("unsupported media type")
	// ErrNotFound: no stream has the id, or it is being deleted (404).
	ErrNotFound = errors.New("stream not found")
	// ErrExists: Create found the id taken.
	ErrExists = errors.New("stream exists")
	// ErrConflict: a compare-and-set lost to a concurrent writer.
	ErrConflict = errors.New("stream record changed concurrently")
)

// Type is a stream's kind of chunks.
type Type string

// Stream types.
const (
	Vision     Type = "vision"
	Audio      Type = "audio"
	Parameters Type = "parameters"
)

// Types lists every stream type.
var Types = []Type{Vision, Audio, Parameters}

// Vision formats and audio codecs.
const (
	FormatJPEG = "jpeg"
	FormatPNG  = "png"
	FormatRaw  = "raw"

	CodecPCM  = "pcm_s16le"
	CodecWAV  = "wav"
	CodecOpus = "opus"
)

// Bounds of the per-type options.
const (
	MaxDimension = 1 << 15 // width and height of a raw frame
	MaxChannels  = 16      // image or audio channels
	MaxRate      = 384000  // audio sample rate, Hz
)

// Spec is what POST /stream/create declares. The zero value of every
// optional field means "not set": Normalize fills in defaults.
type Spec struct {
	Type Type   `json:"type"`
	Name string `json:"name,omitempty"`
	// Vision: Format is jpeg (default), png or raw; raw needs Width,
	// Height and Channels (1 to 16), and each chunk is exactly one frame
	// of Width*Height*Channels bytes.
	Format string `json:"format,omitempty"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
	// Audio: Codec is pcm_s16le (default, needs SampleRate and Channels),
	// wav or opus (Ogg pages). Channels is shared with raw vision.
	Codec      string `json:"codec,omitempty"`
	SampleRate int    `json:"sample_rate,omitempty"`
	Channels   int    `json:"channels,omitempty"`
	// Service, when set, processes every chunk: it is sent to
	// svc.<service>.<Path tokens> and the answer stored on stream.<id>.out.
	Service string `json:"service,omitempty"`
	// Path is the HTTP path the service receives (default /stream/<type>).
	Path string `json:"path,omitempty"`
	// Retention bounds what the stream keeps for replay (defaults from config).
	Retention Retention `json:"retention"`
}

// Retention bounds one stream's stored chunks and results.
type Retention struct {
	// MaxAge of a stored chunk, e.g. "30m"; zero: the configured default.
	MaxAge Duration `json:"max_age,omitempty"`
	// MaxBytes kept; when full, chunks are refused (507) until old ones
	// age out. Zero: the configured default.
	MaxBytes int64 `json:"max_bytes,omitempty"`
}

// Limits are the bounds Normalize applies.
type Limits struct {
	DefaultMaxAge, MaxMaxAge     time.Duration
	DefaultMaxBytes, MaxMaxBytes int64
}

// Normalize checks s, fills in defaults, and returns ErrSpec (wrapped,
// naming the field) for anything it refuses.
func (s *Spec) Normalize(l Limits) error {
	bad := func(format string, a ...any) error { return fmt.Errorf("%w: "+format, append([]any{ErrSpec}, a...)...) }
	if len(s.Name) > 128 {
		return bad("name is longer than 128 characters")
	}
	switch s.Type {
	case Vision:
		if s.Codec != "" || s.SampleRate != 0 {
			return bad("codec and sample_rate are audio options")
		}
		if s.Format == "" {
			s.Format = FormatJPEG
		}
		switch s.Format {
		case FormatJPEG, FormatPNG:
			if s.Width != 0 || s.Height != 0 || s.Channels != 0 {
				return bad("width, height and channels apply to format raw only")
			}
		case FormatRaw:
			if s.Width < 1 || s.Width > MaxDimension || s.Height < 1 || s.Height > MaxDimension {
				return bad("format raw needs width and height from 1 to %d", MaxDimension)
			}
			if s.Channels < 1 || s.Channels > MaxChannels {
				return bad("format raw needs channels from 1 to %d", MaxChannels)
			}
		default:
			return bad("format %q is not jpeg, png or raw", s.Format)
		}
	case Audio:
		if s.Format != "" || s.Width != 0 || s.Height != 0 {
			return bad("format, width and height are vision options")
		}
		if s.Codec == "" {
			s.Codec = CodecPCM
		}
		switch s.Codec {
		case CodecPCM:
			if s.SampleRate < 1 || s.SampleRate > MaxRate {
				return bad("codec pcm_s16le needs sample_rate from 1 to %d", MaxRate)
			}
			if s.Channels < 1 || s.Channels > MaxChannels {
				return bad("codec pcm_s16le needs channels from 1 to %d", MaxChannels)
			}
		case CodecWAV, CodecOpus:
			// Optional: when set, each chunk must match them.
			if s.SampleRate < 0 || s.SampleRate > MaxRate || s.Channels < 0 || s.Channels > MaxChannels {
				return bad("sample_rate or channels out of range")
			}
			if s.Codec == CodecOpus && s.SampleRate != 0 {
				return bad("codec opus takes no sample_rate")
			}
		default:
			return bad("codec %q is not pcm_s16le, wav or opus", s.Codec)
		}
	case Parameters:
		if s.Format != "" || s.Codec != "" || s.Width != 0 || s.Height != 0 || s.Channels != 0 || s.SampleRate != 0 {
			return bad("type parameters takes no format or codec options")
		}
	case "":
		return bad("type is required (vision, audio or parameters)")
	default:
		return bad("type %q is not vision, audio or parameters", s.Type)
	}
	if s.Service != "" {
		if err := subjects.ValidName(s.Service); err != nil {
			return bad("service: %v", err)
		}
		if s.Path == "" {
			s.Path = "/stream/" + string(s.Type)
		}
		if !strings.HasPrefix(s.Path, "/") || len(s.Path) > 256 {
			return bad("path must start with / and be at most 256 characters")
		}
		for i := 0; i < len(s.Path); i++ {
			if c := s.Path[i]; c <= ' ' || c >= 0x7f {
				return bad("path holds a control, space or non-ASCII byte")
			}
		}
	} else if s.Path != "" {
		return bad("path needs a service")
	}
	r := &s.Retention
	switch {
	case r.MaxAge < 0:
		return bad("retention.max_age is negative")
	case r.MaxAge == 0:
		r.MaxAge = Duration(l.DefaultMaxAge)
	case l.MaxMaxAge > 0 && r.MaxAge.D() > l.MaxMaxAge:
		return bad("retention.max_age %s exceeds %s", r.MaxAge.D(), l.MaxMaxAge)
	case r.MaxAge.D() < time.Second:
		return bad("retention.max_age must be at least 1s")
	}
	switch {
	case r.MaxBytes < 0:
		return bad("retention.max_bytes is negative")
	case r.MaxBytes == 0:
		r.MaxBytes = l.DefaultMaxBytes
	case l.MaxMaxBytes > 0 && r.MaxBytes > l.MaxMaxBytes:
		return bad("retention.max_bytes %d exceeds %d", r.MaxBytes, l.MaxMaxBytes)
	case r.MaxBytes < 1<<10:
		return bad("retention.max_bytes must be at least 1024")
	}
	return nil
}

// Binary reports whether the stream's chunks are binary (sent to
// subscribers as binary frames) rather than JSON text.
func (s *Spec) Binary() bool { return s.Type != Parameters }

var idEnc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a random stream id: 16 characters of [a-z2-7], a valid
// subject token and KV key.
func NewID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return idEnc.EncodeToString(b[:])
}

// ValidID reports whether id can name a stream (see subjects.ValidName).
func ValidID(id string) bool { return subjects.ValidName(id) == nil }

// Duration is a time.Duration written in JSON as a Go duration string
// ("90s", "1h30m"); a number is read as seconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// UnmarshalJSON reads a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		v, err := time.ParseDuration(strings.Trim(s, `"`))
		if err != nil {
			return fmt.Errorf("duration %s: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if _, err := fmt.Sscan(s, &secs); err != nil || secs > 1e9 || secs < -1e9 {
		return fmt.Errorf("duration %s: want a string like \"30m\" or seconds", s)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}
