package streams

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"mime"
	"strings"
)

var (
	pngSig  = []byte("\x89PNG\r\n\x1a\n")
	pngIEND = []byte("\x00\x00\x00\x00IEND\xaeB`\x82")
	jpegSOI = []byte{0xff, 0xd8, 0xff}
	jpegEOI = []byte{0xff, 0xd9}
	oggSig  = []byte("OggS")
)

// mediaTypes are the Content-Types each stream kind accepts besides none
// at all; application/octet-stream is accepted by every binary kind.
var mediaTypes = map[string][]string{
	FormatJPEG: {"image/jpeg"},
	FormatPNG:  {"image/png"},
	FormatRaw:  {},
	CodecPCM:   {"audio/l16", "audio/pcm"},
	CodecWAV:   {"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"},
	CodecOpus:  {"audio/ogg", "audio/opus"},
}

// ContentType is the Content-Type chunks of s are stored and delivered with.
func (s *Spec) ContentType() string {
	switch s.kind() {
	case FormatJPEG:
		return "image/jpeg"
	case FormatPNG:
		return "image/png"
	case CodecWAV:
		return "audio/wav"
	case CodecOpus:
		return "audio/ogg"
	case "parameters":
		return "application/json"
	}
	return "application/octet-stream"
}

func (s *Spec) kind() string {
	switch s.Type {
	case Vision:
		return s.Format
	case Audio:
		return s.Codec
	}
	return "parameters"
}

// CheckChunk checks one chunk against the stream's type. contentType is
// the request's Content-Type ("" when absent). It returns ErrMedia
// (wrapped) when the chunk is of another media type, by its Content-Type
// or its signature, and ErrChunk when its content is malformed for the
// type: a truncated image, a raw frame of the wrong size, PCM that is not
// a whole number of frames, a WAV header that disagrees with the stream,
// an Ogg page that does not parse, parameters that are not a JSON object.
// An empty chunk is ErrChunk.
func (s *Spec) CheckChunk(contentType string, b []byte) error {
	kind := s.kind()
	if err := s.checkMediaType(kind, contentType); err != nil {
		return err
	}
	if len(b) == 0 {
		return fmt.Errorf("%w: empty chunk", ErrChunk)
	}
	switch kind {
	case FormatJPEG:
		return checkJPEG(b)
	case FormatPNG:
		return checkPNG(b)
	case FormatRaw:
		if want := s.Width * s.Height * s.Channels; len(b) != want {
			return fmt.Errorf("%w: raw frame is %d bytes, want width*height*channels = %d", ErrChunk, len(b), want)
		}
	case CodecPCM:
		if sniff(b) != "" {
			return fmt.Errorf("%w: chunk is %s, the stream takes raw pcm_s16le", ErrMedia, sniff(b))
		}
		if frame := 2 * s.Channels; len(b)%frame != 0 {
			return fmt.Errorf("%w: %d bytes is not a whole number of %d-byte frames", ErrChunk, len(b), frame)
		}
	case CodecWAV:
		return s.checkWAV(b)
	case CodecOpus:
		return s.checkOgg(b)
	default:
		return checkParameters(b)
	}
	return nil
}

func (s *Spec) checkMediaType(kind, contentType string) error {
	if contentType == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("%w: bad Content-Type %q", ErrMedia, contentType)
	}
	if kind == "parameters" {
		if mt == "application/json" || strings.HasSuffix(mt, "+json") {
			return nil
		}
		return fmt.Errorf("%w: Content-Type %s, a parameters stream takes application/json", ErrMedia, mt)
	}
	if mt == "application/octet-stream" {
		return nil
	}
	for _, ok := range mediaTypes[kind] {
		if mt == ok {
			return nil
		}
	}
	return fmt.Errorf("%w: Content-Type %s, this stream takes %s", ErrMedia, mt, s.ContentType())
}

// sniff names the format of b by its signature ("" when none is known).
func sniff(b []byte) string {
	switch {
	case bytes.HasPrefix(b, pngSig):
		return "png"
	case bytes.HasPrefix(b, jpegSOI):
		return "jpeg"
	case bytes.HasPrefix(b, []byte("RIFF")) && len(b) >= 12 && string(b[8:12]) == "WAVE":
		return "wav"
	case bytes.HasPrefix(b, oggSig):
		return "ogg"
	}
	return ""
}

func wrongSig(b []byte, want string) error {
	if got := sniff(b); got != "" {
		return fmt.Errorf("%w: chunk is %s, the stream takes %s", ErrMedia, got, want)
	}
	return fmt.Errorf("%w: no %s signature", ErrMedia, want)
}

func checkJPEG(b []byte) error {
	if !bytes.HasPrefix(b, jpegSOI) {
		return wrongSig(b, "jpeg")
	}
	if len(b) < 4 || !bytes.HasSuffix(b, jpegEOI) {
		return fmt.Errorf("%w: jpeg is truncated (no end-of-image marker)", ErrChunk)
	}
	return nil
}

func checkPNG(b []byte) error {
	if !bytes.HasPrefix(b, pngSig) {
		return wrongSig(b, "png")
	}
	// The first chunk must be a 13-byte IHDR, the last an IEND.
	if len(b) < len(pngSig)+25+len(pngIEND) || binary.BigEndian.Uint32(b[8:12]) != 13 || string(b[12:16]) != "IHDR" {
		return fmt.Errorf("%w: png has no IHDR header", ErrChunk)
	}
	if w, h := binary.BigEndian.Uint32(b[16:20]), binary.BigEndian.Uint32(b[20:24]); w == 0 || h == 0 {
		return fmt.Errorf("%w: png is %dx%d", ErrChunk, w, h)
	}
	if !bytes.HasSuffix(b, pngIEND) {
		return fmt.Errorf("%w: png is truncated (no IEND chunk)", ErrChunk)
	}
	return nil
}

// checkWAV reads the RIFF header: a "fmt " chunk before "data", whose
// channels and sample rate match the stream's when it sets them, and a
// data chunk of whole frames.
func (s *Spec) checkWAV(b []byte) error {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return wrongSig(b, "wav")
	}
	var channels, blockAlign uint16
	var rate uint32
	haveFmt := false
	for off := 12; ; {
		if off+8 > len(b) {
			return fmt.Errorf("%w: wav has no data chunk", ErrChunk)
		}
		id, size := string(b[off:off+4]), int64(binary.LittleEndian.Uint32(b[off+4:off+8]))
		body := off + 8
		switch id {
		case "fmt ":
			if size < 16 || int64(body)+16 > int64(len(b)) {
				return fmt.Errorf("%w: wav fmt chunk is short", ErrChunk)
			}
			format := binary.LittleEndian.Uint16(b[body:])
			channels = binary.LittleEndian.Uint16(b[body+2:])
			rate = binary.LittleEndian.Uint32(b[body+4:])
			blockAlign = binary.LittleEndian.Uint16(b[body+12:])
			if format != 1 && format != 3 && format != 0xfffe {
				return fmt.Errorf("%w: wav format %d is not PCM or float", ErrChunk, format)
			}
			if channels == 0 || rate == 0 || blockAlign == 0 {
				return fmt.Errorf("%w: wav header has zero channels, rate or block size", ErrChunk)
			}
			if s.Channels != 0 && int(channels) != s.Channels {
				return fmt.Errorf("%w: wav has %d channels, the stream %d", ErrChunk, channels, s.Channels)
			}
			if s.SampleRate != 0 && int(rate) != s.SampleRate {
				return fmt.Errorf("%w: wav is %d Hz, the stream %d Hz", ErrChunk, rate, s.SampleRate)
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return fmt.Errorf("%w: wav data before fmt", ErrChunk)
			}
			// A streamed WAV may declare a data size larger than this
			// chunk (or 0xFFFFFFFF); what is here must be whole frames.
			avail := int64(len(b) - body)
			if size < avail {
				avail = size
			}
			if avail%int64(blockAlign) != 0 {
				return fmt.Errorf("%w: wav data is %d bytes, not whole %d-byte frames", ErrChunk, avail, blockAlign)
			}
			return nil
		}
		next := int64(body) + size + size&1
		if next > int64(len(b)) {
			return fmt.Errorf("%w: wav chunk %q runs past the end", ErrChunk, id)
		}
		off = int(next)
	}
}

// checkOgg requires one or more whole Ogg pages (RFC 3533): each starts
// with "OggS", version 0, and its segment table accounts for its body.
// When the stream sets channels, an OpusHead page must agree with it.
func (s *Spec) checkOgg(b []byte) error {
	if !bytes.HasPrefix(b, oggSig) {
		return wrongSig(b, "ogg (opus)")
	}
	for off := 0; off < len(b); {
		if len(b)-off < 27 || string(b[off:off+4]) != "OggS" {
			return fmt.Errorf("%w: bytes at offset %d are not an Ogg page", ErrChunk, off)
		}
		if b[off+4] != 0 {
			return fmt.Errorf("%w: Ogg version %d", ErrChunk, b[off+4])
		}
		nseg := int(b[off+26])
		if len(b)-off < 27+nseg {
			return fmt.Errorf("%w: Ogg page header is truncated", ErrChunk)
		}
		body := 0
		for _, l := range b[off+27 : off+27+nseg] {
			body += int(l)
		}
		start := off + 27 + nseg
		if len(b)-start < body {
			return fmt.Errorf("%w: Ogg page body is truncated", ErrChunk)
		}
		if p := b[start : start+body]; bytes.HasPrefix(p, []byte("OpusHead")) && len(p) >= 10 && s.Channels != 0 && int(p[9]) != s.Channels {
			return fmt.Errorf("%w: OpusHead has %d channels, the stream %d", ErrChunk, p[9], s.Channels)
		}
		off = start + body
	}
	return nil
}

func checkParameters(b []byte) error {
	t := bytes.TrimLeft(b, " \t\r\n")
	if len(t) == 0 || t[0] != '{' {
		if len(t) > 0 && sniff(t) != "" {
			return fmt.Errorf("%w: chunk is %s, a parameters stream takes a JSON object", ErrMedia, sniff(t))
		}
		return fmt.Errorf("%w: parameters must be a JSON object", ErrChunk)
	}
	if !json.Valid(b) {
		return fmt.Errorf("%w: parameters are not valid JSON", ErrChunk)
	}
	return nil
}
