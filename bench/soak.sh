#!/usr/bin/env bash
# The soak: ten minutes of mixed traffic at saturation against the release build of the
# reference app (portcullis-demo), on loopback only, sampling the app's memory, open
# file descriptors and tasks meanwhile, then looking for every acknowledged write in the
# database. RELIABILITY.md explains what is measured and holds the figures.
#
#   bash bench/soak.sh            SQLite and in-memory state (the default deployment)
#   bash bench/soak.sh --faults   PostgreSQL and Redis of this script's own, each killed
#                                 and started again once while the traffic runs
#
# The traffic is bench/soak (a Rust load generator): page views, form and API sign-ins
# with right and wrong passwords, comments through the form (session cookie and CSRF
# token) and the API (Bearer), token refreshes and revocations, PNG uploads, CSP
# reports, and a trickle of hostile requests (oversized bodies, bad or missing CSRF
# tokens, forged tokens, traversal names and paths, bodies of the wrong type).
#
# It fails (exit status 1) when any answer is a 5xx (in --faults, a 503 while a backend
# is down, or within SOAK_GRACE seconds of its return, is expected and counted apart),
# when a request fails or hangs (no answer within 30 s), when an acknowledged write is
# not in the database or a refused one is, when a hostile request is accepted, when the
# app exits or does not answer /healthz at the end, and, without --faults, when any
# request gets an answer its kind does not expect (with --faults, sessions and refresh
# tokens that the empty restarted Redis forgot are answered 401/403, and counted).
#
# Settings, from the environment:
#   SOAK_SECONDS      seconds of traffic (default 600)
#   SOAK_WORKERS      requests in flight (default 32)
#   SOAK_USERS        accounts the workers share (default 8)
#   SOAK_LOGINS       sign-ins (Argon2id verifications) in flight at most (default 1)
#   SOAK_SAMPLE       seconds between samples of RSS, descriptors and tasks (default 5)
#   SOAK_DEMO_ADDR    where the app listens (default 127.0.0.1:18000)
#   SOAK_DEMO_LOG     the app's PORTCULLIS_LOG (default info: one line per request)
#   SOAK_REDIS_PORT   --faults: this script's redis-server (default 6390)
#   SOAK_PG_PORT      --faults: this script's PostgreSQL cluster (default 5440)
#   SOAK_DOWN         --faults: seconds each backend stays down (default 20)
#   SOAK_GRACE        --faults: seconds after a backend is back during which a 503 is
#                     still expected (requests that began while it was down; default 15)
#
# The machine's own Redis (6379) and PostgreSQL (5432) are never touched: --faults
# starts, kills and restarts only the servers it started, on the ports above.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH=$ROOT/bench
RUN=$BENCH/.soak
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

FAULTS=0
case ${1:-} in
  --faults) FAULTS=1 ;;
  "") ;;
  *) printf 'usage: bash bench/soak.sh [--faults]\n' >&2; exit 2 ;;
esac

SECONDS_TOTAL=${SOAK_SECONDS:-600}
WORKERS=${SOAK_WORKERS:-32}
USERS=${SOAK_USERS:-8}
LOGINS=${SOAK_LOGINS:-1}
SAMPLE=${SOAK_SAMPLE:-5}
DEMO_ADDR=${SOAK_DEMO_ADDR:-127.0.0.1:18000}
DEMO_LOG=${SOAK_DEMO_LOG:-info}
REDIS_PORT=${SOAK_REDIS_PORT:-6390}
PG_PORT=${SOAK_PG_PORT:-5440}
DOWN=${SOAK_DOWN:-20}
GRACE=${SOAK_GRACE:-15}
DEMO=http://$DEMO_ADDR

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench/soak.sh: %s\n' "$*" >&2; exit 1; }

for tool in curl jq awk sqlite3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is needed (apt-get install $tool)"
done
case $DEMO_ADDR in
  127.*|localhost:*|\[::1\]:*) ;;
  *) die "$DEMO_ADDR is not a loopback address; the soak stays on this machine" ;;
esac
if [ "$FAULTS" = 1 ]; then
  command -v redis-server >/dev/null 2>&1 || die "redis-server is needed for --faults"
  command -v redis-cli >/dev/null 2>&1 || die "redis-cli is needed for --faults"
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -x "${PG_BIN:-}/initdb" ] || die "PostgreSQL's initdb is needed for --faults (/usr/lib/postgresql/*/bin)"
  command -v psql >/dev/null 2>&1 || die "psql is needed for --faults"
  for port in "$REDIS_PORT" "$PG_PORT"; do
    case $port in
      6379|5432) die "port $port belongs to the machine's own server; choose another" ;;
    esac
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      die "something already listens on 127.0.0.1:$port; set SOAK_REDIS_PORT / SOAK_PG_PORT"
    fi
  done
fi
if curl -s -o /dev/null --max-time 1 "$DEMO/healthz"; then
  die "something already answers on $DEMO; set SOAK_DEMO_ADDR"
fi

# ---------------------------------------------------------------- builds
say "building the demo and the load generator (release)"
CARGO_TARGET_DIR=$TARGET cargo build --release -p portcullis-demo >&2
CARGO_TARGET_DIR=$TARGET cargo build --release --manifest-path "$BENCH/Cargo.toml" \
  -p portcullis-bench-soak >&2
DEMO_BIN=$TARGET/release/portcullis-demo
SOAK_BIN=$TARGET/release/portcullis-bench-soak

rm -rf "$RUN"
mkdir -p "$RUN"
EVENTS=$RUN/events.tsv
: >"$EVENTS"
event() { printf '%s\t%s\n' "$1" "$(date +%s)" >>"$EVENTS"; say "$1"; }

# ---------------------------------------------------------------- processes
PIDS=()
PG_DATA=
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -n "$PG_DATA" ]; then rm -rf "$(dirname "$PG_DATA")"; fi
}
trap cleanup EXIT

forget() {
  local kept=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
  PIDS=("${kept[@]}")
}

# initdb refuses to run as root: the cluster then belongs to the postgres user.
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

REDIS_PID=
start_redis() {
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$RUN" >>"$RUN/redis.log" 2>&1 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  for _ in $(seq 1 100); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "our redis-server did not start (see bench/.soak/redis.log)"
}

kill_redis() {
  kill -9 "$REDIS_PID" 2>/dev/null || true
  wait "$REDIS_PID" 2>/dev/null || true
  forget "$REDIS_PID"
}

start_postgres() {
  as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/../postgres.log" -w -t 30 \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $(dirname "$PG_DATA")" start >/dev/null
}

# An immediate shutdown: every backend process is killed, nothing is flushed politely;
# committed transactions survive through the WAL, as after a crash.
kill_postgres() {
  as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null
}

psql_soak() {
  psql -X -q -At -h 127.0.0.1 -p "$PG_PORT" -U postgres -d soak "$@"
}

wait_healthy() {
  local pid=$1
  for _ in $(seq 1 150); do
    curl -fsS -o /dev/null --max-time 1 "$DEMO/healthz" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || die "the demo exited; see bench/.soak/demo.log"
    sleep 0.2
  done
  die "$DEMO did not answer /healthz"
}

BACKENDS=()
if [ "$FAULTS" = 1 ]; then
  say "starting our own redis-server on $REDIS_PORT and PostgreSQL on $PG_PORT"
  start_redis
  pg_root=$(mktemp -d /tmp/portcullis-soak-pg.XXXXXX)
  PG_DATA=$pg_root/data
  if [ "$(id -u)" = 0 ]; then chown postgres: "$pg_root"; fi
  as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 \
    >"$RUN/initdb.log" 2>&1 || die "initdb failed (see bench/.soak/initdb.log)"
  start_postgres
  psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c 'CREATE DATABASE soak' ||
    die "cannot create the soak database"
  BACKENDS=(DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/soak"
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT")
fi

# A clean environment: no PORTCULLIS_*, DATABASE_URL or REDIS_URL of the caller's shell.
say "starting the demo on $DEMO"
env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
  PORTCULLIS_ADDR="$DEMO_ADDR" PORTCULLIS_DATA_DIR="$RUN/data" \
  PORTCULLIS_RATE_LIMITS=bench PORTCULLIS_LOG="$DEMO_LOG" "${BACKENDS[@]}" \
  "$DEMO_BIN" >"$RUN/demo.log" 2>&1 &
DEMO_PID=$!
PIDS+=("$DEMO_PID")
wait_healthy "$DEMO_PID"

# ---------------------------------------------------------------- sampling
# Every SOAK_SAMPLE seconds: Unix time, resident memory (KiB), open descriptors,
# threads. The demo's /proc entries only: nothing else is counted.
SAMPLES=$RUN/samples.tsv
sample() {
  local rss fds tasks
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$DEMO_PID/status" 2>/dev/null) || return 1
  fds=$(find "/proc/$DEMO_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  tasks=$(find "/proc/$DEMO_PID/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  printf '%s\t%s\t%s\t%s\n' "$(date +%s)" "$rss" "$fds" "$tasks"
}
sample >"$RUN/idle.tsv"
(
  while kill -0 "$DEMO_PID" 2>/dev/null; do
    sample || break
    sleep "$SAMPLE"
  done
) >"$SAMPLES" &
SAMPLER_PID=$!
PIDS+=("$SAMPLER_PID")

# ---------------------------------------------------------------- traffic
say "traffic: ${SECONDS_TOTAL}s, $WORKERS workers, $USERS users$([ "$FAULTS" = 1 ] && echo ", Redis down at 1/3, PostgreSQL at 2/3, ${DOWN}s each")"
LOADAVG_START=$(cat /proc/loadavg)
env SOAK_BASE="$DEMO" SOAK_SECONDS="$SECONDS_TOTAL" SOAK_WORKERS="$WORKERS" \
  SOAK_USERS="$USERS" SOAK_LOGINS="$LOGINS" SOAK_REPORT="$RUN/report.json" \
  SOAK_ACKS="$RUN/acks.tsv" "$SOAK_BIN" &
LOAD_PID=$!
PIDS+=("$LOAD_PID")
event traffic_started

if [ "$FAULTS" = 1 ]; then
  sleep $((SECONDS_TOTAL / 3))
  event redis_down
  kill_redis
  sleep "$DOWN"
  start_redis
  event redis_up
  sleep $((SECONDS_TOTAL * 2 / 3 - SECONDS_TOTAL / 3 - DOWN))
  event postgres_down
  kill_postgres
  sleep "$DOWN"
  start_postgres
  event postgres_up
fi

status=0
wait "$LOAD_PID" || status=$?
forget "$LOAD_PID"
event traffic_ended
[ "$status" = 0 ] || die "the load generator failed (exit status $status)"

FAILURES=()
fail() { FAILURES+=("$*"); }

kill -0 "$DEMO_PID" 2>/dev/null || fail "the demo exited during the run"
HEALTH_END=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$DEMO/healthz" || true)
[ "$HEALTH_END" = 200 ] || fail "/healthz answered $HEALTH_END at the end, not 200"
sleep "$SAMPLE"
kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
forget "$SAMPLER_PID"
kill "$DEMO_PID" 2>/dev/null || true
wait "$DEMO_PID" 2>/dev/null || true
forget "$DEMO_PID"

# ---------------------------------------------------------------- the database
# Markers of what was written, as stored; then what was acknowledged (or refused) but
# is missing (or present).
marker='soak-[0-9]+-[a-z][0-9]+-[0-9]+'
if [ "$FAULTS" = 1 ]; then
  psql_soak -c 'SELECT body FROM comments' >"$RUN/db-comments.txt"
  psql_soak -c 'SELECT display_name FROM files' >"$RUN/db-files.txt"
else
  sqlite3 "$RUN/data/portcullis.db" 'SELECT body FROM comments' >"$RUN/db-comments.txt"
  sqlite3 "$RUN/data/portcullis.db" 'SELECT display_name FROM files' >"$RUN/db-files.txt"
fi
{ grep -Eo "$marker" "$RUN/db-comments.txt" || true; } | sort >"$RUN/stored-comments.txt"
{ grep -Eo "$marker" "$RUN/db-files.txt" || true; } | sort >"$RUN/stored-uploads.txt"
sort -u "$RUN/stored-comments.txt" "$RUN/stored-uploads.txt" >"$RUN/stored.txt"
awk -F'\t' '$1 == "comment" { print $2 }' "$RUN/acks.tsv" | sort -u >"$RUN/acked-comments.txt"
awk -F'\t' '$1 == "upload" { sub(/\.png$/, "", $2); print $2 }' "$RUN/acks.tsv" | sort -u >"$RUN/acked-uploads.txt"
awk -F'\t' '$1 == "refused" { print $2 }' "$RUN/acks.tsv" | sort -u >"$RUN/refused.txt"
count() { wc -l <"$1" | tr -d ' '; }
missing_comments=$(comm -23 "$RUN/acked-comments.txt" <(sort -u "$RUN/stored-comments.txt") | wc -l)
missing_uploads=$(comm -23 "$RUN/acked-uploads.txt" <(sort -u "$RUN/stored-uploads.txt") | wc -l)
refused_stored=$(comm -12 "$RUN/refused.txt" "$RUN/stored.txt" | wc -l)
duplicated=$(($(count "$RUN/stored-comments.txt") - $(sort -u "$RUN/stored-comments.txt" | wc -l)))
unacked_stored=$(($(sort -u "$RUN/stored-comments.txt" | wc -l) - $(count "$RUN/acked-comments.txt") + missing_comments))
[ "$missing_comments" = 0 ] || fail "$missing_comments acknowledged comments are not in the database"
[ "$missing_uploads" = 0 ] || fail "$missing_uploads acknowledged uploads are not in the database"
[ "$refused_stored" = 0 ] || fail "$refused_stored refused comments are in the database"
[ "$duplicated" = 0 ] || fail "$duplicated comments are stored twice"

# ---------------------------------------------------------------- the answers
REPORT=$RUN/report.json
# 503s by second, against the windows in which a backend was down (and SOAK_GRACE
# seconds after): inside one they are expected, anywhere else they fail the run.
windows=$(awk -F'\t' -v g="$GRACE" '
  $1 ~ /_down$/ { split($1, a, "_"); down[a[1]] = $2 }
  $1 ~ /_up$/ { split($1, a, "_"); printf "%s%s %d %d", sep, a[1], down[a[1]], $2 + g; sep = "," }' \
  "$EVENTS")
classify() {
  jq -r --arg w "$windows" '
    ($w | split(",") | map(select(length > 0) | split(" ") | {name: .[0], from: (.[1] | tonumber), to: (.[2] | tonumber)})) as $wins
    | [.per_second[] | {t: .[0], n: (.[1]["503"] // 0)} | select(.n > 0)
       | . + {w: ([$wins[] as $x | select(.t >= $x.from and .t <= $x.to) | $x.name] | first // "none")}]
    | group_by(.w) | map({key: .[0].w, value: {n: (map(.n) | add), last: (map(.t) | max)}}) | from_entries' "$REPORT"
}
CLASSES=$(classify)
expected_503=$(jq '[to_entries[] | select(.key != "none") | .value.n] | add // 0' <<<"$CLASSES")
stray_503=$(jq '.none.n // 0' <<<"$CLASSES")
other_5xx=$(jq '[.by_status | to_entries[] | select((.key | startswith("5")) and .key != "503") | .value] | add // 0' "$REPORT")
errors=$(jq '[.by_status | to_entries[] | select(.key | startswith("error")) | .value] | add // 0' "$REPORT")
slow=$(jq '.slow_over_10s' "$REPORT")
accepted=$(jq '[.hostile_accepted[]] | add // 0' "$REPORT")
unexpected_non5xx=$(jq '[.unexpected[] | to_entries[] | select((.key | startswith("5") or startswith("error")) | not) | .value] | add // 0' "$REPORT")
[ "$stray_503" = 0 ] || fail "$stray_503 answers were 503 while no backend was down"
[ "$other_5xx" = 0 ] || fail "$other_5xx answers were a 5xx other than 503"
[ "$errors" = 0 ] || fail "$errors requests got no answer (connection errors or 30 s timeouts)"
[ "$accepted" = 0 ] || fail "$accepted hostile requests were accepted"
if [ "$FAULTS" = 0 ]; then
  [ "$unexpected_non5xx" = 0 ] || fail "$unexpected_non5xx answers were not what their request expects"
fi

# ---------------------------------------------------------------- resources
# Start: the first sample under traffic; middle: the sample nearest half-time; end: the
# last sample before the traffic stopped. Growth is end against middle: the first
# minutes fill caches, pools and bounded stores, a leak keeps growing after them.
t0=$(awk -F'\t' '$1 == "traffic_started" { print $2 }' "$EVENTS")
t1=$(awk -F'\t' '$1 == "traffic_ended" { print $2 }' "$EVENTS")
pick_sample() {
  awk -F'\t' -v at="$1" -v t0="$t0" -v t1="$t1" '
    $1 >= t0 && $1 <= t1 { d = $1 - at; if (d < 0) d = -d; if (best == "" || d < bestd) { best = $0; bestd = d } }
    END { print best }' "$SAMPLES"
}
S_START=$(pick_sample "$t0")
S_MID=$(pick_sample $(((t0 + t1) / 2)))
S_END=$(pick_sample "$t1")
S_IDLE=$(cat "$RUN/idle.tsv")
field() { cut -f"$2" <<<"$1"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
range() {
  awk -F'\t' -v c="$1" -v t0="$t0" -v t1="$t1" '$1 >= t0 && $1 <= t1 { if (min == "" || $c < min) min = $c; if ($c > max) max = $c } END { print min "\t" max }' "$SAMPLES"
}
rss_growth=$(awk -v m="$(field "$S_MID" 2)" -v e="$(field "$S_END" 2)" 'BEGIN { printf "%+.1f", (m > 0 ? 100 * (e - m) / m : 0) }')
rss_range=$(range 2)
fd_range=$(range 3)
task_range=$(range 4)
# Flat: the end no more than 10% (and 16 MiB) above the middle; descriptors and tasks
# no more than the workers' connections above the middle.
rss_flat=$(awk -v m="$(field "$S_MID" 2)" -v e="$(field "$S_END" 2)" 'BEGIN { print (e <= m * 1.10 || e - m <= 16384) ? "yes" : "no" }')
fd_flat=$(awk -v m="$(field "$S_MID" 3)" -v e="$(field "$S_END" 3)" -v w="$WORKERS" 'BEGIN { print (e <= m + w) ? "yes" : "no" }')
[ "$rss_flat" = yes ] || fail "RSS grew from $(mib "$(field "$S_MID" 2)") MiB at half-time to $(mib "$(field "$S_END" 2)") MiB at the end"
[ "$fd_flat" = yes ] || fail "open descriptors grew from $(field "$S_MID" 3) at half-time to $(field "$S_END" 3) at the end"

# ---------------------------------------------------------------- report
TABLE=$RUN/summary.txt
{
  if [ "$FAULTS" = 1 ]; then
    echo "soak --faults: PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }') and Redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') of its own, Redis killed at 1/3 and PostgreSQL at 2/3, ${DOWN}s down each"
  else
    echo "soak: SQLite and in-memory sessions, limits and revocations (the default deployment)"
  fi
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), loadavg at start: $LOADAVG_START"
  jq -r '"\(.seconds | floor) s of traffic, \(.workers) workers, \(.users) users, \(.logins_in_flight) sign-in in flight at most: \(.requests) requests, \(.requests_per_second | floor) req/s"' "$REPORT"
  echo
  echo "answers by status:"
  jq -r '.by_status | to_entries[] | "  \(.key)\t\(.value)"' "$REPORT"
  echo "5xx: $(jq '[.by_status | to_entries[] | select(.key | startswith("5")) | .value] | add // 0' "$REPORT") (503 while a backend was down or within ${GRACE}s of its return: $expected_503; any other 5xx: $((stray_503 + other_5xx)))"
  if [ "$FAULTS" = 1 ]; then
    for backend in redis postgres; do
      down=$(awk -F'\t' -v e="${backend}_down" '$1 == e { print $2 }' "$EVENTS")
      up=$(awk -F'\t' -v e="${backend}_up" '$1 == e { print $2 }' "$EVENTS")
      n=$(jq --arg b "$backend" '.[$b].n // 0' <<<"$CLASSES")
      last=$(jq --arg b "$backend" '.[$b].last // 0' <<<"$CLASSES")
      after=$(( last > up ? last - up : 0 ))
      echo "  $backend down $((up - down)) s (from $((down - t0)) s into the run): $n answers 503; the last $after s after it was back"
    done
  fi
  echo "requests without an answer (connection errors, 30 s timeouts): $errors; slower than 10 s: $slow"
  echo "hostile requests accepted: $accepted"
  echo "sessions lost (signed in again): $(jq .sessions_lost "$REPORT"); token pairs lost (new pair): $(jq .tokens_lost "$REPORT")"
  echo "answers a request did not expect (other than 5xx):"
  jq -r '.unexpected | to_entries[] | .key as $k | .value | to_entries[] | select((.key | startswith("5") or startswith("error")) | not) | "  \($k): \(.key) x\(.value)"' "$REPORT"
  echo
  printf 'acknowledged writes: %s form comments, %s API comments, %s uploads (%s with ../ in the name)\n' \
    "$(jq '.acknowledged["POST /comments (form)"] // 0' "$REPORT")" \
    "$(jq '.acknowledged["POST /api/comments"] // 0' "$REPORT")" \
    "$(jq '.acknowledged["POST /upload (PNG)"] // 0' "$REPORT")" \
    "$(jq '.acknowledged["POST /upload (../ in the name)"] // 0' "$REPORT")"
  printf 'in the database: %s of %s acknowledged comments, %s of %s acknowledged uploads; %s comments stored twice\n' \
    "$(($(count "$RUN/acked-comments.txt") - missing_comments))" "$(count "$RUN/acked-comments.txt")" \
    "$(($(count "$RUN/acked-uploads.txt") - missing_uploads))" "$(count "$RUN/acked-uploads.txt")" "$duplicated"
  printf 'refused comments (bad, missing CSRF token; oversized) in the database: %s of %s; stored but not acknowledged: %s\n' \
    "$refused_stored" "$(count "$RUN/refused.txt")" "$unacked_stored"
  echo
  printf 'demo RSS MiB: idle %s, start %s, middle %s, end %s (min %s, max %s; end vs middle %s%%, flat: %s)\n' \
    "$(mib "$(field "$S_IDLE" 2)")" "$(mib "$(field "$S_START" 2)")" "$(mib "$(field "$S_MID" 2)")" \
    "$(mib "$(field "$S_END" 2)")" "$(mib "$(cut -f1 <<<"$rss_range")")" "$(mib "$(cut -f2 <<<"$rss_range")")" \
    "$rss_growth" "$rss_flat"
  printf 'open descriptors: idle %s, start %s, middle %s, end %s (min %s, max %s; flat: %s)\n' \
    "$(field "$S_IDLE" 3)" "$(field "$S_START" 3)" "$(field "$S_MID" 3)" "$(field "$S_END" 3)" \
    "$(cut -f1 <<<"$fd_range")" "$(cut -f2 <<<"$fd_range")" "$fd_flat"
  printf 'tasks (threads): idle %s, start %s, middle %s, end %s (min %s, max %s)\n' \
    "$(field "$S_IDLE" 4)" "$(field "$S_START" 4)" "$(field "$S_MID" 4)" "$(field "$S_END" 4)" \
    "$(cut -f1 <<<"$task_range")" "$(cut -f2 <<<"$task_range")"
  echo "samples: every ${SAMPLE}s, $(wc -l <"$SAMPLES" | tr -d ' ') in bench/.soak/samples.tsv"
  echo
  echo "by request kind (status x count):"
  jq -r '.by_kind | to_entries[] | "  \(.key): \(.value | to_entries | map("\(.key) x\(.value)") | join(", "))"' "$REPORT"
  echo
  if [ "${#FAILURES[@]}" = 0 ]; then
    echo "PASS"
  else
    printf 'FAIL: %s\n' "${FAILURES[@]}"
  fi
} | tee "$TABLE"
say "report in bench/.soak/report.json, the summary in bench/.soak/summary.txt"
[ "${#FAILURES[@]}" = 0 ]
