#!/usr/bin/env bash
# Load test of mcp_auth through a real Caddy: the same POST through plain
# reverse_proxy (P1) and through mcp_auth + reverse_proxy (P2), in one Caddy
# process, interleaved P1, P2, P1, P2 ...; then an unknown-kid flood against
# P2 counting the JWKS fetches it causes; then the memory of a fresh Caddy
# before and after filling the token cache.
#
# Run from the repository root:  bash bench/load.sh
#
# Environment:
#   REPS=5            interleaved P1/P2 pairs
#   DURATION=10       seconds per wrk run
#   THREADS=2 CONNS=32  wrk threads and connections
#   FLOOD_DURATION=10 seconds of unknown-kid flood
#   FILL=10000        distinct tokens sent for the memory test (default cache size)
#   PROFILE=auto      CPU-profile Caddy under P2 load: auto (only when the
#                     throughput ratio is below 0.95), 1 (always), 0 (never)
#   PROFILE_SECONDS=20  length of the profiled run
#   PLAIN_STRIP=0     1: the plain site also drops Authorization before
#                     proxying (header_up -Authorization), as mcp_auth does
#                     by default, so the backend sees identical requests
#   KEEP=0            1 keeps the work directory (logs, tokens, profile)
#
# Needs go, curl and wrk (apt-get install -y wrk). Only 127.0.0.1 is used.
set -euo pipefail

REPS=${REPS:-5}
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}
FLOOD_DURATION=${FLOOD_DURATION:-10}
FILL=${FILL:-10000}
PROFILE=${PROFILE:-auto}
PROFILE_SECONDS=${PROFILE_SECONDS:-20}
KEEP=${KEEP:-0}
PLAIN_STRIP=${PLAIN_STRIP:-0}
TARGET_RATIO=0.95
REFETCH_FLOOR=10 # validator.DefaultRefetchFloor, seconds

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
cd "$ROOT"

for tool in go curl wrk; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    if [ "$tool" = wrk ]; then
      echo "wrk not found: install it with  apt-get install -y wrk" >&2
    else
      echo "$tool not found" >&2
    fi
    exit 1
  fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcp-auth-bench.XXXXXX")
PIDS=()
cleanup() {
  local rc=$?
  set +e
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null
  done
  if [ "$KEEP" = 1 ]; then
    echo "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { echo "load.sh: $*" >&2; exit 1; }

# Expected duration: builds and minting (~30s), warm-up, the interleaved
# runs, the flood, the memory phase, and maybe one profiled run.
EST=$((30 + 4 + REPS * 2 * (DURATION + 1) + FLOOD_DURATION + 2 + 30))
EST_PROF=$((EST + PROFILE_SECONDS + 2))
log "expected duration: about ${EST}s (${EST_PROF}s if a profile is taken); REPS=$REPS DURATION=${DURATION}s THREADS=$THREADS CONNS=$CONNS"

# ---- build ------------------------------------------------------------------
log "building caddy, backend, issuer, loader into $WORK"
go build -o "$WORK/caddy" ./cmd/caddy
go build -o "$WORK/backend" ./bench/backend
go build -o "$WORK/issuer" ./bench/issuer
go build -o "$WORK/loader" ./bench/loader

PORTS=($("$WORK/issuer" -free-ports 5))
BK=${PORTS[0]} ISS=${PORTS[1]} P1=${PORTS[2]} P2=${PORTS[3]} ADMIN=${PORTS[4]}
ISSUER=http://127.0.0.1:$ISS
RESOURCE=http://127.0.0.1:$P2/mcp
log "ports: backend $BK, issuer $ISS, plain $P1, mcp_auth $P2, admin $ADMIN"

# ---- tokens -----------------------------------------------------------------
log "minting tokens (1 repeated, $FILL distinct valid, 2000 unknown-kid)"
mint() { "$WORK/issuer" -key "$WORK/key.pem" -mint -iss "$ISSUER" -aud "$RESOURCE" -scope "mcp:read mcp:write" "$@"; }
mint -n 1 -out "$WORK/token.txt"
mint -n "$FILL" -out "$WORK/fill.txt"
mint -n 2000 -unknown-kid -out "$WORK/unknown.txt"
BENCH_TOKEN=$(head -n1 "$WORK/token.txt")
export BENCH_TOKEN

# ---- servers ----------------------------------------------------------------
"$WORK/backend" -addr "127.0.0.1:$BK" >"$WORK/backend.log" 2>&1 &
PIDS+=($!)
"$WORK/issuer" -key "$WORK/key.pem" -addr "127.0.0.1:$ISS" >"$WORK/issuer.log" 2>&1 &
PIDS+=($!)

# mcp_auth removes the Authorization header before proxying (forward_token
# is off by default) while plain reverse_proxy forwards it. PLAIN_STRIP=1
# makes the plain site remove it too, so the backend sees identical requests.
P1_PROXY_OPTS=
if [ "$PLAIN_STRIP" = 1 ]; then
  P1_PROXY_OPTS=$'\n\t\theader_up -Authorization'
fi
cat >"$WORK/Caddyfile" <<EOF
{
	admin 127.0.0.1:$ADMIN
	auto_https off
	persist_config off
	default_bind 127.0.0.1
	log {
		level ERROR
	}
}

:$P1 {
	reverse_proxy 127.0.0.1:$BK {$P1_PROXY_OPTS
	}
}

:$P2 {
	mcp_auth {
		resource $RESOURCE
		issuer $ISSUER
		require_scope mcp:read
	}
	reverse_proxy 127.0.0.1:$BK
}
EOF

CADDY_PID=
start_caddy() {
  HOME=$WORK XDG_CONFIG_HOME=$WORK/config XDG_DATA_HOME=$WORK/data \
    "$WORK/caddy" run --adapter caddyfile --config "$WORK/Caddyfile" >>"$WORK/caddy.log" 2>&1 &
  CADDY_PID=$!
  PIDS+=("$CADDY_PID")
}
stop_caddy() {
  kill "$CADDY_PID" 2>/dev/null || true
  wait "$CADDY_PID" 2>/dev/null || true
  local keep=() pid
  for pid in "${PIDS[@]}"; do [ "$pid" = "$CADDY_PID" ] || keep+=("$pid"); done
  PIDS=("${keep[@]}")
}

BODY='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"query":"bench"}}}'
status_of() { # url token
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST \
    -H 'Content-Type: application/json' -H "Authorization: Bearer $2" -d "$BODY" "$1" || true
}
# wait_ready: P1 answers 200 and P2 accepts the token (keys fetched).
wait_ready() {
  local i s1 s2
  for i in $(seq 1 150); do
    kill -0 "$CADDY_PID" 2>/dev/null || { cat "$WORK/caddy.log" >&2; die "caddy exited"; }
    s1=$(status_of "http://127.0.0.1:$P1/mcp" "$BENCH_TOKEN")
    s2=$(status_of "http://127.0.0.1:$P2/mcp" "$BENCH_TOKEN")
    if [ "$s1" = 200 ] && [ "$s2" = 200 ]; then return 0; fi
    sleep 0.2
  done
  cat "$WORK/caddy.log" >&2
  die "caddy not ready after 30s (plain: $s1, mcp_auth: $s2)"
}
jwks_fetches() { curl -s --max-time 5 "$ISSUER/stats" | sed -n 's/.*"jwks_fetches":\([0-9]*\).*/\1/p'; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$CADDY_PID/status"; }
# heap_live: Go heap in use after a forced GC (HeapAlloc right after GC).
heap_live() {
  curl -s --max-time 10 -o /dev/null "http://127.0.0.1:$ADMIN/debug/pprof/heap?gc=1"
  curl -s --max-time 10 "http://127.0.0.1:$ADMIN/debug/vars" | sed -n 's/.*"HeapAlloc":\([0-9]*\).*/\1/p'
}

start_caddy
wait_ready
log "caddy up (pid $CADDY_PID)"

# ---- wrk helpers ------------------------------------------------------------
# to_ms converts a wrk duration (812.00us, 1.23ms, 1.01s, 1.00m) to ms.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : (u == "h") ? 3600000 : -1
    if (f < 0) { print "nan"; exit }
    printf "%.3f", n * f }'
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

# cpu_ticks: user+system CPU time caddy has used so far, in clock ticks.
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$CADDY_PID/stat"; }

# run_wrk name url duration [script] -> sets RPS P50 P99 NON2XX ERRS NREQ, and
# CPU_US: caddy's CPU time per request (user+system, microseconds), which
# other work on the machine disturbs much less than it disturbs req/s.
run_wrk() {
  local name=$1 url=$2 dur=$3 script=${4:-$BENCH/post.lua}
  local out=$WORK/wrk-$name.txt t0
  t0=$(cpu_ticks)
  timeout $((dur + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${dur}s" --timeout 5s --latency -s "$script" "$url" >"$out" 2>&1 ||
    { cat "$out" >&2; die "wrk failed ($name)"; }
  RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  P50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
  P99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
  NON2XX=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
  NON2XX=${NON2XX:-0}
  ERRS=$(awk '/Socket errors:/ {sub(/.*Socket errors: /, ""); print}' "$out")
  ERRS=${ERRS:-none}
  NREQ=$(awk '/requests in/ {print $1; exit}' "$out")
  [ -n "$RPS" ] && [ -n "$NREQ" ] || { cat "$out" >&2; die "could not parse wrk output ($name)"; }
  local t1
  t1=$(cpu_ticks)
  CPU_US=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$NREQ" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
}

# ---- phase 1: interleaved throughput ----------------------------------------
log "warm-up (2s each, not recorded)"
run_wrk warm-p1 "http://127.0.0.1:$P1/mcp" 2
run_wrk warm-p2 "http://127.0.0.1:$P2/mcp" 2

log "phase 1: $REPS x (plain, mcp_auth), ${DURATION}s each, wrk -t$THREADS -c$CONNS"
printf '%-4s %-9s %12s %10s %10s %12s %8s  %s\n' rep site req/s p50_ms p99_ms caddy_cpu_us non2xx socket_errors
R1=() R2=() L1=() L2=() M1=() M2=() C1=() C2=() PAIR=()
BAD=0
for rep in $(seq 1 "$REPS"); do
  run_wrk "p1-$rep" "http://127.0.0.1:$P1/mcp" "$DURATION"
  R1+=("$RPS") M1+=("$P50") L1+=("$P99") C1+=("$CPU_US")
  [ "$NON2XX" = 0 ] || BAD=1
  printf '%-4s %-9s %12s %10s %10s %12s %8s  %s\n' "$rep" plain "$RPS" "$P50" "$P99" "$CPU_US" "$NON2XX" "$ERRS"
  r1=$RPS
  run_wrk "p2-$rep" "http://127.0.0.1:$P2/mcp" "$DURATION"
  R2+=("$RPS") M2+=("$P50") L2+=("$P99") C2+=("$CPU_US")
  [ "$NON2XX" = 0 ] || BAD=1
  printf '%-4s %-9s %12s %10s %10s %12s %8s  %s\n' "$rep" mcp_auth "$RPS" "$P50" "$P99" "$CPU_US" "$NON2XX" "$ERRS"
  PAIR+=("$(ratio "$RPS" "$r1")")
done
MED_R1=$(median "${R1[@]}") MED_R2=$(median "${R2[@]}")
MED_M1=$(median "${M1[@]}") MED_M2=$(median "${M2[@]}")
MED_L1=$(median "${L1[@]}") MED_L2=$(median "${L2[@]}")
MED_C1=$(median "${C1[@]}") MED_C2=$(median "${C2[@]}")
RATIO_CPU=$(ratio "$MED_C1" "$MED_C2")
RATIO_RPS=$(ratio "$MED_R2" "$MED_R1")
RATIO_P99=$(ratio "$MED_L2" "$MED_L1")
RATIO_PAIR=$(median "${PAIR[@]}")
echo
printf '%-9s %12s %10s %10s %12s\n' median req/s p50_ms p99_ms caddy_cpu_us
printf '%-9s %12s %10s %10s %12s\n' plain "$MED_R1" "$MED_M1" "$MED_L1" "$MED_C1"
printf '%-9s %12s %10s %10s %12s\n' mcp_auth "$MED_R2" "$MED_M2" "$MED_L2" "$MED_C2"
echo "ratio mcp_auth/plain: throughput $RATIO_RPS (median of per-pair ratios $RATIO_PAIR: ${PAIR[*]}), p99 $RATIO_P99"
echo "caddy CPU per request: plain $MED_C1 us, mcp_auth $MED_C2 us; CPU-bound capacity ratio (plain/mcp_auth) $RATIO_CPU"
[ "$BAD" = 0 ] || echo "WARNING: some responses were not 2xx/3xx (see $WORK/wrk-*.txt)"

# ---- optional: CPU profile of Caddy under the mcp_auth load -----------------
PROF_LINE="not taken"
if [ "$PROFILE" = 1 ] || { [ "$PROFILE" = auto ] && awk -v r="$RATIO_RPS" -v t="$TARGET_RATIO" 'BEGIN { exit !(r < t) }'; }; then
  log "CPU profile of caddy during ${PROFILE_SECONDS}s of mcp_auth load"
  curl -s --max-time $((PROFILE_SECONDS + 30)) -o "$WORK/p2.pprof" \
    "http://127.0.0.1:$ADMIN/debug/pprof/profile?seconds=$PROFILE_SECONDS" &
  PROF_PID=$!
  sleep 0.5
  run_wrk p2-profile "http://127.0.0.1:$P2/mcp" "$PROFILE_SECONDS"
  wait "$PROF_PID" || die "profile download failed"
  echo "--- top functions (flat), whole caddy process:"
  go tool pprof -top -nodecount=25 "$WORK/caddy" "$WORK/p2.pprof" 2>/dev/null | sed -n '/^ *flat/,$p'
  # mcp_auth's own cost: samples under the module, excluding the next
  # handler (reverse_proxy) that it calls.
  echo "--- mcp_auth's own cost (focus=caddy-mcp-auth, ignore=reverseproxy), by cumulative time:"
  go tool pprof -top -cum -nodecount=25 -focus='caddy-mcp-auth' -ignore='reverseproxy' \
    "$WORK/caddy" "$WORK/p2.pprof" 2>/dev/null >"$WORK/p2-mcpauth.txt" || true
  sed -n '/^ *flat/,$p' "$WORK/p2-mcpauth.txt"
  # The cum% of Handler.ServeHTTP, with reverse_proxy stacks ignored, is the
  # module's own share of caddy's CPU; times caddy's CPU per request (from
  # /proc, same run) it gives the module's cost per request.
  SHARE=$(awk '$NF ~ /caddy-mcp-auth\.\(\*Handler\)\.ServeHTTP$/ { print $(NF-1); exit }' "$WORK/p2-mcpauth.txt")
  OWN_US=$(awk -v s="${SHARE:-0}" -v c="$CPU_US" 'BEGIN { printf "%.2f", (s + 0) / 100 * c }')
  PROF_LINE="mcp_auth's own cost = ${SHARE:-?} of caddy CPU samples = ${OWN_US} us/req of ${CPU_US} us/req (Handler.ServeHTTP cum, reverse_proxy excluded)"
  echo "$PROF_LINE"
  echo "profile: $WORK/p2.pprof (go tool pprof $WORK/caddy $WORK/p2.pprof)"
  KEEP=1
fi

# ---- phase 2: unknown-kid flood ---------------------------------------------
log "phase 2: unknown-kid flood against mcp_auth, ${FLOOD_DURATION}s, 2000 distinct kids"
F0=$(jwks_fetches)
BENCH_TOKENS=$WORK/unknown.txt run_wrk flood "http://127.0.0.1:$P2/mcp" "$FLOOD_DURATION" "$BENCH/tokens.lua"
sleep 1 # let a fetch started at the very end finish
F1=$(jwks_fetches)
FLOOD_RPS=$RPS
FLOOD_STATUS=$(awk '/^status:/ {sub(/^status: /, ""); print}' "$WORK/wrk-flood.txt")
FLOOD_FETCHES=$((F1 - F0))
FLOOD_ALLOWED=$((FLOOD_DURATION / REFETCH_FLOOR + 1))
echo "flood: $FLOOD_RPS req/s, p99 ${P99} ms, statuses: ${FLOOD_STATUS:-?}, JWKS fetches caused: $FLOOD_FETCHES (allowed: $FLOOD_ALLOWED)"
FLOOD_ALL401=no
case "$FLOOD_STATUS" in 401=*) [[ "$FLOOD_STATUS" != *" "* ]] && FLOOD_ALL401=yes ;; esac

# ---- phase 3: memory of a fresh caddy ---------------------------------------
log "phase 3: memory, fresh caddy, fill the token cache with $FILL distinct tokens"
stop_caddy
start_caddy
wait_ready
sleep 1
RSS_IDLE=$(rss_kib)
HEAP_IDLE=$(heap_live)
RSS_IDLE=$(rss_kib)
FILL_OUT=$(timeout 300 "$WORK/loader" -url "http://127.0.0.1:$P2/mcp" -tokens "$WORK/fill.txt" -c 4)
echo "$FILL_OUT"
sleep 1
RSS_FULL=$(rss_kib)
HEAP_FULL=$(heap_live)
RSS_FULL_GC=$(rss_kib)
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
mibb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
RSS_DIFF=$((RSS_FULL - RSS_IDLE))
HEAP_DIFF=$((HEAP_FULL - HEAP_IDLE))
PER_ENTRY=$((HEAP_DIFF / FILL))
echo "VmRSS idle $(mib "$RSS_IDLE") MiB, after fill $(mib "$RSS_FULL") MiB (diff $(mib "$RSS_DIFF") MiB); after forced GC $(mib "$RSS_FULL_GC") MiB"
echo "Go heap live after GC: idle $(mibb "$HEAP_IDLE") MiB, after fill $(mibb "$HEAP_FULL") MiB (diff $(mibb "$HEAP_DIFF") MiB, ~$PER_ENTRY B per token)"

# ---- summary ----------------------------------------------------------------
verdict() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? "MET" : "NOT MET" }'; }
FLOOD_VERDICT=$([ "$FLOOD_FETCHES" -le "$FLOOD_ALLOWED" ] && [ "$FLOOD_ALL401" = yes ] && echo MET || echo "NOT MET")
echo
echo "==================== summary ===================="
echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(go env GOVERSION), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "wrk -t$THREADS -c$CONNS ${DURATION}s x $REPS interleaved pairs, same POST + Authorization on both sites (plain strips it upstream: $PLAIN_STRIP)"
printf '  plain reverse_proxy : %10s req/s  p50 %7s ms  p99 %7s ms  caddy CPU %6s us/req\n' "$MED_R1" "$MED_M1" "$MED_L1" "$MED_C1"
printf '  mcp_auth + proxy    : %10s req/s  p50 %7s ms  p99 %7s ms  caddy CPU %6s us/req\n' "$MED_R2" "$MED_M2" "$MED_L2" "$MED_C2"
echo "  throughput ratio    : $RATIO_RPS (per-pair median $RATIO_PAIR; target >= $TARGET_RATIO: $(verdict "$RATIO_RPS" "$TARGET_RATIO"))"
echo "  p99 ratio           : $RATIO_P99"
echo "  caddy CPU/req ratio : $RATIO_CPU (plain/mcp_auth: throughput ratio if caddy alone were CPU-bound)"
echo "  profile             : $PROF_LINE"
echo "unknown-kid flood ${FLOOD_DURATION}s: $FLOOD_RPS req/s, ${FLOOD_STATUS:-?}, JWKS fetches $FLOOD_FETCHES (allowed $FLOOD_ALLOWED): $FLOOD_VERDICT"
echo "memory ($FILL tokens): VmRSS $(mib "$RSS_IDLE") -> $(mib "$RSS_FULL") MiB (+$(mib "$RSS_DIFF")), Go heap after GC +$(mibb "$HEAP_DIFF") MiB (~$PER_ENTRY B/token)"
echo "================================================="
