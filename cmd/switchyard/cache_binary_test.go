package main

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Two `switchyard cache` processes on one NATS (the first one's embedded
// server): what one writes or deletes, the other stops serving, and both
// stop cleanly.
func TestBinaryCacheTwoProcessesCoherent(t *testing.T) {
	a := newInstanceEnv(t)
	pa := startBinary(t, a, "cache")
	c := httpClient(t)
	waitUp := func(p *proc, url string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			if r, err := c.Get(url); err == nil {
				r.Body.Close()
				if r.StatusCode == http.StatusOK {
					return
				}
			}
			select {
			case <-p.done:
				t.Fatalf("exited before %s was up: %v\n%s", url, p.err, p.stderr)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not up; stderr:\n%s", url, p.stderr)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitUp(pa, a.url("cache", "/health"))
	b := newInstanceEnv(t).with("NATS_URL", "nats://127.0.0.1:"+strconv.Itoa(a.ports["nats"]))
	pb := startBinary(t, b, "cache")
	waitUp(pb, b.url("cache", "/health"))

	do := func(method, url string, body []byte) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		r, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		data, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(data), r.Header.Get("X-Cache")
	}
	poll := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	key := a.url("cache", "/cache/greeting?ns=binary")
	keyB := b.url("cache", "/cache/greeting?ns=binary")
	if st, body, _ := do("POST", key, []byte("v1")); st != 204 {
		t.Fatalf("set on a: %d %s", st, body)
	}
	poll("b to hold v1 in its local tier", func() bool {
		st, body, tier := do("GET", keyB, nil)
		return st == 200 && body == "v1" && tier == "HIT-LOCAL"
	})
	do("POST", key, []byte("v2"))
	start := time.Now()
	poll("b to see v2", func() bool { _, body, _ := do("GET", keyB, nil); return body == "v2" })
	t.Logf("overwrite seen by the other process after %v", time.Since(start))
	do("DELETE", key, nil)
	poll("b to see the delete", func() bool { st, _, _ := do("GET", keyB, nil); return st == 404 })

	// A plain NATS client reaches either process through cache.*.
	nc := connectNATS(t, a)
	do("POST", keyB, []byte("from b"))
	m, err := nc.Request("cache.get.binary", []byte("greeting"), 5*time.Second)
	if err != nil || string(m.Data) != "from b" {
		t.Fatalf("cache.get: %v %v", m, err)
	}

	pb.signal(syscall.SIGTERM)
	if code := pb.wait(30 * time.Second); code != 0 {
		t.Fatalf("b exit %d; stderr:\n%s", code, pb.stderr)
	}
	pa.signal(syscall.SIGTERM)
	if code := pa.wait(30 * time.Second); code != 0 {
		t.Fatalf("a exit %d; stderr:\n%s", code, pa.stderr)
	}
	pa.noErrors()
	pb.noErrors()
}
