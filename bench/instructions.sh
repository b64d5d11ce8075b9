#!/usr/bin/env bash
# Instructions per request, counted by callgrind: deterministic where req/s are not
# (a shared two-core machine), so that a change that adds work on the hot path shows
# whatever the machine's noise. For the demo (every layer), the peer (bench/peer: the
# stack assembled by hand from the popular crates) and the floor (bare axum), per
# scenario:
#
#   bash bench/instructions.sh
#
# Two figures per server: `all threads` is (Ir with N requests − Ir with none) / N,
# the same preparation and start-up in both runs (bench/instructions/src/main.rs),
# every thread counted (SQLite's worker, the log writer), which wake-ups make vary by
# a few thousand between runs; `request thread` is the Ir collected inside the
# measured loop alone (callgrind's --toggle-collect), divided by N, which repeats to
# within a few Ir. The top functions by inclusive cost of each server's measured loop
# go to bench/.run/instructions/top-<server>-<scenario>.txt.
#
#   INSTR_REQUESTS   requests per measured run (default 300)
#   INSTR_SCENARIOS  scenarios (default "healthz me index")
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
REQUESTS=${INSTR_REQUESTS:-300}
SCENARIOS=${INSTR_SCENARIOS:-healthz me index}
OUT=$ROOT/bench/.run/instructions

command -v valgrind >/dev/null 2>&1 || {
  echo "bench/instructions.sh: valgrind is needed (apt-get install valgrind)" >&2
  exit 1
}
# Symbols for the annotations: line tables only, the code as optimised as ever.
CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_TARGET_DIR=$TARGET \
  cargo build --release --manifest-path bench/Cargo.toml -p portcullis-bench-instructions >&2
BIN=$TARGET/release/portcullis-bench-instructions
rm -rf "$OUT"
mkdir -p "$OUT"

total_ir() {
  # The events line names the counters; the summary line holds their totals.
  awk '/^summary:/ { print $2; exit } /^totals:/ { print $2; exit }' "$1"
}

run() {
  local server=$1 scenario=$2 requests=$3
  local file=$OUT/$server-$scenario-$requests.out
  valgrind --tool=callgrind --callgrind-out-file="$file" \
    "$BIN" "$server" "$scenario" "$requests" >/dev/null 2>"$OUT/$server-$scenario-$requests.log"
  total_ir "$file"
}

printf '%-8s %-8s %22s %22s\n' scenario server 'Ir/request (all threads)' 'Ir/request (request thread)'
for scenario in $SCENARIOS; do
  declare -A per=() thread=()
  for server in floor peer demo; do
    base=$(run "$server" "$scenario" 0)
    loaded=$(run "$server" "$scenario" "$REQUESTS")
    per[$server]=$(( (loaded - base) / REQUESTS ))
    # Where the instructions go: the call graph collected inside the measured
    # requests only (this thread's share: the SQLite worker and the log writer run
    # on threads of their own), top functions by inclusive cost.
    valgrind --tool=callgrind --collect-atstart=no --toggle-collect='portcullis_bench_instructions::drive_requests' \
      --callgrind-out-file="$OUT/$server-$scenario-profile.out" \
      "$BIN" "$server" "$scenario" "$REQUESTS" >/dev/null 2>&1
    callgrind_annotate --inclusive=yes --threshold=99 \
      "$OUT/$server-$scenario-profile.out" 2>/dev/null | head -n 120 \
      >"$OUT/top-$server-$scenario.txt" || true
    thread[$server]=$(( $(total_ir "$OUT/$server-$scenario-profile.out") / REQUESTS ))
    printf '%-8s %-8s %22d %22d\n' "$scenario" "$server" "${per[$server]}" "${thread[$server]}"
  done
  awk -v d="${thread[demo]}" -v p="${thread[peer]}" -v f="${thread[floor]}" -v s="$scenario" \
    'BEGIN { printf "%-8s request thread: demo/floor %.2fx (%d Ir of security), demo/peer %.2fx\n", s, d / f, d - f, d / p }'
  unset per thread
done
echo "top functions: $OUT/top-*.txt" >&2
