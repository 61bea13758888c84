#!/usr/bin/env bash
# Cache benchmark, one run, one load tool (wrk), everything on 127.0.0.1:
#   (a) GET /cache/<key>: a local hit of the cache edge
#   (b) GET /cache/<key> in a namespace without local tier: every request
#       is a local miss served from the shared tier (Redis), and
#   (b') the same with the JetStream KV shared tier
#   (c) a minimal echo handler doing one go-redis GET per request (by hand)
#   (d) the echo hello-world ceiling
# then NATS: cache.get (local hit) against a raw request/reply replier.
# Prints req/s, p50/p99 and the ratios a/d and b/c. The targets take turns,
# ROUNDS times, and the median of each is kept: on a shared machine, load
# that comes and goes then hits every target alike.
#
#   bash bench/cache.sh                # 3 rounds of 5 s per target, 64 connections
#   ROUNDS=5 DURATION=10 CONNS=128 bash bench/cache.sh
#
# Ports 19200-19299; every process is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
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

declare -A RPS P50 P99 ERRS
run() { # key url
  wrk -t"$THREADS" -c"$CONNS" -d1s "$2" >/dev/null 2>&1 || true   # warm-up
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$2")
  RPS[$1]+="$(awk '/Requests\/sec/ {print $2}' <<<"$out") "
  P50[$1]+="$(awk '$1=="50%" {print $2}' <<<"$out") "
  P99[$1]+="$(awk '$1=="99%" {print $2}' <<<"$out") "
  ERRS[$1]+="$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' <<<"$out")"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v} else {sub(/s$/,"",v); print v*1000}}'; }

declare -A URL=(
  [a]="http://127.0.0.1:$CACHE_PORT/cache/bench-key"
  [b]="http://127.0.0.1:$CACHE_PORT/cache/bench-key?ns=direct"
  [bkv]="http://127.0.0.1:$KV_CACHE_PORT/cache/bench-key?ns=direct"
  [c]="http://127.0.0.1:$REDISECHO_PORT/cache/bench-key"
  [d]="http://127.0.0.1:$HELLO_PORT/hello"
)
declare -A NAME=(
  [a]="(a) cache GET, local hit"
  [b]="(b) cache GET, miss -> Redis"
  [bkv]="(b') cache GET, miss -> JetStream KV"
  [c]="(c) echo + go-redis GET"
  [d]="(d) echo hello-world"
)
order="a b bkv c d"
for r in $(seq 1 "$ROUNDS"); do
  for k in $order; do run "$k" "${URL[$k]}"; done
done

echo "wrk -t$THREADS -c$CONNS, $ROUNDS rounds of ${DURATION}s per target, medians; 100-byte value ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%F))"
printf '%-38s %10s %9s %9s   %s\n' target "req/s" "p50 ms" "p99 ms" "every round (req/s)"
declare -A M
for k in $order; do
  M[$k]=$(median <<<"${RPS[$k]}")
  p50=$(tr ' ' '\n' <<<"${P50[$k]}" | grep -v '^$' | to_ms | median)
  p99=$(tr ' ' '\n' <<<"${P99[$k]}" | grep -v '^$' | to_ms | median)
  printf '%-38s %10s %9s %9s   %s %s\n' "${NAME[$k]}" "${M[$k]}" "$p50" "$p99" "${RPS[$k]}" "${ERRS[$k]}"
done
awk -v a="${M[a]}" -v b="${M[b]}" -v bkv="${M[bkv]}" -v c="${M[c]}" -v d="${M[d]}" 'BEGIN {
  printf "(a)/(d) local hit vs hello-world:     %.2fx (target >= 0.9x)\n", a/d
  printf "(b)/(c) shared-tier miss vs by hand:  %.2fx (target >= 1.0x)\n", b/c
  printf "(b'"'"')/(c) KV miss vs Redis by hand:    %.2fx\n", bkv/c }'
echo
./bin/cachebase -mode nats -nats nats://127.0.0.1:$NATS_PORT -clients 8 -d "${DURATION}s" -rounds "$ROUNDS"
