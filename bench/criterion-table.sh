#!/usr/bin/env bash
# Prints the figures of the last `cargo bench -p portcullis` as a Markdown table (the
# one in BENCHMARKS.md): median and mean with criterion's 95% confidence interval.
#
#   cargo bench -p portcullis && bash bench/criterion-table.sh
set -euo pipefail

cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
dir=$TARGET/criterion
[ -d "$dir" ] || { echo "no criterion results under $dir; run cargo bench -p portcullis" >&2; exit 1; }

echo "| benchmark | median | mean (95% CI) |"
echo "|---|---:|---:|"
# Criterion's own folder order: the groups as the benchmark defines them.
for group in headers csrf session jwt ratelimit upload password; do
  for estimates in "$dir/$group"/*/new/estimates.json; do
    [ -f "$estimates" ] || continue
    name=$(basename "$(dirname "$(dirname "$estimates")")")
    jq -r --arg name "$group/$name" '
      def unit: if . >= 1e6 then "\(. / 1e6 * 100 | round / 100) ms"
                elif . >= 1e3 then "\(. / 1e3 * 100 | round / 100) µs"
                else "\(. * 10 | round / 10) ns" end;
      "| `\($name)` | \(.median.point_estimate | unit) | \(.mean.point_estimate | unit) (\(.mean.confidence_interval.lower_bound | unit) – \(.mean.confidence_interval.upper_bound | unit)) |"' \
      "$estimates"
  done
done
