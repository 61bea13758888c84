package streams_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/png"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/streams"
)

var limits = streams.Limits{DefaultMaxAge: time.Hour, MaxMaxAge: 24 * time.Hour, DefaultMaxBytes: 1 << 20, MaxMaxBytes: 1 << 30}

func spec(t testing.TB, s streams.Spec) *streams.Spec {
	t.Helper()
	if err := s.Normalize(limits); err != nil {
		t.Fatalf("normalize %+v: %v", s, err)
	}
	return &s
}

// PNG returns a real 2x2 PNG.
func PNG(t testing.TB) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var jpeg = []byte{0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0, 1, 0xff, 0xd9}

// WAV returns a WAV header with the given format and data bytes.
func WAV(channels, rate int, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF")
	_ = binary.Write(&b, binary.LittleEndian, uint32(36+len(data)))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(channels), uint32(rate),
		uint32(rate * channels * 2), uint16(channels * 2), uint16(16)} {
		_ = binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(data)))
	b.Write(data)
	return b.Bytes()
}

// Ogg returns one Ogg page holding body.
func Ogg(body []byte) []byte {
	h := []byte("OggS")
	h = append(h, 0, 2)
	h = append(h, make([]byte, 20)...) // granule, serial, seq, crc
	var segs []byte
	n := len(body)
	for n >= 255 {
		segs = append(segs, 255)
		n -= 255
	}
	segs = append(segs, byte(n))
	h = append(h, byte(len(segs)))
	h = append(h, segs...)
	return append(h, body...)
}

func TestNormalize(t *testing.T) {
	bad := []streams.Spec{
		{},
		{Type: "video"},
		{Type: streams.Vision, Format: "gif"},
		{Type: streams.Vision, Format: streams.FormatRaw, Width: 2, Height: 2},
		{Type: streams.Vision, Format: streams.FormatRaw, Width: 0, Height: 2, Channels: 3},
		{Type: streams.Vision, Format: streams.FormatRaw, Width: 1 << 16, Height: 2, Channels: 3},
		{Type: streams.Vision, Format: streams.FormatJPEG, Width: 2},
		{Type: streams.Vision, Codec: streams.CodecPCM},
		{Type: streams.Audio},
		{Type: streams.Audio, Codec: streams.CodecPCM, SampleRate: 48000},
		{Type: streams.Audio, Codec: "mp3"},
		{Type: streams.Audio, Codec: streams.CodecOpus, SampleRate: 48000},
		{Type: streams.Audio, Codec: streams.CodecWAV, Format: "png"},
		{Type: streams.Parameters, Channels: 1},
		{Type: streams.Parameters, Service: "Bad.Name"},
		{Type: streams.Parameters, Path: "/x"},
		{Type: streams.Parameters, Service: "ai", Path: "no-slash"},
		{Type: streams.Parameters, Retention: streams.Retention{MaxAge: streams.Duration(48 * time.Hour)}},
		{Type: streams.Parameters, Retention: streams.Retention{MaxAge: -1}},
		{Type: streams.Parameters, Retention: streams.Retention{MaxBytes: 10}},
		{Type: streams.Parameters, Retention: streams.Retention{MaxBytes: 2 << 30}},
	}
	for _, s := range bad {
		if err := s.Normalize(limits); !errors.Is(err, streams.ErrSpec) {
			t.Errorf("%+v: err %v, want ErrSpec", s, err)
		}
	}
	s := spec(t, streams.Spec{Type: streams.Vision, Service: "vision"})
	if s.Format != streams.FormatJPEG || s.Path != "/stream/vision" || s.Retention.MaxAge.D() != time.Hour || s.Retention.MaxBytes != 1<<20 {
		t.Errorf("defaults not applied: %+v", s)
	}
	if a := spec(t, streams.Spec{Type: streams.Audio, SampleRate: 16000, Channels: 1}); a.Codec != streams.CodecPCM {
		t.Errorf("audio codec default %q", a.Codec)
	}
}

func TestCheckChunk(t *testing.T) {
	raw := spec(t, streams.Spec{Type: streams.Vision, Format: streams.FormatRaw, Width: 4, Height: 2, Channels: 3})
	pngS := spec(t, streams.Spec{Type: streams.Vision, Format: streams.FormatPNG})
	jpegS := spec(t, streams.Spec{Type: streams.Vision, Format: streams.FormatJPEG})
	pcm := spec(t, streams.Spec{Type: streams.Audio, Codec: streams.CodecPCM, SampleRate: 16000, Channels: 2})
	wav := spec(t, streams.Spec{Type: streams.Audio, Codec: streams.CodecWAV, SampleRate: 16000, Channels: 1})
	opus := spec(t, streams.Spec{Type: streams.Audio, Codec: streams.CodecOpus, Channels: 2})
	params := spec(t, streams.Spec{Type: streams.Parameters})
	p := PNG(t)
	opusHead := append([]byte("OpusHead\x01\x02"), make([]byte, 9)...)
	cases := []struct {
		name string
		s    *streams.Spec
		ct   string
		body []byte
		want error
	}{
		{"png ok", pngS, "image/png", p, nil},
		{"png octet-stream", pngS, "application/octet-stream", p, nil},
		{"png no content type", pngS, "", p, nil},
		{"png truncated", pngS, "", p[:len(p)-5], streams.ErrChunk},
		{"png given jpeg", pngS, "", jpeg, streams.ErrMedia},
		{"png content type jpeg", pngS, "image/jpeg", p, streams.ErrMedia},
		{"png garbage", pngS, "", []byte("hello"), streams.ErrMedia},
		{"empty", pngS, "", nil, streams.ErrChunk},
		{"jpeg ok", jpegS, "image/jpeg", jpeg, nil},
		{"jpeg truncated", jpegS, "", jpeg[:8], streams.ErrChunk},
		{"jpeg given png", jpegS, "", p, streams.ErrMedia},
		{"raw ok", raw, "", make([]byte, 24), nil},
		{"raw short", raw, "", make([]byte, 23), streams.ErrChunk},
		{"raw long", raw, "", make([]byte, 25), streams.ErrChunk},
		{"raw content type", raw, "image/png", make([]byte, 24), streams.ErrMedia},
		{"pcm ok", pcm, "audio/L16", make([]byte, 16), nil},
		{"pcm half frame", pcm, "", make([]byte, 6), streams.ErrChunk},
		{"pcm given wav", pcm, "", WAV(2, 16000, make([]byte, 8)), streams.ErrMedia},
		{"wav ok", wav, "audio/wav", WAV(1, 16000, make([]byte, 8)), nil},
		{"wav wrong rate", wav, "", WAV(1, 8000, make([]byte, 8)), streams.ErrChunk},
		{"wav wrong channels", wav, "", WAV(2, 16000, make([]byte, 8)), streams.ErrChunk},
		{"wav odd data", wav, "", WAV(1, 16000, make([]byte, 7)), streams.ErrChunk},
		{"wav no data chunk", wav, "", WAV(1, 16000, nil)[:36], streams.ErrChunk},
		{"wav given ogg", wav, "", Ogg([]byte("x")), streams.ErrMedia},
		{"opus ok", opus, "audio/ogg", append(Ogg(opusHead), Ogg(make([]byte, 300))...), nil},
		{"opus wrong channels", opus, "", Ogg(append([]byte("OpusHead\x01\x01"), make([]byte, 9)...)), streams.ErrChunk},
		{"opus truncated page", opus, "", Ogg(make([]byte, 300))[:200], streams.ErrChunk},
		{"opus trailing garbage", opus, "", append(Ogg([]byte("x")), "junk"...), streams.ErrChunk},
		{"opus content type", opus, "audio/wav", Ogg([]byte("x")), streams.ErrMedia},
		{"params ok", params, "application/json", []byte(`{"gain":0.5}`), nil},
		{"params json suffix", params, "application/merge-patch+json", []byte(` {"a":[1]}`), nil},
		{"params array", params, "", []byte(`[1,2]`), streams.ErrChunk},
		{"params bad json", params, "", []byte(`{"a":`), streams.ErrChunk},
		{"params trailing", params, "", []byte(`{"a":1} {}`), streams.ErrChunk},
		{"params text/plain", params, "text/plain", []byte(`{}`), streams.ErrMedia},
		{"params png", params, "", p, streams.ErrMedia},
		{"bad content type", params, "a/b/c;;", []byte(`{}`), streams.ErrMedia},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.s.CheckChunk(c.ct, c.body)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
		})
	}
}

// FuzzCheckChunk: no input panics, and every refusal is ErrChunk or ErrMedia.
func FuzzCheckChunk(f *testing.F) {
	p := PNG(f)
	for _, seed := range [][]byte{p, jpeg, WAV(1, 16000, make([]byte, 8)), Ogg([]byte("OpusHead\x01\x02")), []byte(`{"a":1}`), nil, {0}} {
		f.Add(seed, "")
	}
	f.Add(p, "image/png")
	specs := []streams.Spec{
		{Type: streams.Vision, Format: streams.FormatPNG},
		{Type: streams.Vision, Format: streams.FormatJPEG},
		{Type: streams.Vision, Format: streams.FormatRaw, Width: 3, Height: 3, Channels: 1},
		{Type: streams.Audio, Codec: streams.CodecPCM, SampleRate: 8000, Channels: 2},
		{Type: streams.Audio, Codec: streams.CodecWAV, Channels: 1},
		{Type: streams.Audio, Codec: streams.CodecOpus, Channels: 2},
		{Type: streams.Parameters},
	}
	for i := range specs {
		if err := specs[i].Normalize(limits); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, ct string) {
		for _, s := range specs {
			if err := s.CheckChunk(ct, b); err != nil && !errors.Is(err, streams.ErrChunk) && !errors.Is(err, streams.ErrMedia) {
				t.Fatalf("%s: unexpected error %v", s.Type, err)
			}
		}
	})
}

// FuzzNormalize: no spec panics, and every refusal is ErrSpec.
func FuzzNormalize(f *testing.F) {
	f.Add("vision", "raw", "", 4, 4, 3, 0, "svc", "/x", int64(0))
	f.Add("audio", "", "wav", 0, 0, 1, 16000, "", "", int64(4096))
	f.Fuzz(func(t *testing.T, typ, format, codec string, w, h, ch, rate int, service, path string, maxBytes int64) {
		s := streams.Spec{Type: streams.Type(typ), Format: format, Codec: codec, Width: w, Height: h, Channels: ch,
			SampleRate: rate, Service: service, Path: path, Retention: streams.Retention{MaxBytes: maxBytes}}
		if err := s.Normalize(limits); err != nil && !errors.Is(err, streams.ErrSpec) {
			t.Fatalf("unexpected error %v", err)
		}
		if s.Normalize(limits) == nil && s.Type == streams.Vision && s.Format == streams.FormatRaw {
			if s.Width*s.Height*s.Channels <= 0 {
				t.Fatalf("raw frame size %d accepted", s.Width*s.Height*s.Channels)
			}
		}
	})
}
