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
# The seed's programs and the other self-contained examples, each run to
# completion; the network examples take ports and are run as a pair below.
for program in "$dir"/examples/*; do
  [[ -x $program && -f $program ]] || continue
  name=$(basename "$program")
  case $name in
    echo_server|echo_client|http_hello) continue ;;
  esac
  echo "==> example: $name"
  "$program"
done
# echo_server and echo_client on 127.0.0.1 (http_hello is for wrk: see docs/io.md).
port=$((20000 + RANDOM % 20000))
echo "==> example: echo_server $port + echo_client $port 10 100"
"$dir/examples/echo_server" "$port" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
"$dir/examples/echo_client" "$port" 10 100
kill "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
trap - EXIT
if [[ -z ${GREENLET_SKIP_BENCH:-} ]]; then
  echo "==> benchmarks"
  bash bench/run_all.sh
fi
echo "==> done"
