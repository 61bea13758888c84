#!/usr/bin/env bash
# Cache benchmark, one run, one load tool (wrk), everything on 127.0.0.1:
#   (a) GET /cache/<key>: a local hit of the cache edge
#   (b) GET /cache/<key> in a namespace without local tier: every request
#       is a local miss served from the shared tier (Redis), and
#   (b') the same with the JetStream KV shared tier
#   (c) a minimal echo handler doing one go-redis GET per request (by hand)
#   (d) the echo hello-world ceiling
# then NATS: cache.get (local hit) against a raw request/reply replier.
# Prints req/s, p50/p99 and the ratios a/d and b/c.
#
#   bash bench/cache.sh                # 10 s per target, 64 connections
#   DURATION=30 CONNS=128 bash bench/cache.sh
#
# Ports 19200-19299; every process is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
REDIS_PORT=19201 NATS_PORT=19202 CACHE_PORT=19203 KV_NATS_PORT=19205 KV_CACHE_PORT=19206
HELLO_PORT=19210 REDISECHO_PORT=19211

bash scripts/test-deps.sh wrk redis-server
go build -o bin/cachebase ./bench/cachebase
make -s build >/dev/null

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
wait_http() { for _ in $(seq 1 200); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not up: $1" >&2; exit 1; }

redis-server --port $REDIS_PORT --bind 127.0.0.1 --dir "$tmp" --save '' --appendonly no >/dev/null & pids+=($!)
for _ in $(seq 1 100); do redis-cli -p $REDIS_PORT ping >/dev/null 2>&1 && break; sleep 0.1; done

cat > "$tmp/config.yaml" <<CONF
cache:
  namespaces:
    direct:
      local: false
CONF
common="HOST=127.0.0.1 LOG_LEVEL=warn CONFIG_FILE=$tmp/config.yaml"
env $common NATS_PORT=$NATS_PORT CACHE_PORT=$CACHE_PORT DATA_DIR="$tmp/data" REDIS_ADDR=127.0.0.1:$REDIS_PORT \
  ./bin/switchyard cache 2>"$tmp/switchyard.log" & pids+=($!)
env $common NATS_PORT=$KV_NATS_PORT CACHE_PORT=$KV_CACHE_PORT DATA_DIR="$tmp/data-kv" \
  ./bin/switchyard cache 2>"$tmp/switchyard-kv.log" & pids+=($!)
./bin/cachebase -mode hello -addr 127.0.0.1:$HELLO_PORT & pids+=($!)
./bin/cachebase -mode redis -addr 127.0.0.1:$REDISECHO_PORT -redis 127.0.0.1:$REDIS_PORT & pids+=($!)
wait_http http://127.0.0.1:$CACHE_PORT/health
wait_http http://127.0.0.1:$KV_CACHE_PORT/health
wait_http http://127.0.0.1:$HELLO_PORT/hello

value=$(head -c 100 /dev/zero | tr '\0' 'v')
for port in $CACHE_PORT $KV_CACHE_PORT; do
  for ns in default direct; do
    curl -fs -X POST --data "$value" "http://127.0.0.1:$port/cache/bench-key?ns=$ns" >/dev/null
  done
done
redis-cli -p $REDIS_PORT set bench-key "$value" >/dev/null

run() { # name url
  wrk -t"$THREADS" -c"$CONNS" -d2s "$2" >/dev/null 2>&1 || true   # warm-up
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$2")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
  printf '%-34s %10s %9s %9s  %s\n' "$1" "$rps" "$p50" "$p99" "$errs"
  eval "${3}=$rps"
}

echo "wrk -t$THREADS -c$CONNS -d${DURATION}s, 100-byte value ($(nproc) cores, $(date -u +%F))"
printf '%-34s %10s %9s %9s\n' target "req/s" p50 p99
run "(a) cache GET, local hit"          "http://127.0.0.1:$CACHE_PORT/cache/bench-key" a
run "(b) cache GET, miss -> Redis"      "http://127.0.0.1:$CACHE_PORT/cache/bench-key?ns=direct" b
run "(b') cache GET, miss -> JetStream KV" "http://127.0.0.1:$KV_CACHE_PORT/cache/bench-key?ns=direct" bkv
run "(c) echo + go-redis GET"           "http://127.0.0.1:$REDISECHO_PORT/cache/bench-key" c
run "(d) echo hello-world"              "http://127.0.0.1:$HELLO_PORT/hello" d
awk -v a="$a" -v b="$b" -v bkv="$bkv" -v c="$c" -v d="$d" 'BEGIN {
  printf "(a)/(d) local hit vs hello-world:  %.2fx (target >= 0.9x)\n", a/d
  printf "(b)/(c) shared-tier miss vs by hand: %.2fx (target >= 1.0x)\n", b/c
  printf "(b'"'"')/(c) KV miss vs Redis by hand:   %.2fx\n", bkv/c }'
echo
./bin/cachebase -mode nats -nats nats://127.0.0.1:$NATS_PORT -clients 8 -d "${DURATION}s"
