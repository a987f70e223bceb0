#!/usr/bin/env bash
# test.sh: installs what is missing, checks the formatting (.clang-format),
# builds and runs the whole test suite: a normal build (plus examples/consumer
# built against the installed static library, through add_subdirectory with
# the library shared and against that shared library installed, and
# configured through FetchContent), the same suite under
# AddressSanitizer with the library's code also under UndefinedBehaviorSanitizer,
# and the thread-pool and executor-bridge tests under ThreadSanitizer.
# Usage: scripts/test.sh            (everything)
#        GREENLET_TEST_PASSES="plain" scripts/test.sh   (choose passes: plain asan ubsan tsan clang)
# The clang pass (not in the default set, to keep CI's time) builds the library,
# examples and whole suite with clang++ (Debian's clang, 14) instead of g++ and
# runs the suite. The ubsan pass (not in the default set either) instruments the
# test code too, not only the library's.
set -euo pipefail
cd "$(dirname "$0")/.."
# clang: the plain pass compiles the library's sources and the public headers
# with clang++ too (below), as users' clang builds do.
scripts/deps.sh clang-format clang
jobs=$(nproc)
passes=${GREENLET_TEST_PASSES:-"plain asan tsan"}
failed=()
# step says what runs next, with the time, so a slow CI run shows where it went.
step() { echo "==> [$(date +%T)] $*"; }
# The code follows .clang-format: any file clang-format would change fails
# the run (fix with clang-format -i <file>).
step "clang-format check"
if [[ -d .git ]]; then
  mapfile -t sources < <(git ls-files '*.cpp' '*.hpp')
else
  mapfile -t sources < <(find src include tests examples bench tools -name '*.cpp' -o -name '*.hpp')
fi
if ! clang-format --dry-run --Werror "${sources[@]}"; then
  failed+=("clang-format")
fi
for pass in $passes; do
  compilers=()
  case $pass in
    plain) sanitize="" ;;
    clang) sanitize="" compilers=(-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang) ;;
    asan)  sanitize="address,undefined" ;;
    ubsan) sanitize="undefined" ;;
    tsan)  sanitize="thread" ;;
    *) echo "unknown pass '$pass' (plain asan ubsan tsan clang)" >&2; exit 2 ;;
  esac
  dir=build/test-$pass
  # The examples run in the plain pass (each against the seed's output); the
  # asan pass leaves them out, for CI's time (~1 min of its build).
  examples=ON
  [[ $pass == asan ]] && examples=OFF
  # Under a sanitizer the library is compiled at -O1 with line tables only
  # (-g1; reports keep file:line), as the sanitizers' documentation advises:
  # at RelWithDebInfo's -O2 -g the instrumented library took 198 CPU seconds
  # to build, at -O1 -g1 87.
  build_flags=()
  [[ -n $sanitize ]] && build_flags=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG")
  step "[$pass] configure $dir"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGREENLET_SANITIZE="$sanitize" \
        -DGREENLET_WERROR=ON -DGREENLET_BUILD_BENCHMARKS=OFF -DGREENLET_FAST_TEST_BUILD=ON -DGREENLET_TEST_SUITE_RUNS=ON -DCMAKE_UNITY_BUILD=ON \
        -DGREENLET_BUILD_EXAMPLES=$examples \
        "${compilers[@]}" "${build_flags[@]}" >/dev/null
  if [[ $pass == tsan ]]; then
    # ThreadSanitizer is for the threaded layers: the thread and process
    # pools and the bridge into the loop (the suppression file says why
    # its one entry is there).
    step "[$pass] build concurrent_tests"
    cmake --build "$dir" -j "$jobs" --target concurrent_tests
    step "[$pass] test"
    if ! TSAN_OPTIONS="suppressions=$PWD/tests/concurrent/tsan_suppressions.txt halt_on_error=1" \
         GREENLET_STRESS_MESSAGES=100000 "$dir/tests/concurrent_tests"; then
      failed+=("$pass")
    fi
    continue
  fi
  step "[$pass] build"
  cmake --build "$dir" -j "$jobs"
  if [[ $pass == plain ]]; then
    # Every build compiles the library as unity batches (a third of the
    # time file by file takes), which would hide a source missing an include
    # another file of its batch provides: each must also compile on its own.
    # With clang++ (Debian's 14), warnings as errors: a user's clang build
    # of the library (add_subdirectory, FetchContent) or of the public
    # headers (tests/public_headers.cpp instantiates the common templates)
    # must compile too, and the full clang pass is not in the default set.
    # (The clang pass found, 2026-11-29: sized ::operator delete calls, which
    # clang before 19 declares only with -fsized-deallocation; parenthesized
    # aggregate initialization, clang 16's; libstdc++ 12's views::iota.)
    step "[$pass] each library source and the public headers compile alone, with clang++"
    clang_check=(clang++ -std=c++20 -fsyntax-only -Wall -Wextra -Wpedantic -Werror -I include -I "$dir/include" -I src)
    if ! { find src -name '*.cpp' | sort; echo tests/public_headers.cpp; } | xargs -P "$jobs" -n 1 "${clang_check[@]}"; then
      failed+=("library-sources-alone-clang")
    fi
  fi
  step "[$pass] test"
  # The plain pass holds a million suspended tasks at once (~5 GB, a few
  # seconds); the sanitizer passes keep million_tasks_test's 100,000. They
  # also hand fewer messages between the stress test's loops (200,000 of
  # its million: 10 s under ASan for all of them).
  scale_tasks=100000 stress_messages=200000
  [[ $pass == plain ]] && scale_tasks=1000000 stress_messages=1000000
  # Unsanitized passes run each test case in a process of its own, and each
  # variant of a binary (the compact-tasks and stack-copying modes) whole;
  # the sanitizer passes run each test binary and variant whole, in shards
  # (the "suite" and "variant_suite" labels, tests/CMakeLists.txt), as a
  # sanitized process takes ~0.1 s to start (164 s for the asan pass's
  # 2,500 cases, 53 s for its suites). The compile-fail and example checks
  # are the plain pass's.
  selection=(-LE '^(suite|variant_case)$')
  [[ -n $sanitize ]] && selection=(-L suite)
  if ! GREENLET_SCALE_TASKS=$scale_tasks GREENLET_STRESS_MESSAGES=$stress_messages ASAN_OPTIONS=detect_leaks=1 \
       ctest --test-dir "$dir" --output-on-failure -j "$jobs" "${selection[@]}"; then
    failed+=("$pass")
  fi
  if [[ $pass == plain ]]; then
    # The install path: examples/consumer built against the installed
    # package, and once through add_subdirectory.
    step "[$pass] install + find_package consumer"
    prefix=$(mktemp -d)
    cmake --install "$dir" --prefix "$prefix" >/dev/null
    cmake -S examples/consumer -B "$dir/consumer-installed" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
    cmake --build "$dir/consumer-installed" -j "$jobs" >/dev/null
    "$dir/consumer-installed/consumer" || failed+=("consumer-installed")
    # add_subdirectory, with the library built shared (BUILD_SHARED_LIBS=ON,
    # unoptimized: the checks below do not depend on it): that one library
    # build serves this consumer and the shared library's checks below.
    step "[$pass] add_subdirectory consumer (shared library)"
    cmake -S examples/consumer -B "$dir/consumer-subdir" -DGREENLET_SOURCE_DIR="$PWD" -DCMAKE_UNITY_BUILD=ON \
          -DBUILD_SHARED_LIBS=ON -DGREENLET_WERROR=ON >/dev/null
    cmake --build "$dir/consumer-subdir" -j "$jobs" >/dev/null
    "$dir/consumer-subdir/consumer" || failed+=("consumer-subdir")
    # FetchContent: configured, not built. With a source directory given,
    # FetchContent_MakeAvailable() is the add_subdirectory() just built and
    # run; what is its own happens at configure time.
    step "[$pass] FetchContent consumer (configure)"
    cmake -S examples/consumer_fetchcontent -B "$dir/consumer-fetchcontent" \
          -DFETCHCONTENT_SOURCE_DIR_GREENLET="$PWD" -DCMAKE_UNITY_BUILD=ON >/dev/null
    # Not the top-level project there: its tests must not be configured.
    grep -q '^GREENLET_BUILD_TESTS:BOOL=OFF$' "$dir/consumer-fetchcontent/CMakeCache.txt" ||
      failed+=("fetchcontent-tests-on")
    rm -rf "$prefix"
    # The shared library the add_subdirectory consumer built, installed: its
    # SONAME, its export table (public API, not src/-internal code), and the
    # consumer linked against it from a separate install prefix.
    step "[$pass] shared library install + find_package consumer"
    shared_prefix=$(mktemp -d)
    cmake --install "$dir/consumer-subdir" --prefix "$shared_prefix" >/dev/null
    so=$(find "$shared_prefix" -name 'libgreenlet.so.*.*.*' -type f | head -n1)
    soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
    exports=$(nm -DC --defined-only "$so")
    if [[ ! $soname =~ ^libgreenlet\.so\.[0-9]+\.[0-9]+$ ]] ||
       ! grep -q 'greenlet::greenlet::getcurrent' <<<"$exports" ||
       ! grep -q 'greenlet::asyncio::event_loop::run_forever' <<<"$exports" ||
       grep -q 'stack_pool\|epoll_poller\|make_thread_state' <<<"$exports"; then
      echo "shared library: bad SONAME '$soname' or export table of $so" >&2
      failed+=("shared-library")
    fi
    cmake -S examples/consumer -B "$dir/consumer-shared" -DCMAKE_PREFIX_PATH="$shared_prefix" >/dev/null
    cmake --build "$dir/consumer-shared" -j "$jobs" >/dev/null
    if ! readelf -d "$dir/consumer-shared/consumer" | grep -q 'NEEDED.*libgreenlet\.so'; then
      echo "consumer-shared is not linked against libgreenlet.so" >&2
      failed+=("consumer-shared-link")
    fi
    "$dir/consumer-shared/consumer" || failed+=("consumer-shared")
    rm -rf "$shared_prefix"
  fi
done
if ((${#failed[@]})); then
  step "FAILED passes: ${failed[*]}" >&2
  exit 1
fi
step "all test passes succeeded: $passes"
