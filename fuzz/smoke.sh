#!/usr/bin/env bash
# Builds every fuzz target and runs each for N seconds (default 10), one after the
# other, single job: fails (non-zero) if any target crashes, leaks, hangs or times
# out. Not part of CI: it needs the nightly toolchain and cargo-fuzz.
#
#   fuzz/smoke.sh [SECONDS]
#
# Each target's last libFuzzer status line (executions, `cov:`) is printed, and its
# whole log kept in fuzz/target/smoke/TARGET.log. A crash input lands in
# fuzz/artifacts/TARGET/.
set -uo pipefail

seconds="${1:-10}"
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
toolchain="${FUZZ_TOOLCHAIN:-+nightly}"

cargo "$toolchain" fuzz build || exit 1

logs="$CARGO_TARGET_DIR/smoke"
mkdir -p "$logs"
failed=()
for target in $(cargo "$toolchain" fuzz list); do
    mkdir -p "corpus/$target"
    # A scratch copy of the corpus, so that a smoke run never grows the committed one.
    scratch="$(mktemp -d)"
    cp -r "corpus/$target/." "$scratch/"
    cargo "$toolchain" fuzz run "$target" "$scratch" -- \
        -max_total_time="$seconds" -jobs=1 -workers=1 -timeout=10 -rss_limit_mb=2048 \
        >"$logs/$target.log" 2>&1
    status=$?
    rm -rf "$scratch"
    last="$(grep -E '^#[0-9]+' "$logs/$target.log" | tail -n 1)"
    printf '%-24s exit %-3s %s\n' "$target" "$status" "$last"
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$logs/$target.log" | head -n 8
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "crashed: ${failed[*]}"
    exit 1
fi
echo "all targets ran ${seconds}s without a crash"
