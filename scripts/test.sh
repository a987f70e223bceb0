#!/usr/bin/env bash
# test.sh: installs what is missing, builds and runs the whole test suite:
# a normal build (plus the install/find_package consumer), the same suite
# under AddressSanitizer, and the thread-pool and executor-bridge tests under
# ThreadSanitizer.
# Usage: scripts/test.sh            (everything)
#        GREENLET_TEST_PASSES="plain" scripts/test.sh   (choose passes: plain asan ubsan tsan)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)
passes=${GREENLET_TEST_PASSES:-"plain asan tsan"}
failed=()
for pass in $passes; do
  case $pass in
    plain) sanitize="" ;;
    asan)  sanitize="address" ;;
    ubsan) sanitize="undefined" ;;
    tsan)  sanitize="thread" ;;
    *) echo "unknown pass '$pass' (plain asan ubsan tsan)" >&2; exit 2 ;;
  esac
  dir=build/test-$pass
  echo "==> [$pass] configure $dir"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGREENLET_SANITIZE="$sanitize" \
        -DGREENLET_WERROR=ON -DGREENLET_BUILD_BENCHMARKS=OFF >/dev/null
  if [[ $pass == tsan ]]; then
    # ThreadSanitizer is for the threaded layers: the thread and process
    # pools and the bridge into the loop (the suppression file says why
    # its one entry is there).
    echo "==> [$pass] build concurrent_tests"
    cmake --build "$dir" -j "$jobs" --target concurrent_tests
    echo "==> [$pass] test"
    if ! TSAN_OPTIONS="suppressions=$PWD/tests/concurrent/tsan_suppressions.txt halt_on_error=1" \
         GREENLET_STRESS_MESSAGES=100000 "$dir/tests/concurrent_tests"; then
      failed+=("$pass")
    fi
    continue
  fi
  echo "==> [$pass] build"
  cmake --build "$dir" -j "$jobs"
  echo "==> [$pass] test"
  if ! ASAN_OPTIONS=detect_leaks=1 ctest --test-dir "$dir" --output-on-failure -j "$jobs"; then
    failed+=("$pass")
  fi
  if [[ $pass == plain ]]; then
    # The install path: examples/consumer built against the installed
    # package, and once through add_subdirectory.
    echo "==> [$pass] install + find_package consumer"
    prefix=$(mktemp -d)
    cmake --install "$dir" --prefix "$prefix" >/dev/null
    cmake -S examples/consumer -B "$dir/consumer-installed" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
    cmake --build "$dir/consumer-installed" -j "$jobs" >/dev/null
    "$dir/consumer-installed/consumer" || failed+=("consumer-installed")
    echo "==> [$pass] add_subdirectory consumer"
    cmake -S examples/consumer -B "$dir/consumer-subdir" -DGREENLET_SOURCE_DIR="$PWD" >/dev/null
    cmake --build "$dir/consumer-subdir" -j "$jobs" >/dev/null
    "$dir/consumer-subdir/consumer" || failed+=("consumer-subdir")
    rm -rf "$prefix"
  fi
done
if ((${#failed[@]})); then
  echo "==> FAILED passes: ${failed[*]}" >&2
  exit 1
fi
echo "==> all test passes succeeded: $passes"
