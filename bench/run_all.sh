#!/usr/bin/env bash
# run_all.sh: builds the benchmarks in Release, runs every bench/*_bench binary
# (our rows and the C++ peers: raw Boost.Context, Boost.Fiber, ucontext,
# threads, Boost.Asio), the Python peer scripts whose modules are installed
# (greenlet, asyncio, uvloop, gevent), the Go peer (bench/peers/go_channels.go,
# built with golang-go), and the HTTP hello servers (ours, Asio, uvloop) under
# wrk (bench/tools/http_wrk.py), and writes bench/results/<date>.md (and .png
# with matplotlib) through tools/report.py.
#
# Usage: bash bench/run_all.sh
# Environment:
#   BENCH_BUILD_DIR    build directory (default build/bench-release; not
#                      build/bench, which is the bench subdirectory of the
#                      default build/ tree)
#   BENCH_REPETITIONS  Google Benchmark repetitions (default 5)
#   BENCH_FILTER       --benchmark_filter regex (default: all)
#   BENCH_JOBS         build parallelism (default 2)
#   BENCH_OUT_DIR      where the report goes (default bench/results)
#   BENCH_NO_PEERS=1   skip the Python and Go peers
#   BENCH_NO_HTTP=1    skip the HTTP servers under wrk
#   BENCH_WRK_DURATION seconds per wrk run (default 5; wrk -t1 -c100)
#   BENCH_INSTALL=0    never apt-get install the optional packages (Python
#                      modules, golang-go, wrk)
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
build_abs=$(cd "$build" && pwd)  # BENCH_BUILD_DIR may be relative or absolute

fail() { echo "error: $*" >&2; exit 1; }

# Optional peers and tools: installed only when missing, and only as root.
optional=(python3-matplotlib python3-greenlet python3-uvloop python3-gevent golang-go wrk)
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
  # A binary none of whose benchmarks matches BENCH_FILTER writes an empty file.
  if [[ -s $out ]]; then results+=("$out"); fi
done

if [[ ${BENCH_NO_PEERS:-0} != 1 ]]; then
  for script in bench/peers/*.py; do
    name=$(basename "$script" .py)
    case $name in
      greenlet_switch) module=greenlet ;;
      asyncio_sleep0) module=asyncio ;;
      asyncio_sync) module=asyncio ;;
      asyncio_executor) module=asyncio ;;
      asyncio_getaddrinfo) module=asyncio ;;
      asyncio_echo) module=asyncio ;;
      gevent_switch) module=gevent ;;
      generator_step) module= ;;  # its greenlet row only with python3-greenlet
      peer_rows) continue ;;  # the shared row helper, not a peer
      http_hello_*) continue ;;  # servers that tools/http_wrk.py starts
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
  # Go: built into the bench build directory (its own GOCACHE, no module).
  if command -v go >/dev/null; then
    echo "==> peer go_channels"
    GOCACHE=$build_abs/go-cache GOPATH=$build_abs/go-path \
      go build -o "$build/bench/go_channels" bench/peers/go_channels.go || fail "go build failed"
    out=$raw/peer_go_channels.json
    "$build/bench/go_channels" --repetitions "$reps" >"$out" || fail "peer go_channels failed"
    results+=("$out")
  else
    echo "==> peer go_channels skipped: no go (apt-get install golang-go)"
  fi
fi

if [[ ${BENCH_NO_HTTP:-0} != 1 ]]; then
  if command -v wrk >/dev/null; then
    echo "==> HTTP hello servers under wrk ($reps x ${BENCH_WRK_DURATION:-5} s each)"
    out=$raw/http_wrk.json
    "$python" bench/tools/http_wrk.py --build-dir "$build" --repetitions "$reps" \
      --duration "${BENCH_WRK_DURATION:-5}" --python "$python" >"$out" || fail "http_wrk.py failed"
    if "$python" -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1])) else 1)' "$out"; then
      results+=("$out")
    else
      echo "==> HTTP: no server could be measured (see the notes above)"
    fi
  else
    echo "==> HTTP hello under wrk skipped: no wrk (apt-get install wrk)"
  fi
fi

echo "==> report"
"$python" bench/tools/report.py --build-dir "$build" --date "$date" --out-dir "${BENCH_OUT_DIR:-bench/results}" \
  --command "bash bench/run_all.sh (BENCH_REPETITIONS=$reps)" "${results[@]}" ||
  fail "report failed"
echo "==> raw JSON in $build_abs/results"
