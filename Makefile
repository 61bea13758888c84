# Switchyard. `make run` starts everything on an embedded NATS; `make test` runs every test.
GO       ?= go
BIN      := bin/switchyard
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
COMPOSE  ?= docker compose
HOST     ?= localhost

.PHONY: setup build run run-all run-message-broker run-load-balancer run-cache-coordinator \
        run-stream-processor run-proxy-worker test test-short bench lint clean health-check \
        docker-up docker-down docker-logs

## setup: download Go modules and install what tests and benchmarks need
setup:
	@echo "==> downloading Go modules (the first time takes a minute)"
	$(GO) mod download
	@bash scripts/test-deps.sh

## build: build bin/switchyard
build:
	@test -d "$$($(GO) env GOMODCACHE)/github.com/nats-io" || echo "==> first build: downloading Go modules, this takes a minute"
	@echo "==> building $(BIN) ($(VERSION))"
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/switchyard

## run: every edge and worker pool in one process, on an embedded NATS
run: run-all

run-all: build
	./$(BIN) run

run-message-broker: build
	./$(BIN) broker

run-load-balancer: build
	./$(BIN) lb

run-cache-coordinator: build
	./$(BIN) cache

run-stream-processor: build
	./$(BIN) stream

run-proxy-worker: build
	./$(BIN) proxy

## test: every test, with the race detector, against real servers
test:
	@bash scripts/test-deps.sh
	$(GO) test -race -count=1 -timeout 9m ./...

test-short:
	$(GO) test -count=1 -short ./...

## bench: Go benchmarks, then the load balancer against nginx and direct (wrk)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	bash bench/lb.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin data

## health-check: GET /health of the four edges
health-check:
	@for p in 8081 8082 8083 8084; do printf '%s ' "$$p"; curl -s -o /dev/null -w '%{http_code}\n' http://$(HOST):$$p/health || echo down; done

docker-up:
	$(COMPOSE) up -d --build

docker-down:
	$(COMPOSE) down

docker-logs:
	$(COMPOSE) logs -f
