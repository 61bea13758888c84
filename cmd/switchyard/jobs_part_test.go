package main

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/switchyard/switchyard/part"
)

// `switchyard jobs` is a part of its own: listed in --help, and runnable
// alone, serving /health on WORKER_PORT like any process of worker pools.
func TestJobsPartRunsAlone(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--help"}, &out, &errb); code != 0 || !bytes.Contains(append(out.Bytes(), errb.Bytes()...), []byte("  jobs ")) {
		t.Fatalf("--help (exit %d) does not list jobs:\n%s%s", code, out.String(), errb.String())
	}
	var jobsPart part.Part
	for _, p := range parts() {
		if p.Name == "jobs" {
			jobsPart = p
		}
	}
	if jobsPart.Build == nil || jobsPart.Kind != part.KindWorkers {
		t.Fatalf("no jobs worker part in %v", parts())
	}
	cfg := testConfig(t)
	cfg.Server.WorkerPort = 0
	r := startParts(t, cfg, jobsPart)
	defer func() {
		if err := r.stop(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	resp, err := http.Get(r.url("jobs", "/health"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/health = %d", resp.StatusCode)
	}
}
