#!/usr/bin/env bash
# run.sh: the main job. Installs what is missing, builds (Release), runs every
# example program, then the side-by-side benchmark comparison (bench/run_all.sh),
# which writes bench/results/<date>.md and a chart.
# Usage: scripts/run.sh                 (everything)
#        GREENLET_SKIP_BENCH=1 scripts/run.sh   (examples only)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
dir=build/release
echo "==> configure $dir"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DGREENLET_BUILD_TESTS=OFF >/dev/null
echo "==> build"
cmake --build "$dir" -j "$(nproc)"
for program in "$dir"/examples/*; do
  [[ -x $program && -f $program ]] || continue
  echo "==> example: $(basename "$program")"
  "$program"
done
if [[ -z ${GREENLET_SKIP_BENCH:-} ]]; then
  echo "==> benchmarks"
  bash bench/run_all.sh
fi
echo "==> done"
