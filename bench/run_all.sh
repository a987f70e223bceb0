#!/usr/bin/env bash
# run_all.sh: builds the benchmarks in Release, runs every bench/*_bench binary
# and the Python peer scripts whose modules are installed, and writes
# bench/results/<date>.md (and .png with matplotlib) through tools/report.py.
#
# Usage: bash bench/run_all.sh
# Environment:
#   BENCH_BUILD_DIR    build directory (default build/bench-release; not
#                      build/bench, which is the bench subdirectory of the
#                      default build/ tree)
#   BENCH_REPETITIONS  Google Benchmark repetitions (default 5)
#   BENCH_FILTER       --benchmark_filter regex (default: all)
#   BENCH_JOBS         build parallelism (default 2)
#   BENCH_NO_PEERS=1   skip the Python peer scripts
#   BENCH_INSTALL=0    never apt-get install the optional Python packages
#   PYTHON             interpreter for peers and report (default /usr/bin/python3,
#                      where Debian's python3-greenlet etc. install)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${BENCH_BUILD_DIR:-build/bench-release}
reps=${BENCH_REPETITIONS:-5}
filter=${BENCH_FILTER:-.}
jobs=${BENCH_JOBS:-2}
python=${PYTHON:-/usr/bin/python3}
[[ -x $python ]] || python=$(command -v python3) || { echo "error: no python3" >&2; exit 1; }
date=$(date +%F)
raw=$build/results
mkdir -p "$raw"

fail() { echo "error: $*" >&2; exit 1; }

# Optional Python peers: installed only when missing, and only as root.
optional=(python3-matplotlib python3-greenlet python3-uvloop python3-gevent)
if [[ ${BENCH_INSTALL:-1} != 0 ]]; then
  missing=()
  for p in "${optional[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
      echo "==> installing optional peers: ${missing[*]}"
      { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }; } ||
        echo "warning: could not install ${missing[*]}; those peers are skipped" >&2
    else
      echo "note: optional packages missing (${missing[*]}); those peers are skipped" >&2
    fi
  fi
fi

echo "==> configure $build (Release)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DGREENLET_BUILD_BENCHMARKS=ON \
      -DGREENLET_BUILD_TESTS=OFF -DGREENLET_BUILD_EXAMPLES=OFF >"$raw/configure.log" ||
  { cat "$raw/configure.log" >&2; fail "configure failed"; }
echo "==> build (-j$jobs)"
cmake --build "$build" -j "$jobs" || fail "build failed"

results=()
shopt -s nullglob
binaries=("$build"/bench/*_bench)
((${#binaries[@]})) || fail "no benchmark binaries in $build/bench"
for bin in "${binaries[@]}"; do
  name=$(basename "$bin")
  out=$raw/$name.json
  echo "==> $name ($reps repetitions)"
  "$bin" --benchmark_filter="$filter" --benchmark_repetitions="$reps" \
         --benchmark_report_aggregates_only=true --benchmark_out="$out" --benchmark_out_format=json ||
    fail "$name failed"
  results+=("$out")
done

if [[ ${BENCH_NO_PEERS:-0} != 1 ]]; then
  for script in bench/peers/*.py; do
    name=$(basename "$script" .py)
    case $name in
      greenlet_switch) module=greenlet ;;
      asyncio_sleep0) module=asyncio ;;
      asyncio_sync) module=asyncio ;;
      asyncio_executor) module=asyncio ;;
      asyncio_echo) module=asyncio ;;
      peer_rows) continue ;;  # the shared row helper, not a peer
      *) module= ;;
    esac
    if [[ -n $module ]] && ! "$python" -c "import $module" 2>/dev/null; then
      echo "==> peer $name skipped: $python has no module $module"
      continue
    fi
    echo "==> peer $name"
    out=$raw/peer_$name.json
    "$python" "$script" --repetitions "$reps" >"$out" || fail "peer $name failed"
    results+=("$out")
  done
fi

echo "==> report"
"$python" bench/tools/report.py --build-dir "$build" --date "$date" \
  --command "bash bench/run_all.sh (BENCH_REPETITIONS=$reps)" "${results[@]}" ||
  fail "report failed"
echo "==> raw JSON in $root/$raw"
