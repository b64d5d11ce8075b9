#!/usr/bin/env bash
# What Portcullis's security costs: the reference app (portcullis-demo, every layer on)
# against the same routes behind the stack a Rust user would assemble by hand from the
# popular crates (bench/peer: tower-http, tower-sessions, tower_governor, jsonwebtoken,
# argon2) and on bare axum (bench/floor, no layer), under the same load from the same
# load generator, on loopback only. BENCHMARKS.md explains the figures.
#
#   bash bench/run.sh
#
# Settings, from the environment:
#   BENCH_DURATION      seconds per run (default 5)
#   BENCH_ROUNDS        runs per server and scenario, the three servers taking turns
#                       to go first; medians are reported (default 3)
#   BENCH_CONNECTIONS   concurrent connections of every throughput run (default 32)
#   BENCH_FLOOD         seconds of the login flood (default 10)
#   BENCH_IDLE_WAIT     seconds to wait, at most, for the 1-minute load average to fall
#                       below BENCH_IDLE_LOAD (default 0.8) before measuring (default 0:
#                       measure at once, the load average is printed either way)
#   BENCH_DEMO_ADDR     where the demo listens (default 127.0.0.1:18000)
#   BENCH_FLOOR_ADDR    where the floor listens (default 127.0.0.1:18100)
#   BENCH_PEER_ADDR     where the peer listens (default 127.0.0.1:18200)
#   BENCH_DEMO_LOG      the demo's PORTCULLIS_LOG and the peer's PEER_LOG (default
#                       info, the demo's default: one line per request, written to
#                       bench/.run/demo.log and bench/.run/peer.log)
#
# With the default settings the measuring takes about six minutes once the release
# builds exist (the first build of a clean clone takes longer).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH=$ROOT/bench
RUN=$BENCH/.run
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

DURATION=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
FLOOD=${BENCH_FLOOD:-10}
IDLE_WAIT=${BENCH_IDLE_WAIT:-0}
IDLE_LOAD=${BENCH_IDLE_LOAD:-0.8}
DEMO_ADDR=${BENCH_DEMO_ADDR:-127.0.0.1:18000}
FLOOR_ADDR=${BENCH_FLOOR_ADDR:-127.0.0.1:18100}
PEER_ADDR=${BENCH_PEER_ADDR:-127.0.0.1:18200}
DEMO_LOG=${BENCH_DEMO_LOG:-info}
DEMO=http://$DEMO_ADDR
FLOOR=http://$FLOOR_ADDR
PEER=http://$PEER_ADDR

USERNAME=bench
# Strong enough for the demo's policy (zxcvbn 3 or more, not a common password).
PASSWORD='lattice-harbor-quartz-91'
LOGIN_JSON="{\"username\":\"$USERNAME\",\"password\":\"$PASSWORD\"}"
COMMENT_JSON='{"body":"A comment posted by the load generator."}'

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 1; }

for tool in curl jq awk; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is needed (apt-get install $tool)"
done
for addr in "$DEMO_ADDR" "$FLOOR_ADDR" "$PEER_ADDR"; do
  case $addr in
    127.*|localhost:*|\[::1\]:*) ;;
    *) die "$addr is not a loopback address; load tests stay on this machine" ;;
  esac
done

# ---------------------------------------------------------------- load generator
# oha from crates.io into bench/.tools, unless one is on the PATH already.
OHA=$(command -v oha || true)
if [ -z "$OHA" ]; then
  OHA=$BENCH/.tools/bin/oha
  if [ ! -x "$OHA" ]; then
    say "installing oha into bench/.tools (once)"
    cargo install oha --locked --root "$BENCH/.tools" >&2
  fi
fi

# ---------------------------------------------------------------- builds
# The floor and the peer are a workspace of their own (bench/Cargo.toml); all builds go
# to one target folder, so they reuse the demo's compiled dependencies.
say "building the demo, the peer and the floor (release)"
CARGO_TARGET_DIR=$TARGET cargo build --release -p portcullis-demo >&2
CARGO_TARGET_DIR=$TARGET cargo build --release --manifest-path "$BENCH/Cargo.toml" \
  -p portcullis-bench-floor -p portcullis-bench-peer >&2
DEMO_BIN=$TARGET/release/portcullis-demo
FLOOR_BIN=$TARGET/release/portcullis-bench-floor
PEER_BIN=$TARGET/release/portcullis-bench-peer

# ---------------------------------------------------------------- servers
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

for url in "$DEMO" "$FLOOR" "$PEER"; do
  if curl -s -o /dev/null --max-time 1 "$url/healthz"; then
    die "something already answers on $url; set BENCH_DEMO_ADDR / BENCH_FLOOR_ADDR / BENCH_PEER_ADDR"
  fi
done

wait_healthy() {
  local url=$1 pid=$2
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null --max-time 1 "$url/healthz" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || die "the server for $url exited; see bench/.run/*.log"
    sleep 0.2
  done
  die "$url did not answer /healthz"
}

# A clean environment, so that no PORTCULLIS_*, DATABASE_URL or REDIS_URL of the
# caller's shell changes what is measured. The pid goes to STARTED, not to standard
# output: a server started inside a command substitution would not be this shell's
# child, and `wait` could not see it exit.
start_demo() {
  local limits=$1 data=$2 log=$3 level=${4:-$DEMO_LOG}
  env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
    PORTCULLIS_ADDR="$DEMO_ADDR" PORTCULLIS_DATA_DIR="$data" \
    PORTCULLIS_RATE_LIMITS="$limits" PORTCULLIS_LOG="$level" \
    "$DEMO_BIN" >"$log" 2>&1 &
  STARTED=$!
  PIDS+=("$STARTED")
}

start_floor() {
  local data=$1 log=$2
  env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
    FLOOR_ADDR="$FLOOR_ADDR" PORTCULLIS_DATA_DIR="$data" \
    "$FLOOR_BIN" >"$log" 2>&1 &
  STARTED=$!
  PIDS+=("$STARTED")
}

# The peer with bench limits (its quotas ×1,000,000, as the demo's) and the demo's log
# level.
start_peer() {
  local data=$1 log=$2
  env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
    PEER_ADDR="$PEER_ADDR" PORTCULLIS_DATA_DIR="$data" \
    PEER_RATE_LIMITS=bench PEER_LOG="$DEMO_LOG" \
    "$PEER_BIN" >"$log" 2>&1 &
  STARTED=$!
  PIDS+=("$STARTED")
}

stop() {
  local pid=$1
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local kept=()
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  PIDS=("${kept[@]}")
}

# An access token from the server at $1 (the demo by default). The peer issues its own
# at its /api/token, from the same password checked against the same Argon2id hash, so
# that each server verifies tokens it signed.
token() {
  curl -fsS --max-time 10 -H 'content-type: application/json' -d "$LOGIN_JSON" \
    "${1:-$DEMO}/api/token" | jq -er .access_token
}

peak_rss_kib() {
  awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"
}

# ---------------------------------------------------------------- data
rm -rf "$RUN"
mkdir -p "$RUN/results"

say "preparing the data: a user registered through the form, 20 comments"
start_demo bench "$RUN/demo-data" "$RUN/prepare.log"
pid=$STARTED
wait_healthy "$DEMO" "$pid"
jar=$RUN/cookies.txt
csrf=$(curl -fsS -c "$jar" -b "$jar" "$DEMO/register" |
  sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -n 1)
[ -n "$csrf" ] || die "no CSRF token on /register"
status=$(curl -sS -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" \
  --data-urlencode "username=$USERNAME" --data-urlencode "password=$PASSWORD" \
  --data-urlencode "csrf_token=$csrf" "$DEMO/register")
[ "$status" = 303 ] || die "registration answered $status, not 303"
bearer=$(token)
for i in $(seq 1 20); do
  body=$(jq -cn --arg b "Comment $i: the portcullis drops <fast> & \"quietly\"; nothing here runs as a script." '{body: $b}')
  curl -fsS -o /dev/null -H "authorization: Bearer $bearer" \
    -H 'content-type: application/json' -d "$body" "$DEMO/api/comments"
done
stop "$pid"
# The floor and the peer read copies: the same rows, and each server's writes stay its
# own.
cp -a "$RUN/demo-data" "$RUN/floor-data"
cp -a "$RUN/demo-data" "$RUN/peer-data"

# ---------------------------------------------------------------- quiet machine
load1() { cut -d' ' -f1 /proc/loadavg; }
waited=0
while awk -v l="$(load1)" -v t="$IDLE_LOAD" 'BEGIN { exit !(l >= t) }' &&
  [ "$waited" -lt "$IDLE_WAIT" ]; do
  say "load average $(load1) >= $IDLE_LOAD; waiting ($waited/$IDLE_WAIT s)"
  sleep 30
  waited=$((waited + 30))
done
LOADAVG_START=$(cat /proc/loadavg)

# ---------------------------------------------------------------- measuring
start_demo bench "$RUN/demo-data" "$RUN/demo.log"
pid_demo=$STARTED
start_floor "$RUN/floor-data" "$RUN/floor.log"
pid_floor=$STARTED
start_peer "$RUN/peer-data" "$RUN/peer.log"
pid_peer=$STARTED
wait_healthy "$DEMO" "$pid_demo"
wait_healthy "$FLOOR" "$pid_floor"
wait_healthy "$PEER" "$pid_peer"

# One oha run; the JSON report goes to $1.
oha_run() {
  local out=$1
  shift
  "$OHA" --no-tui --output-format json "$@" >"$out"
}

# req/s, p50 ms, p99 ms, failures (non-2xx answers plus errors other than requests
# cut off by the deadline) of one report, tab-separated.
summarise() {
  jq -r '
    ([.statusCodeDistribution[]] | add // 0) as $n
    | ([.statusCodeDistribution | to_entries[] | select(.key | startswith("2") | not) | .value] | add // 0) as $bad
    | ([.errorDistribution | to_entries[] | select(.key != "aborted due to deadline") | .value] | add // 0) as $err
    | [($n / .summary.total), ((.latencyPercentiles.p50 // 0) * 1000), ((.latencyPercentiles.p99 // 0) * 1000), ($bad + $err)]
    | @tsv' "$1"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
column_of() { cut -f"$1" "$2" | median; }
total_of() { cut -f"$1" "$2" | awk '{ s += $1 } END { print s + 0 }'; }

# A short run on each server first: connections, caches and the allocator warm up
# before anything counts.
say "warming up"
oha_run "$RUN/warmup-floor.json" -z 2s -c "$CONNECTIONS" "$FLOOR/"
oha_run "$RUN/warmup-peer.json" -z 2s -c "$CONNECTIONS" "$PEER/"
oha_run "$RUN/warmup-demo.json" -z 2s -c "$CONNECTIONS" "$DEMO/"

# id | label | method | path | body (JSON) | which servers (the floor has no login)
SCENARIOS=(
  "healthz|GET /healthz|GET|/healthz||floor peer demo"
  "index|GET / (anonymous)|GET|/||floor peer demo"
  "me|GET /api/me (Bearer)|GET|/api/me||floor peer demo"
  "list|GET /api/comments?limit=20 (Bearer)|GET|/api/comments?limit=20||floor peer demo"
  "post|POST /api/comments (Bearer, JSON)|POST|/api/comments|$COMMENT_JSON|floor peer demo"
  "token|POST /api/token (login)|POST|/api/token|$LOGIN_JSON|peer demo"
)
# Reads first, then writes: the comments table grows only after every read ran.
RSS_DEMO_BEFORE_LOGIN=0
RSS_PEER_BEFORE_LOGIN=0
# One login for every scenario: each login is an Argon2 verification, whose memory
# would otherwise count against the scenarios that are not about logging in. An access
# token lives 15 minutes, so a long run gets new ones after ten. The floor is sent the
# demo's token and ignores it.
bearer=$(token)
peer_bearer=$(token "$PEER")
bearer_at=$SECONDS

for scenario in "${SCENARIOS[@]}"; do
  IFS='|' read -r id label method path body servers <<<"$scenario"
  # Argon2 needs 19 MiB per verification in flight: the peak before the login runs
  # is what serving pages and the API costs (with the one login above).
  if [ "$id" = token ]; then
    RSS_DEMO_BEFORE_LOGIN=$(peak_rss_kib "$pid_demo")
    RSS_PEER_BEFORE_LOGIN=$(peak_rss_kib "$pid_peer")
  fi
  if [ $((SECONDS - bearer_at)) -gt 600 ]; then
    bearer=$(token)
    peer_bearer=$(token "$PEER")
    bearer_at=$SECONDS
  fi
  args=(-z "${DURATION}s" -c "$CONNECTIONS" -m "$method")
  if [ -n "$body" ]; then args+=(-T application/json -d "$body"); fi
  for server in floor peer demo; do : >"$RUN/results/$id.$server.tsv"; done
  read -r -a turns <<<"$servers"
  for round in $(seq 1 "$ROUNDS"); do
    # The servers take turns to go first (the order rotates by one each round), so
    # that a drift of the machine's state during a scenario does not always favour
    # the same one.
    for i in $(seq 0 $((${#turns[@]} - 1))); do
      server=${turns[$(((i + round - 1) % ${#turns[@]}))]}
      case $server in
        floor) base=$FLOOR auth=$bearer ;;
        peer) base=$PEER auth=$peer_bearer ;;
        demo) base=$DEMO auth=$bearer ;;
      esac
      say "$label: $server, round $round/$ROUNDS"
      report=$RUN/results/$id.$server.$round.json
      oha_run "$report" "${args[@]}" -H "authorization: Bearer $auth" "$base$path"
      summarise "$report" >>"$RUN/results/$id.$server.tsv"
      sleep 1
    done
  done
done

# The login flood: /api/token at full concurrency while a second load generator, at a
# modest fixed rate, measures what an ordinary request waits meanwhile.
say "login flood: ${FLOOD}s of /api/token, /healthz latency measured meanwhile"
oha_run "$RUN/results/flood-token.json" -z "${FLOOD}s" -c "$CONNECTIONS" -m POST \
  -T application/json -d "$LOGIN_JSON" "$DEMO/api/token" &
flood_pid=$!
sleep 1
probe_seconds=$((FLOOD > 3 ? FLOOD - 2 : 1))
oha_run "$RUN/results/flood-healthz.json" -z "${probe_seconds}s" -c 2 -q 100 "$DEMO/healthz"
wait "$flood_pid"

RSS_DEMO=$(peak_rss_kib "$pid_demo")
RSS_FLOOR=$(peak_rss_kib "$pid_floor")
RSS_PEER=$(peak_rss_kib "$pid_peer")
stop "$pid_demo"
stop "$pid_floor"
stop "$pid_peer"

# The same stack without the access log (PORTCULLIS_LOG=warn): how much of the cost on
# the cheapest routes is the one INFO line per request. Bench limits, one run each.
say "without the access log: /healthz and /api/me"
start_demo bench "$RUN/demo-data" "$RUN/demo-quiet.log" warn
pid_demo=$STARTED
wait_healthy "$DEMO" "$pid_demo"
oha_run "$RUN/results/quiet-healthz.json" -z "${DURATION}s" -c "$CONNECTIONS" "$DEMO/healthz"
oha_run "$RUN/results/quiet-me.json" -z "${DURATION}s" -c "$CONNECTIONS" \
  -H "authorization: Bearer $bearer" "$DEMO/api/me"
stop "$pid_demo"

# Normal limits: /api/token allows 10 a minute per client and per username, so nearly
# every answer of this run is a 429, and what one costs is what is measured.
say "normal limits: /api/token hammered, 429s measured"
start_demo normal "$RUN/demo-data" "$RUN/demo-normal.log"
pid_demo=$STARTED
wait_healthy "$DEMO" "$pid_demo"
oha_run "$RUN/results/limited.json" -z "${DURATION}s" -c "$CONNECTIONS" -m POST \
  --stats-success-breakdown -T application/json -d "$LOGIN_JSON" "$DEMO/api/token"
stop "$pid_demo"

# ---------------------------------------------------------------- report
fmt() { awk -v v="$1" -v d="${2:-2}" 'BEGIN { printf "%.*f", d, v }'; }
TABLE=$RUN/table.txt
{
  echo "portcullis-demo against a hand-assembled stack (bench/peer) and bare axum (bench/floor), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "machine: $(nproc) cores, $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo); loadavg at start: $LOADAVG_START"
  echo "$("$OHA" --version); $(rustc --version); $CONNECTIONS connections, ${DURATION}s per run, $ROUNDS rounds, medians"
  echo "req/s of each server; demo/peer and demo/floor their ratios; p50/p99 in ms; non_2xx the demo's; (!n) marks n failures of the peer or floor"
  echo
  ratio_of() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
  row='%-38s %10s %10s %11s %9s %10s %8s %8s %8s %8s %9s %9s %8s\n'
  printf "$row" scenario demo_req/s peer_req/s floor_req/s demo/peer demo/floor p50_ms p99_ms peer_p50 peer_p99 floor_p50 floor_p99 non_2xx
  for scenario in "${SCENARIOS[@]}"; do
    IFS='|' read -r id label _ _ _ servers <<<"$scenario"
    demo_tsv=$RUN/results/$id.demo.tsv
    rps=$(column_of 1 "$demo_tsv")
    bad=$(total_of 4 "$demo_tsv")
    # The peer's and the floor's columns, or dashes where a server has no such route.
    for other in peer floor; do
      tsv=$RUN/results/$id.$other.tsv
      if [[ " $servers " == *" $other "* ]]; then
        orps=$(column_of 1 "$tsv")
        op99=$(fmt "$(column_of 3 "$tsv")")
        obad=$(total_of 4 "$tsv")
        [ "$obad" = 0 ] || op99="$op99(!$obad)"
        printf -v "${other}_cols" '%s|%s|%s|%s' "$(fmt "$orps" 0)" "$(ratio_of "$rps" "$orps")" \
          "$(fmt "$(column_of 2 "$tsv")")" "$op99"
      else
        printf -v "${other}_cols" '%s|%s|%s|%s' - - - -
      fi
    done
    IFS='|' read -r prps pratio pp50 pp99 <<<"$peer_cols"
    IFS='|' read -r frps fratio fp50 fp99 <<<"$floor_cols"
    printf "$row" "$label" "$(fmt "$rps" 0)" "$prps" "$frps" "$pratio" "$fratio" \
      "$(fmt "$(column_of 2 "$demo_tsv")")" "$(fmt "$(column_of 3 "$demo_tsv")")" \
      "$pp50" "$pp99" "$fp50" "$fp99" "$bad"
  done
  echo
  flood=$(summarise "$RUN/results/flood-token.json")
  probe=$(summarise "$RUN/results/flood-healthz.json")
  printf 'login flood (%ss, %s connections): /api/token %s req/s, p99 %s ms, non_2xx %s\n' \
    "$FLOOD" "$CONNECTIONS" "$(fmt "$(cut -f1 <<<"$flood")" 1)" \
    "$(fmt "$(cut -f3 <<<"$flood")" 1)" "$(cut -f4 <<<"$flood")"
  printf '  /healthz meanwhile (2 connections, 100 req/s): p50 %s ms, p99 %s ms, non_2xx %s\n' \
    "$(fmt "$(cut -f2 <<<"$probe")")" "$(fmt "$(cut -f3 <<<"$probe")")" "$(cut -f4 <<<"$probe")"
  jq -r --arg c "$CONNECTIONS" --arg d "$DURATION" '
    (.statusCodeDistribution["429"] // 0) as $refused
    | ([.statusCodeDistribution[]] | add // 0) as $n
    | "normal limits, /api/token (\($d)s, \($c) connections): \($n / .summary.total | floor) req/s, \($refused) of \($n) answers 429, 429 p50 \((.latencyPercentilesNotSuccessful.p50 // 0) * 1000 * 100 | round / 100) ms, 429 p99 \((.latencyPercentilesNotSuccessful.p99 // 0) * 1000 * 100 | round / 100) ms"' \
    "$RUN/results/limited.json"
  for quiet in healthz me; do
    line=$(summarise "$RUN/results/quiet-$quiet.json")
    floor_rps=$(column_of 1 "$RUN/results/$quiet.floor.tsv")
    printf 'without the access log (PORTCULLIS_LOG=warn, one run), %s: %s req/s, p99 %s ms, ratio %s\n' \
      "$([ "$quiet" = me ] && echo "GET /api/me" || echo "GET /healthz")" \
      "$(fmt "$(cut -f1 <<<"$line")" 0)" "$(fmt "$(cut -f3 <<<"$line")")" \
      "$(awk -v a="$(cut -f1 <<<"$line")" -v b="$floor_rps" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')"
  done
  mib() { fmt "$(awk -v k="$1" 'BEGIN { print k / 1024 }')" 1; }
  echo "peak RSS (VmHWM): demo $(mib "$RSS_DEMO") MiB ($(mib "$RSS_DEMO_BEFORE_LOGIN") MiB before the login runs, one login included), peer $(mib "$RSS_PEER") MiB ($(mib "$RSS_PEER_BEFORE_LOGIN") MiB before), floor $(mib "$RSS_FLOOR") MiB"
  # The login target needs the single-verification time of the micro-benchmark.
  estimate=$TARGET/criterion/password/argon2id_verify/new/estimates.json
  if [ -f "$estimate" ]; then
    verify_ms=$(jq -r '.median.point_estimate / 1e6' "$estimate")
    login=$(column_of 1 "$RUN/results/token.demo.tsv")
    awk -v c="$(nproc)" -v t="$verify_ms" -v l="$login" 'BEGIN {
      printf "login ceiling: %d cores / %.1f ms (criterion argon2id_verify) = %.1f req/s; measured %.1f req/s = %.0f%%\n", c, t, c * 1000 / t, l, 100 * l / (c * 1000 / t) }'
  else
    echo "login ceiling: run 'cargo bench -p portcullis -- password' for the Argon2id verification time"
  fi
} | tee "$TABLE"
say "reports in bench/.run/results, the table in bench/.run/table.txt"
