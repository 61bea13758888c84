package stream_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"
)

func pngChunk(t testing.TB) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var jpegChunk = []byte{0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0, 1, 0xff, 0xd9}

func wavChunk(channels, rate, frames int) []byte {
	var b bytes.Buffer
	le := func(v any) {
		switch x := v.(type) {
		case uint32:
			b.Write([]byte{byte(x), byte(x >> 8), byte(x >> 16), byte(x >> 24)})
		case uint16:
			b.Write([]byte{byte(x), byte(x >> 8)})
		}
	}
	data := frames * channels * 2
	b.WriteString("RIFF")
	le(uint32(36 + data))
	b.WriteString("WAVEfmt ")
	le(uint32(16))
	le(uint16(1))
	le(uint16(channels))
	le(uint32(rate))
	le(uint32(rate * channels * 2))
	le(uint16(channels * 2))
	le(uint16(16))
	b.WriteString("data")
	le(uint32(data))
	b.Write(make([]byte, data))
	return b.Bytes()
}

func TestCreate(t *testing.T) {
	s := start(t, testConfig(t))
	resp, b := s.do(t, http.MethodPost, "/stream/create",
		[]byte(`{"type":"vision","format":"raw","width":4,"height":2,"channels":3,"name":"cam-1","service":"vision","retention":{"max_age":"10m","max_bytes":1048576}}`),
		"Content-Type", "application/json")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	var v map[string]any
	_ = json.Unmarshal(b, &v)
	if v["id"] == "" || v["type"] != "vision" || v["format"] != "raw" || v["path"] != "/stream/vision" || v["state"] != "open" {
		t.Errorf("create answered %s", b)
	}
	ret, _ := v["retention"].(map[string]any)
	if ret["max_age"] != "10m0s" || ret["max_bytes"] != float64(1<<20) {
		t.Errorf("retention %v", ret)
	}
	// GET /stream/:id answers the same stream.
	r2, b2 := s.do(t, http.MethodGet, "/stream/"+v["id"].(string), nil)
	if r2.StatusCode != http.StatusOK || !strings.Contains(string(b2), `"name":"cam-1"`) {
		t.Errorf("get: %d %s", r2.StatusCode, b2)
	}

	for _, c := range []struct {
		body, ct string
		status   int
	}{
		{`{"type":"video"}`, "application/json", 400},
		{`{}`, "application/json", 400},
		{`{"type":"vision","format":"raw"}`, "application/json", 400},
		{`{"type":"audio","codec":"pcm_s16le","sample_rate":16000}`, "application/json", 400},
		{`{"type":"parameters","colour":"red"}`, "application/json", 400},
		{`{"type":"parameters","service":"no.dots"}`, "application/json", 400},
		{`{"type":"parameters","retention":{"max_bytes":99999999999}}`, "application/json", 400},
		{`{"type":"parameters"} {}`, "application/json", 400},
		{`not json`, "application/json", 400},
		{`{"type":"parameters"}`, "text/plain", 415},
	} {
		resp, b := s.do(t, http.MethodPost, "/stream/create", []byte(c.body), "Content-Type", c.ct)
		if resp.StatusCode != c.status {
			t.Errorf("create %s (%s): %d %s, want %d", c.body, c.ct, resp.StatusCode, b, c.status)
			continue
		}
		errCode(t, b)
	}
}

func TestCreateLimit(t *testing.T) {
	cfg := testConfig(t)
	cfg.Stream.MaxStreams = 2
	s := start(t, cfg)
	s.create(t, `{"type":"parameters"}`)
	s.create(t, `{"type":"parameters"}`)
	resp, b := s.do(t, http.MethodPost, "/stream/create", []byte(`{"type":"parameters"}`), "Content-Type", "application/json")
	if resp.StatusCode != http.StatusInsufficientStorage || errCode(t, b) != "insufficient_storage" {
		t.Fatalf("third stream: %d %s, want 507", resp.StatusCode, b)
	}
}

// Every type and format accepts its own chunks and refuses others with 400
// (malformed) or 415 (another media type).
func TestChunkValidation(t *testing.T) {
	s := start(t, testConfig(t))
	p := pngChunk(t)
	cases := []struct {
		spec   string
		ct     string
		body   []byte
		status int
	}{
		{`{"type":"vision","format":"png"}`, "image/png", p, 202},
		{`{"type":"vision","format":"png"}`, "", p[:len(p)-4], 400},
		{`{"type":"vision","format":"png"}`, "", jpegChunk, 415},
		{`{"type":"vision","format":"png"}`, "image/jpeg", p, 415},
		{`{"type":"vision"}`, "image/jpeg", jpegChunk, 202},
		{`{"type":"vision"}`, "", jpegChunk[:6], 400},
		{`{"type":"vision"}`, "", p, 415},
		{`{"type":"vision","format":"raw","width":4,"height":2,"channels":3}`, "application/octet-stream", make([]byte, 24), 202},
		{`{"type":"vision","format":"raw","width":4,"height":2,"channels":3}`, "", make([]byte, 23), 400},
		{`{"type":"audio","codec":"pcm_s16le","sample_rate":16000,"channels":2}`, "", make([]byte, 400), 202},
		{`{"type":"audio","codec":"pcm_s16le","sample_rate":16000,"channels":2}`, "", make([]byte, 402), 400},
		{`{"type":"audio","codec":"wav","sample_rate":16000,"channels":1}`, "audio/wav", wavChunk(1, 16000, 10), 202},
		{`{"type":"audio","codec":"wav","sample_rate":16000,"channels":1}`, "", wavChunk(1, 8000, 10), 400},
		{`{"type":"audio","codec":"wav"}`, "", p, 415},
		{`{"type":"audio","codec":"opus"}`, "", []byte("OggS\x00\x02" + strings.Repeat("\x00", 20) + "\x01\x03abc"), 202},
		{`{"type":"audio","codec":"opus"}`, "", []byte("OggS\x00\x02" + strings.Repeat("\x00", 20) + "\x01\x09abc"), 400},
		{`{"type":"parameters"}`, "application/json", []byte(`{"threshold":0.7}`), 202},
		{`{"type":"parameters"}`, "", []byte(`[1]`), 400},
		{`{"type":"parameters"}`, "", []byte(`{"a":`), 400},
		{`{"type":"parameters"}`, "text/plain", []byte(`{}`), 415},
		{`{"type":"parameters"}`, "", nil, 400},
	}
	ids := map[string]string{}
	for _, c := range cases {
		id := ids[c.spec]
		if id == "" {
			id = s.create(t, c.spec)
			ids[c.spec] = id
		}
		var hdr []string
		if c.ct != "" {
			hdr = []string{"Content-Type", c.ct}
		}
		st, _, b := s.post(t, id, c.body, hdr...)
		if st != c.status {
			t.Errorf("%s %q (%d bytes): %d %s, want %d", c.spec, c.ct, len(c.body), st, b, c.status)
		} else if st != 202 {
			errCode(t, b)
		}
	}
	if n := s.metric(t, "switchyard_stream_rejected_chunks_total", `reason="media"`); n != 5 {
		t.Errorf("rejected media %v, want 5", n)
	}
	if n := s.metric(t, "switchyard_stream_chunks_in_total", `type="vision"`); n != 3 {
		t.Errorf("vision chunks in %v, want 3", n)
	}
}

func TestChunkErrors(t *testing.T) {
	cfg := testConfig(t)
	cfg.Stream.MaxChunkBytes = 4096
	cfg.Stream.VisionBufferBytes = 8192
	cfg.Stream.AudioBufferBytes = 8192
	cfg.Stream.ParametersBufferBytes = 8192
	s := start(t, cfg)
	id := s.create(t, `{"type":"audio","codec":"pcm_s16le","sample_rate":8000,"channels":1}`)
	for _, c := range []struct {
		id     string
		body   []byte
		status int
		code   string
	}{
		{"nosuchstream", make([]byte, 2), 404, "not_found"},
		{"BAD.ID", make([]byte, 2), 404, "not_found"},
		{id, make([]byte, 4098), 413, "payload_too_large"},
		{id, make([]byte, 4096), 202, ""},
	} {
		st, _, b := s.post(t, c.id, c.body)
		if st != c.status {
			t.Errorf("post %d bytes to %s: %d %s, want %d", len(c.body), c.id, st, b, c.status)
		} else if c.code != "" && errCode(t, b) != c.code {
			t.Errorf("code %s, want %s", errCode(t, b), c.code)
		}
	}
	// Without Content-Length (chunked transfer), the limit holds too.
	req, _ := http.NewRequest(http.MethodPost, s.url+"/stream/"+id+"/chunk", struct{ *bytes.Reader }{bytes.NewReader(make([]byte, 10000))})
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked oversize: %d, want 413", resp.StatusCode)
	}
	if r, b := s.do(t, http.MethodDelete, "/stream/nosuch", nil); r.StatusCode != 404 {
		t.Errorf("delete unknown: %d %s", r.StatusCode, b)
	}
}

// X-Chunk-Id makes a retried POST store the chunk once.
func TestChunkDedupe(t *testing.T) {
	s := start(t, testConfig(t))
	id := s.create(t, `{"type":"parameters"}`)
	_, seq1, _ := s.post(t, id, []byte(`{"n":1}`), "X-Chunk-Id", "c-1")
	_, seq2, b := s.post(t, id, []byte(`{"n":1}`), "X-Chunk-Id", "c-1")
	if seq1 != seq2 || !strings.Contains(string(b), `"duplicate":true`) {
		t.Fatalf("retry: seq %d then %d (%s), want the same, duplicate", seq1, seq2, b)
	}
	_, seq3, _ := s.post(t, id, []byte(`{"n":2}`), "X-Chunk-Id", "c-2")
	if seq3 <= seq1 {
		t.Fatalf("new chunk seq %d", seq3)
	}
	if st, _, _ := s.post(t, id, []byte(`{}`), "X-Chunk-Id", "bad id"); st != 400 {
		t.Errorf("bad X-Chunk-Id: %d, want 400", st)
	}
	_, b = s.do(t, http.MethodGet, "/stream/"+id, nil)
	if !strings.Contains(string(b), `"chunks":2`) {
		t.Errorf("stream shows %s, want 2 chunks", b)
	}
}

func TestList(t *testing.T) {
	s := start(t, testConfig(t))
	a := s.create(t, `{"type":"parameters","name":"a"}`)
	b := s.create(t, `{"type":"audio","codec":"pcm_s16le","sample_rate":8000,"channels":1}`)
	for i := 0; i < 3; i++ {
		s.mustPost(t, a, []byte(fmt.Sprintf(`{"i":%d}`, i)))
	}
	w := s.subscribe(t, a, "from=start")
	w.mustNext()
	var list struct {
		Streams []struct {
			ID           string
			Type         string
			Chunks       uint64
			Bytes        uint64
			Subscribers  int
			Backlog      uint64
			Created      string
			LastActivity string `json:"last_activity"`
		}
	}
	_, body := s.do(t, http.MethodGet, "/streams", nil)
	if err := json.Unmarshal(body, &list); err != nil || len(list.Streams) != 2 {
		t.Fatalf("GET /streams: %s", body)
	}
	got := list.Streams[0]
	created, err1 := time.Parse(time.RFC3339Nano, got.Created)
	last, err2 := time.Parse(time.RFC3339Nano, got.LastActivity)
	if got.ID != a || got.Type != "parameters" || got.Chunks != 3 || got.Bytes == 0 || got.Subscribers != 1 ||
		err1 != nil || err2 != nil || last.Before(created) {
		t.Errorf("stream a listed as %+v", got)
	}
	if list.Streams[1].ID != b || list.Streams[1].Chunks != 0 {
		t.Errorf("stream b listed as %+v", list.Streams[1])
	}
}

// A stream whose retention bytes are used refuses chunks with 507 rather
// than dropping stored ones.
func TestFullStream507(t *testing.T) {
	s := start(t, testConfig(t))
	id := s.create(t, `{"type":"audio","codec":"pcm_s16le","sample_rate":8000,"channels":1,"retention":{"max_bytes":4096}}`)
	var first uint64
	var st int
	var b []byte
	for i := 0; i < 20; i++ {
		var seq uint64
		st, seq, b = s.post(t, id, make([]byte, 1024))
		if st != http.StatusAccepted {
			break
		}
		if first == 0 {
			first = seq
		}
	}
	if st != http.StatusInsufficientStorage || errCode(t, b) != "insufficient_storage" {
		t.Fatalf("full stream: %d %s, want 507", st, b)
	}
	// The first chunk is still there.
	if f := s.subscribe(t, id, "from=start").mustNext(); f.seq != first {
		t.Fatalf("first stored chunk is %d, want %d", f.seq, first)
	}
	if s.metric(t, "switchyard_stream_rejected_chunks_total", `reason="full"`) != 1 {
		t.Error("507 not counted")
	}
}
