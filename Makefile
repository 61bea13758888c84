# Switchyard. `make run` starts everything on an embedded NATS; `make test` runs every test.
GO       ?= go
BIN      := bin/switchyard
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
COMPOSE  ?= docker compose
HOST     ?= localhost
DATA_DIR ?= ./data
BROKER_PORT ?= 8081
LB_PORT     ?= 8082
CACHE_PORT  ?= 8083
STREAM_PORT ?= 8084
WORKER_PORT ?= 8085
JOBS_WORKER_PORT ?= 8086

.PHONY: setup build run run-all run-message-broker run-load-balancer run-cache-coordinator \
        run-stream-processor run-proxy-worker run-jobs-worker test test-short bench lint clean clean-data help health-check \
        docker-up docker-down docker-logs

## setup: download Go modules and install what tests and benchmarks need
setup:
	@echo "==> downloading Go modules (the first time takes a minute)"
	$(GO) mod download
	@bash scripts/test-deps.sh redis-server

## build: build bin/switchyard
build:
	@test -d "$$($(GO) env GOMODCACHE)/github.com/nats-io" || echo "==> first build: downloading Go modules, this takes a minute"
	@echo "==> building $(BIN) ($(VERSION))"
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/switchyard

## run: every edge and worker pool in one process, on an embedded NATS
run: run-all

## run-all: the same as run
run-all: build
	./$(BIN) run

## run-message-broker: the broker edge alone
run-message-broker: build
	./$(BIN) broker

## run-load-balancer: the lb edge alone
run-load-balancer: build
	./$(BIN) lb

## run-cache-coordinator: the cache edge alone
run-cache-coordinator: build
	./$(BIN) cache

## run-stream-processor: the stream edge alone
run-stream-processor: build
	./$(BIN) stream

## run-proxy-worker: the proxy worker pool alone
run-proxy-worker: build
	./$(BIN) proxy

## run-jobs-worker: the durable job runners alone (/health and /metrics on JOBS_WORKER_PORT)
run-jobs-worker: build
	WORKER_PORT=$(JOBS_WORKER_PORT) ./$(BIN) jobs

## test: every test, with the race detector, against real servers
test:
	@bash scripts/test-deps.sh redis-server
	$(GO) test -race -count=1 -timeout 9m ./...

## test-short: tests without the race detector, short mode
test-short:
	$(GO) test -count=1 -short ./...

## bench: Go benchmarks, the load balancer against nginx and direct (wrk), the cache edge against by-hand Redis and hello-world, the broker against a minimal hub and raw NATS (CENTRIFUGO=path adds Centrifugo), the stream edge against JetStream publish and a gorilla broadcast (NATS_CLI=path uses nats bench)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	bash bench/lb.sh
	bash bench/cache.sh
	$(GO) run ./bench/broker $(if $(CENTRIFUGO),-centrifugo $(CENTRIFUGO))
	bash scripts/test-deps.sh wrk
	$(GO) run ./bench/streambench $(if $(NATS_CLI),-nats $(NATS_CLI))

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## clean: remove build outputs (bin/); the JetStream store in DATA_DIR is kept
clean:
	rm -rf bin

## clean-data: DELETE the embedded JetStream store (DATA_DIR, default ./data): queued jobs, streams, cache, broker messages
clean-data:
	@echo "==> deleting $(DATA_DIR): every stream, bucket, queued job and stored message of the embedded NATS"
	rm -rf "$(DATA_DIR)"

## help: list the targets
help:
	@awk 'BEGIN {FS = ": "} /^## / {sub(/^## /, ""); split($$0, a, ": "); printf "  %-22s %s\n", a[1], substr($$0, length(a[1]) + 3)}' $(MAKEFILE_LIST)

## health-check: GET /health of every part (ports from BROKER_PORT, LB_PORT, CACHE_PORT, STREAM_PORT, WORKER_PORT, JOBS_WORKER_PORT); non-zero when one is down
health-check:
	@rc=0; for pp in broker:$(BROKER_PORT) lb:$(LB_PORT) cache:$(CACHE_PORT) stream:$(STREAM_PORT) workers:$(WORKER_PORT) jobs:$(JOBS_WORKER_PORT); do \
	  name=$${pp%%:*}; port=$${pp#*:}; \
	  code=$$(curl -s -o /dev/null -m 3 -w '%{http_code}' http://$(HOST):$$port/health); \
	  if [ "$$code" = 200 ]; then echo "$$name :$$port up"; \
	  elif { [ "$$name" = workers ] || [ "$$name" = jobs ]; } && [ "$$code" = 000 ]; then echo "$$name :$$port not running (only a process of worker pools alone serves it)"; \
	  else echo "$$name :$$port DOWN (http $$code)"; rc=1; fi; \
	done; exit $$rc

## docker-up: build and start the compose stack
docker-up:
	$(COMPOSE) up -d --build

## docker-down: stop the compose stack
docker-down:
	$(COMPOSE) down

## docker-logs: follow the compose stack logs
docker-logs:
	$(COMPOSE) logs -f
