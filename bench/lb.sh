#!/usr/bin/env bash
# Load balancer benchmark: the same backend measured directly, through nginx
# as a reverse proxy, and through Switchyard's /vision/* (edge -> NATS ->
# proxy worker -> backend; "split": lb and proxy as two processes on one
# nats-server, hosted by the proxy process), in one run, with wrk. Prints req/s and p50/p99
# for each, the CPU time the proxy itself spent per request (the backend's
# own CPU not included, except on the direct line), and Switchyard's ratios
# to nginx.
#
#   bash bench/lb.sh                 # 10 s per target, 64 connections
#   DURATION=30 CONNS=128 bash bench/lb.sh
#   SY_GOMAXPROCS=1 SY_GOGC=400 bash bench/lb.sh   # the CPU-frugal mode (Switchyard only)
#
# Everything listens on 127.0.0.1 only; every process is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
PATH_=${BENCH_PATH:-/items/42}
BACKEND_PORT=19101 NGINX_PORT=19102 NATS_PORT=${BENCH_NATS_PORT:-14322}

bash scripts/test-deps.sh wrk nginx
go build -o bin/backend ./bench/backend
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

./bin/backend -addr 127.0.0.1:$BACKEND_PORT & pids+=($!); backend_pid=$!
wait_http http://127.0.0.1:$BACKEND_PORT/health

mkdir -p "$tmp/nginx/logs"
cat > "$tmp/nginx/nginx.conf" <<CONF
worker_processes auto;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 128; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://backend/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' & pids+=($!); nginx_pid=$!
wait_http http://127.0.0.1:$NGINX_PORT/health

HOST=127.0.0.1 BROKER_PORT=19081 LB_PORT=19082 CACHE_PORT=19083 STREAM_PORT=19084 NATS_PORT=$NATS_PORT \
GOMAXPROCS=${SY_GOMAXPROCS:-} GOGC=${SY_GOGC:-} \
DATA_DIR="$tmp/data" LOG_LEVEL=warn RUST_VISION_SERVICE_URL=http://127.0.0.1:$BACKEND_PORT \
  ./bin/switchyard run 2>"$tmp/switchyard.log" & pids+=($!); switchyard_pid=$!
wait_http http://127.0.0.1:19082/health
wait_http http://127.0.0.1:19082/vision/health

# The split deployment: the proxy pool in one process (hosting the
# nats-server, on SPLIT_NATS_PORT) and the lb edge in another, connected to it.
SPLIT_NATS_PORT=${BENCH_SPLIT_NATS_PORT:-14323}
HOST=127.0.0.1 WORKER_PORT=19185 NATS_PORT=$SPLIT_NATS_PORT GOMAXPROCS=${SY_GOMAXPROCS:-} GOGC=${SY_GOGC:-} \
DATA_DIR="$tmp/split" LOG_LEVEL=warn RUST_VISION_SERVICE_URL=http://127.0.0.1:$BACKEND_PORT \
  ./bin/switchyard proxy 2>"$tmp/split-proxy.log" & pids+=($!); split_proxy_pid=$!
wait_http http://127.0.0.1:19185/health
HOST=127.0.0.1 LB_PORT=19182 NATS_URL=nats://127.0.0.1:$SPLIT_NATS_PORT GOMAXPROCS=${SY_GOMAXPROCS:-} GOGC=${SY_GOGC:-} \
DATA_DIR="$tmp/split-lb" LOG_LEVEL=warn RUST_VISION_SERVICE_URL=http://127.0.0.1:$BACKEND_PORT \
  ./bin/switchyard lb 2>"$tmp/split-lb.log" & pids+=($!); split_lb_pid=$!
wait_http http://127.0.0.1:19182/health
wait_http http://127.0.0.1:19182/vision/health

# cpu_ticks "PID..": user+system clock ticks of the PIDs and their children (nginx workers).
cpu_ticks() {
  local t=0 p q
  for q in $1; do for p in "$q" $(pgrep -P "$q" || true); do
    t=$((t + $(awk '{print $14+$15}' /proc/"$p"/stat 2>/dev/null || echo 0)))
  done; done
  echo "$t"
}

run() { # name url pid
  wrk -t"$THREADS" -c"$CONNS" -d2s "$2" >/dev/null 2>&1 || true   # warm-up
  local c0; c0=$(cpu_ticks "$3")
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$2")
  local c1; c1=$(cpu_ticks "$3")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  cpu=$(awk -v a="$c0" -v b="$c1" -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", (b-a)*1e6/hz/n}')
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
  printf '%-12s %12s %10s %10s %14s  %s\n' "$1" "$rps" "$p50" "$p99" "$cpu" "$errs"
  eval "${1}_rps=$rps; ${1}_p99=$p99"
}
to_ms() { awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us$/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v} else {sub(/s$/,"",v); print v*1000} }'; }

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t$THREADS -c$CONNS -d${DURATION}s, GET $PATH_ ($(nproc) cores, $(date -u +%F))"
printf '%-12s %12s %10s %10s %14s\n' target "req/s" p50 p99 "cpu us/req"
run direct     "http://127.0.0.1:$BACKEND_PORT$PATH_" "$backend_pid"
run nginx      "http://127.0.0.1:$NGINX_PORT$PATH_" "$nginx_pid"
run switchyard "http://127.0.0.1:19082/vision$PATH_" "$switchyard_pid"
run split      "http://127.0.0.1:19182/vision$PATH_" "$split_lb_pid $split_proxy_pid"
awk -v s="$switchyard_rps" -v n="$nginx_rps" -v d="$direct_rps" \
    -v sp="$(to_ms "$switchyard_p99")" -v np="$(to_ms "$nginx_p99")" 'BEGIN {
  printf "switchyard/nginx throughput: %.2fx   p99: %.2fx   (nginx/direct: %.2fx)\n", s/n, sp/np, n/d }'
awk -v s="$split_rps" -v n="$nginx_rps" -v sp="$(to_ms "$split_p99")" -v np="$(to_ms "$nginx_p99")" 'BEGIN {
  printf "split/nginx throughput: %.2fx   p99: %.2fx\n", s/n, sp/np }'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
