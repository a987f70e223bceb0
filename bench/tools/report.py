#!/usr/bin/env python3
"""report.py: turns benchmark results into bench/results/<date>.md (and a PNG).

Usage:
  report.py [--out-dir DIR] [--build-dir DIR] [--date YYYY-MM-DD] [--command CMD]
            RESULT.json [RESULT.json ...]

Each RESULT.json is either
  * Google Benchmark output (--benchmark_format=json, best with
    --benchmark_repetitions=N; with --benchmark_report_aggregates_only=true
    the median and cv aggregates are used, otherwise the repetitions), or
  * a peer script's output: a JSON list of {"name", "ns_per_op", "spread"}
    with spread in percent (optional "unit": switch, create, callback...).

For Google Benchmark entries, ns per op is 1e9 / items_per_second when the
benchmark sets items processed (switch benchmarks count two switches per
round trip), else its real time. The spread is the coefficient of variation
across repetitions in percent (or (max-min)/median when the repetitions
themselves are in the file).

Writes DIR/<date>.md with the table, ratios of ours to each peer, target
checks and machine information, and DIR/<date>.png (log-scale bars) when
matplotlib can be imported. Prints the Markdown to stdout.
"""

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys

TIME_UNITS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}

# (ours, peer, label, limit or None): each ratio is ours / peer in ns per op.
# The switch limits are the "at most 1.3x the floor measured in the same run" (raw Boost.Context,
# fast mode); the task-step limits its "a task switch at most 3x a bare greenlet switch".
RATIOS = [
    ("greenlet_switch", "boost_fiber_switch", "switch: ours / raw fiber (fast mode)", 1.3),
    ("greenlet_switch_fp", "boost_fiber_switch", "switch fp: ours / raw fiber fast mode", 1.3),
    ("greenlet_switch_fp_one_side", "boost_fiber_switch", "switch fp one side: ours / raw fiber fast mode", 1.3),
    ("greenlet_switch_fp", "boost_fiber_switch_fp", "switch fp: ours / raw fiber fp", None),
    ("greenlet_switch_fp_one_side", "boost_fiber_switch_fp_one_side", "switch fp one side: ours / raw fiber fp one side", None),
    ("greenlet_switch_rounding_differs", "boost_fiber_switch_rounding_differs", "switch, rounding differs: ours / raw fiber", None),
    ("greenlet_switch", "ucontext_switch", "switch: ours / swapcontext", None),
    ("greenlet_switch", "boost_fibers_yield", "switch: ours / Boost.Fiber yield", None),
    ("greenlet_switch", "thread_condvar_pingpong", "switch: ours / thread condvar ping-pong", None),
    ("greenlet_switch", "py_greenlet_switch", "switch: ours / Python greenlet", None),
    ("greenlet_create_destroy", "boost_fiber_create_fixedsize", "create: ours / raw fiber, malloc'd stack", 2.0),
    ("greenlet_create_destroy", "boost_fiber_create_pooled", "create: ours / raw fiber, pooled stack", None),
    ("greenlet_create_destroy", "boost_fiber_create_protected", "create: ours / raw fiber, guarded mmap stack", None),
    ("greenlet_create_destroy_unguarded", "boost_fiber_create_pooled", "create unguarded: ours / raw fiber, pooled stack", None),
    ("greenlet_create_destroy", "py_greenlet_create", "create: ours / Python greenlet", None),
    ("loop_sleep0_step/100000/10", "py_uvloop_sleep0_step", "loop step, 100k tasks x 10 sleep(0): ours / uvloop", None),
    ("loop_sleep0_step/100000/10", "py_asyncio_sleep0_step", "loop step, 100k tasks x 10 sleep(0): ours / asyncio", None),
    ("loop_call_soon", "py_uvloop_call_soon", "call_soon: ours / uvloop", None),
    ("StreamsEcho", "py_uvloop_streams_echo", "TCP echo round trip, streams: ours / uvloop", None),
    ("StreamsEcho", "py_asyncio_streams_echo", "TCP echo round trip, streams: ours / asyncio", None),
    ("StreamsEcho", "asio_callback_echo", "TCP echo round trip, streams: ours / Asio completion handlers", 1.3),
    ("StreamsEcho", "asio_coroutine_echo", "TCP echo round trip, streams: ours / Asio C++20 coroutines", 1.3),
    ("SockEcho", "asio_callback_echo", "TCP echo round trip, sock_*: ours / Asio completion handlers", None),
    ("TlsStreamsEcho", "asio_ssl_echo", "TLS echo round trip, streams: ours / Asio ssl::stream", 1.3),
    ("ProtocolEcho", "asio_callback_echo", "TCP echo round trip, protocols: ours / Asio completion handlers", 1.3),
    ("ProtocolEcho", "py_uvloop_protocol_echo", "TCP echo round trip, protocols: ours / uvloop protocols", None),
    ("ProtocolEcho", "py_asyncio_protocol_echo", "TCP echo round trip, protocols: ours / asyncio protocols", None),
    ("TlsProtocolEcho", "asio_ssl_echo", "TLS echo round trip, protocols: ours / Asio ssl::stream", 1.3),
    ("http_hello", "asio_http_hello", "HTTP hello under wrk, per request: ours / Asio", 1.3),
    ("http_hello", "py_uvloop_http_hello", "HTTP hello under wrk, per request: ours / uvloop streams", None),
    ("http_hello", "py_uvloop_http_hello_protocol", "HTTP hello under wrk, per request: ours / uvloop protocol", None),
    ("http_hello_protocol", "asio_http_hello", "HTTP hello under wrk, per request, protocols: ours / Asio", 1.3),
    ("http_hello_protocol", "py_uvloop_http_hello_protocol",
     "HTTP hello under wrk, per request, protocols: ours / uvloop protocol", None),
    ("greenlet_switch", "go_channel_switch", "switch: ours / Go unbuffered channel ping-pong", None),
    ("greenlet_switch", "py_gevent_channel_switch", "switch: ours / gevent Channel ping-pong", None),
    ("greenlet_switch", "py_gevent_sleep0_switch", "switch: ours / gevent sleep(0) between two greenlets", None),
    ("greenlet_create_destroy", "go_goroutine_create", "create: ours / Go goroutine (go + channel receive)", None),
    ("task_create_finish", "go_goroutine_create", "create a task: ours / Go goroutine (go + channel receive)", None),
    ("task_create_finish", "py_gevent_create", "create a task: ours / gevent spawn + join", None),
    ("gather_tasks/1000", "go_gather", "gather 1,000 tasks, per task: ours / Go goroutines + WaitGroup", None),
    ("gather_tasks/1000", "py_asyncio_gather", "gather 1,000 tasks, per task: ours / asyncio", None),
    ("gather_tasks/1000", "py_uvloop_gather", "gather 1,000 tasks, per task: ours / uvloop", None),
    ("gather_tasks_eager/1000", "gather_tasks/1000", "gather 1,000 tasks, per task: eager task factory / default", None),
    ("gather_tasks_factory/1000/1", "py_asyncio_gather_wrapped",
     "gather 1,000 tasks through a factory wrapping each: ours / asyncio", None),
    ("gather_tasks_factory/1000/1", "gather_tasks_factory/1000/0",
     "gather 1,000 tasks, per task: a factory wrapping each / a factory that does not", None),
    ("await_function/1", "await_function/0", "await(fn) of a function that returns at once: eager / default", None),
    ("loop_sleep0_step/100000/10", "go_sleep0_step", "loop step, 100k tasks x 10 yields: ours / Go Gosched", None),
    # Go's row runs after a warm-up round (goroutines and stacks reused): like our waves row.
    ("loop_sleep0_waves/100000/10", "go_sleep0_step", "loop step, 100k x 10, warm waves in one loop: ours / Go Gosched", None),
    ("loop_sleep0_waves/100000/10", "boost_fibers_sleep0_step/100000/10", "loop step, 100k x 10, warm waves: ours / Boost.Fiber", None),
    ("loop_sleep0_step/100000/10", "py_gevent_sleep0_step", "loop step, 100k tasks x 10 sleep(0): ours / gevent", None),
    ("loop_call_soon", "py_asyncio_call_soon", "call_soon: ours / asyncio", None),
    ("loop_sleep0_step/1000/1000", "greenlet_switch", "loop step, 1,000 tasks / bare greenlet switch", 3.0),
    ("loop_sleep0_step/10/100000", "greenlet_switch", "loop step, 10 tasks / bare greenlet switch", 3.0),
    ("queue_handoff", "py_asyncio_queue_handoff", "Queue(1) hand-off per item: ours / asyncio", None),
    ("lock_uncontended", "py_asyncio_lock_uncontended", "Lock acquire+release, uncontended: ours / asyncio", None),
    ("executor_roundtrip", "py_asyncio_executor_roundtrip", "run_in_executor round trip: ours / asyncio", None),
    ("executor_throughput/1000", "py_asyncio_executor_throughput", "run_in_executor, 1,000 in flight: ours / asyncio", None),
    ("executor_roundtrip", "baseline_roundtrip", "run_in_executor round trip: ours / mutex+condvar pool", None),
    ("getaddrinfo_system", "py_asyncio_getaddrinfo_system", "name lookup on the default executor: ours / asyncio", None),
    ("getaddrinfo_loop_resolver", "py_asyncio_getaddrinfo_override",
     "name lookup answered by the loop's resolver: ours / asyncio getaddrinfo() override", None),
    ("executor_throughput/10000", "baseline_throughput/10000", "run_in_executor, 10,000 in flight: ours / mutex+condvar pool", None),
    ("threadpool_submit_result/10000", "baseline_throughput/10000", "ThreadPoolExecutor submit+result, 10,000: ours / mutex+condvar pool", None),
    ("generator_next", "boost_fiber_generator", "generator step: ours / raw fiber", None),
    ("generator_next", "boost_coroutine2_generator", "generator step: ours / Boost.Coroutine2 pull_type", None),
    ("generator_next", "cxx20_coroutine_generator", "generator step: ours / C++20 stackless coroutine", None),
    ("generator_next", "ucontext_generator", "generator step: ours / swapcontext", None),
    ("generator_next", "boost_fibers_channel_generator", "generator step: ours / Boost.Fiber unbuffered channel", None),
    ("generator_next", "thread_condvar_generator", "generator step: ours / two threads, mutex+condvar", None),
    ("generator_next", "py_generator_next", "generator step: ours / Python generator next()", None),
    ("generator_next", "py_greenlet_generator_next", "generator step: ours / Python greenlet generator", None),
    ("generator_range_for/1000", "boost_coroutine2_range_for/1000", "generator range-for, 1,000 items: ours / Boost.Coroutine2", None),
    ("generator_range_for/1000", "cxx20_coroutine_range_for/1000", "generator range-for, 1,000 items: ours / C++20 coroutine", None),
    ("generator_range_for/1000", "py_generator_for_loop", "generator range-for, 1,000 items: ours / Python for loop", None),
    ("loop_sleep0_step/100000/10", "boost_fibers_sleep0_step/100000/10", "loop step, 100k tasks x 10 sleep(0): ours / Boost.Fiber yield", None),
    ("loop_sleep0_step/1000/1000", "boost_fibers_sleep0_step/1000/1000", "loop step, 1,000 tasks x 1,000: ours / Boost.Fiber yield", None),
    ("loop_sleep0_step/10/100000", "boost_fibers_sleep0_step/10/100000", "loop step, 10 tasks x 100,000: ours / Boost.Fiber yield", None),
    ("future_resolve_await", "boost_fibers_future_resolve_await", "future resolved + awaited: ours / Boost.Fiber promise+future", None),
    ("future_resolve_await", "thread_future_resolve_await", "future resolved + awaited: ours / std::promise+future, two threads", None),
]

# Absolute targets: (benchmark name prefix or exact name, limit in ns, label).
ABSOLUTE = [
    ("greenlet_switch", 8.0, "our switch <= 8 ns"),
    ("greenlet_switch_fp", 8.0, "our switch (fp both sides) <= 8 ns"),
    ("greenlet_switch_fp_one_side", 8.0, "our switch (fp one side) <= 8 ns"),
    ("greenlet_create_destroy", 100.0, "our create+run+destroy <= 100 ns"),
    ("loop_sleep0_step/1000/1000", 100.0, "loop task switch (sleep(0) step, hot) <= 100 ns"),
    ("loop_sleep0_step/100000/10", 100.0, "loop task switch, 100k tasks x 10 sleep(0) <= 100 ns"),
    ("loop_sleep0_waves/100000/10", 100.0, "loop task switch, 100k x 10, warm waves in one loop <= 100 ns"),
    ("loop_call_soon", 50.0, "call_soon >= 20 M/s (<= 50 ns)"),
]


def clean_name(name):
    name = re.sub(r"_(median|mean|stddev|cv)$", "", name)
    name = re.sub(r"/(real_time|process_time|manual_time)$", "", name)
    return name[3:] if name.startswith("BM_") else name


def ns_of(entry):
    ips = entry.get("items_per_second")
    if ips:
        return 1e9 / ips
    return entry["real_time"] * TIME_UNITS.get(entry.get("time_unit", "ns"), 1.0)


# Peers' names start with one of these; every other row is ours.
PEER_PREFIXES = ("py_", "go_", "asio_", "boost_", "ucontext", "thread_", "baseline", "Blocking", "cxx20_")

# Google Benchmark counters holding resident bytes per suspended task (loop_bench,
# stack_copy_bench, scale_bench): such a row goes to the memory table.
MEMORY_COUNTERS = ("bytes_per_task", "bytes_per_greenlet", "bytes_per")

# Memory ratios: (prefix of our row, peer row, label, limit or None); bytes per suspended task.
MEMORY_RATIOS = [
    ("loop_suspended_task_memory", "go_suspended_memory", "resident bytes per suspended task: ours / Go goroutine", None),
    ("loop_suspended_task_memory", "py_gevent_suspended_memory",
     "resident bytes per suspended task: ours / gevent greenlet", None),
    ("suspended_memory_shared", "go_suspended_memory",
     "resident bytes per suspended greenlet, stack copying: ours / Go goroutine", 1.0),
    ("suspended_memory_shared", "py_gevent_suspended_memory",
     "resident bytes per suspended greenlet, stack copying: ours / gevent greenlet", None),
]


def is_ours(name):
    return not name.startswith(PEER_PREFIXES)


def load_google_benchmark(doc):
    """Returns ({name: row}, context) from one Google Benchmark JSON document."""
    aggregates = {}
    repetitions = {}
    units = {}
    last_run = {}  # a benchmark's last repetition, for its counters when it has no aggregates
    for entry in doc.get("benchmarks", []):
        if entry.get("error_occurred"):
            raise SystemExit(f"report.py: benchmark {entry['name']} failed: {entry.get('error_message')}")
        name = clean_name(entry.get("run_name", entry["name"]))
        units[name] = "op" if "items_per_second" not in entry else "item"
        if entry.get("run_type") == "aggregate":
            aggregates.setdefault(name, {})[entry["aggregate_name"]] = entry
        else:
            repetitions.setdefault(name, []).append(ns_of(entry))
            last_run[name] = entry
    rows = {}
    for name in list(dict.fromkeys(list(aggregates) + list(repetitions))):
        reps = repetitions.get(name, [])
        agg = aggregates.get(name, {})
        if len(reps) >= 2:
            median = statistics.median(reps)
            spread = 100.0 * (max(reps) - min(reps)) / median
            n = len(reps)
        elif "median" in agg:
            median = ns_of(agg["median"])
            spread = float("nan")
            if "cv" in agg:
                key = "items_per_second" if "items_per_second" in agg["cv"] else "real_time"
                spread = 100.0 * agg["cv"][key]
            elif "stddev" in agg and "mean" in agg:
                key = "items_per_second" if "items_per_second" in agg["mean"] else "real_time"
                spread = 100.0 * agg["stddev"][key] / agg["mean"][key]
            n = agg["median"].get("repetitions", 0)
        elif reps:
            median, spread, n = reps[0], float("nan"), 1
        else:
            continue
        source = "C++, Boost.Asio" if name.startswith("asio_") else "C++"
        rows[name] = {"name": name, "ns_per_op": median, "spread": spread, "n": n, "source": source}
        median_entry = agg.get("median") or last_run.get(name, {})
        if "greenlet_ns" in median_entry and "ratio" in median_entry:
            # switch_bench's interleaved row: ours and raw fiber timed in alternating bursts.
            rows[name]["ns_per_op"] = median_entry["greenlet_ns"]
            rows[name]["raw_fiber_ns"] = median_entry["raw_fiber_ns"]
            rows[name]["ratio_to_raw"] = median_entry["ratio"]
        if "bytes_per_connection" in median_entry:
            # connection_memory_bench: an idle connection, not a suspended task (its own table).
            rows[name]["bytes_per_connection"] = median_entry["bytes_per_connection"]
        for key in MEMORY_COUNTERS:
            if key in median_entry:
                rows[name]["bytes_per_task"] = median_entry[key]
                # scale_bench's rows time creation too: they stay in the time table
                rows[name]["also_timed"] = key == "bytes_per"
                break
    return rows, doc.get("context", {})


# Extra fields a peer row may carry: memory rows (bytes_per_task instead of a
# time) and HTTP rows under wrk (requests/s and latencies, ns_per_op being
# 1e9 / requests per second).
PEER_EXTRAS = ("bytes_per_task", "requests_per_second", "latency_avg_ms", "latency_p50_ms", "latency_p99_ms",
               "server_cpu_us", "connections", "tool")


def load_peer(doc, path):
    rows = {}
    for entry in doc:
        name = entry["name"]
        rows[name] = {
            "name": name,
            "ns_per_op": float(entry.get("ns_per_op", float("nan"))),
            "spread": float(entry.get("spread", float("nan"))),
            "n": entry.get("repetitions", 0),
            "source": entry.get("source", os.path.basename(path)),
        }
        for key in PEER_EXTRAS:
            if key in entry:
                rows[name][key] = entry[key]
    return rows


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cmake_cache(build_dir):
    values = {}
    if not build_dir:
        return values
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
            for line in f:
                m = re.match(r"^([A-Za-z_]+):[A-Z]+=(.*)$", line.rstrip("\n"))
                if m:
                    values[m.group(1)] = m.group(2)
    except OSError:
        pass
    return values


def compiler_version(path):
    if not path:
        return "unknown"
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
        return out.splitlines()[0].strip() if out else path
    except (OSError, subprocess.SubprocessError):
        return path


def fmt_ns(x):
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_ms(x):
    return "n/a" if x is None else f"{x:.2f} ms"


def fmt_spread(x):
    return "n/a" if x != x else f"{x:.1f}%"


def build_markdown(rows, context, args, cache):
    compiler = cache.get("CMAKE_CXX_COMPILER", "")
    build_type = cache.get("CMAKE_BUILD_TYPE", "")
    flags = " ".join(
        f for f in (cache.get("CMAKE_CXX_FLAGS", ""), cache.get(f"CMAKE_CXX_FLAGS_{build_type.upper()}", "")) if f
    )
    lines = [f"# Benchmark results {args.date}", ""]
    if args.command:
        lines += [f"Command: `{args.command}`", ""]
    lines += [
        "## Machine",
        "",
        f"- CPU: {cpu_model()} ({context.get('num_cpus', os.cpu_count())} CPUs"
        + (f", {context['mhz_per_cpu']} MHz" if "mhz_per_cpu" in context else "")
        + ")",
        f"- Kernel: {platform.system()} {platform.release()}",
        f"- Compiler: {compiler_version(compiler)}",
        f"- Build: {build_type or 'unknown'}, flags `{flags or 'none'}`",
        f"- Google Benchmark library build: {context.get('library_build_type', 'unknown')}",
        f"- Load average at start: {', '.join(f'{x:.2f}' for x in context.get('load_avg', [])) or 'unknown'}",
        "",
        "## Results",
        "",
        "ns per op is the median over repetitions; a switch benchmark's op is one switch",
        "(a ping-pong round trip is two), a create benchmark's op is one fiber created,",
        "entered, finished and destroyed. Spread is the coefficient of variation across",
        "repetitions (peer scripts: (max-min)/median).",
        "",
        "| benchmark | ns per op | spread | source |",
        "| --- | ---: | ---: | --- |",
    ]
    timed = {n: r for n, r in rows.items()
             if ("bytes_per_task" not in r or r.get("also_timed")) and "bytes_per_connection" not in r}
    for r in timed.values():
        lines.append(f"| {r['name']} | {fmt_ns(r['ns_per_op'])} | {fmt_spread(r['spread'])} | {r['source']} |")
    http = [r for r in rows.values() if "requests_per_second" in r]
    if http:
        tool = http[0].get("tool", "wrk")
        lines += ["", "## HTTP/1.1 hello under wrk", "",
                  f"`{tool}` against each server on 127.0.0.1, one after another; medians over runs. "
                  "The table above shows 1e9 / requests per second as ns per op. wrk shares the machine, so "
                  "requests/s can be wrk's limit; server CPU per request (user + system time of the server "
                  "process over the run, divided by the requests wrk counted) is the server's own cost.", "",
                  "| server | requests/s | spread | server CPU per request | latency avg | latency p50 | latency p99 "
                  "| source |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
        for r in http:
            cpu = r.get("server_cpu_us")
            lines.append(f"| {r['name']} | {r['requests_per_second']:,.0f} | {fmt_spread(r['spread'])} "
                         f"| {f'{cpu:.2f} µs' if cpu is not None else 'n/a'} "
                         f"| {fmt_ms(r.get('latency_avg_ms'))} | {fmt_ms(r.get('latency_p50_ms'))} "
                         f"| {fmt_ms(r.get('latency_p99_ms'))} | {r['source']} |")
        ours = rows.get("http_hello", {}).get("server_cpu_us")
        for r in http:
            peer = r.get("server_cpu_us")
            if ours and peer and r["name"] != "http_hello":
                lines.append(f"\nServer CPU per request, ours / {r['name']}: {ours / peer:.2f}x.")
    connections = [r for r in rows.values() if "bytes_per_connection" in r]
    if connections:
        lines += ["", "## Memory per idle connection", "",
                  "| benchmark | resident bytes per idle connection (server side) |", "| --- | ---: |"]
        for r in connections:
            lines.append(f"| {r['name']} | {r['bytes_per_connection']:,.0f} |")
    memory = [r for r in rows.values() if "bytes_per_task" in r]
    if memory:
        lines += ["", "## Memory", "", "| benchmark | resident bytes per suspended task | spread | target |",
                  "| --- | ---: | ---: | --- |"]
        for r in memory:
            b = r["bytes_per_task"]
            limit, what = (1024, "1 KiB") if "_shared" in r["name"] else (4096, "4 KiB")  # stack copying: 1 KiB
            target = f"<= {what} ({'met' if b <= limit else 'MISSED'})" if is_ours(r["name"]) else "peer"
            lines.append(f"| {r['name']} | {b:,.0f} | {fmt_spread(r['spread'])} | {target} |")
    lines += ["", "## Ratios (ours / peer, lower is better for us)", "", "| pair | ours ns | peer ns | ratio | limit |",
              "| --- | ---: | ---: | ---: | --- |"]
    verdicts = []
    for ours, peer, label, limit in RATIOS:
        if ours in rows and peer in rows:
            a, b = rows[ours]["ns_per_op"], rows[peer]["ns_per_op"]
            ratio = a / b
            lim = "" if limit is None else f"<= {limit} ({'met' if ratio <= limit else 'MISSED'})"
            lines.append(f"| {label} | {fmt_ns(a)} | {fmt_ns(b)} | {ratio:.3f}x | {lim} |")
            if limit is not None:
                verdicts.append((f"{label} <= {limit}x", ratio <= limit, f"{ratio:.3f}x"))
    for r in rows.values():
        if "ratio_to_raw" in r:
            label = "switch: ours / raw fiber, alternating bursts in one process (median of the bursts' ratios)"
            ratio = r["ratio_to_raw"]
            lines.append(f"| {label} | {fmt_ns(r['ns_per_op'])} | {fmt_ns(r['raw_fiber_ns'])} | {ratio:.3f}x "
                         f"| <= 1.3 ({'met' if ratio <= 1.3 else 'MISSED'}) |")
            verdicts.append((f"{label} <= 1.3x", ratio <= 1.3, f"{ratio:.3f}x"))
    for prefix, peer, label, limit in MEMORY_RATIOS:
        ours = next((r for n, r in rows.items() if n.startswith(prefix) and "bytes_per_task" in r), None)
        if ours is not None and peer in rows and rows[peer].get("bytes_per_task"):
            a, b = ours["bytes_per_task"], rows[peer]["bytes_per_task"]
            ratio = a / b
            lim = "" if limit is None else f"< {limit} ({'met' if ratio < limit else 'MISSED'})"
            lines.append(f"| {label} | {a:,.0f} B | {b:,.0f} B | {ratio:.3f}x | {lim} |")
            if limit is not None:
                verdicts.append((f"{label} < {limit}x", ratio < limit, f"{ratio:.3f}x"))
    for name, limit, label in ABSOLUTE:
        if name in rows:
            v = rows[name]["ns_per_op"]
            verdicts.append((label, v <= limit, f"{fmt_ns(v)} ns"))
    if verdicts:
        lines += ["", "## Targets", "", "| target | measured | verdict |", "| --- | ---: | --- |"]
        for label, ok, measured in verdicts:
            lines.append(f"| {label} | {measured} | {'met' if ok else 'MISSED'} |")
    if args.png_name:
        lines += ["", f"![ns per op, log scale]({args.png_name})"]
    return "\n".join(lines) + "\n"


def write_png(rows, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    names = [n for n in rows
             if ("bytes_per_task" not in rows[n] or rows[n].get("also_timed")) and "bytes_per_connection" not in rows[n]]
    if not names:
        return False
    values = [rows[n]["ns_per_op"] for n in names]
    colors = ["tab:green" if is_ours(n) else "tab:gray" for n in names]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(names) + 1.2))
    ax.barh(range(len(names)), values, color=colors)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("ns per op (median, log scale); green = ours")
    for i, v in enumerate(values):
        ax.text(v, i, f" {fmt_ns(v)}", va="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="Google Benchmark or peer JSON files")
    parser.add_argument("--out-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "results"))
    parser.add_argument("--build-dir", default="", help="CMake build dir, for compiler and flags")
    parser.add_argument("--date", default=datetime.date.today().isoformat())
    parser.add_argument("--command", default="", help="the command that produced the results")
    args = parser.parse_args()

    rows = {}
    context = {}
    for path in args.results:
        with open(path) as f:
            doc = json.load(f)
        if isinstance(doc, dict) and "benchmarks" in doc:
            r, ctx = load_google_benchmark(doc)
            context = context or ctx
        elif isinstance(doc, list):
            r = load_peer(doc, path)
        else:
            raise SystemExit(f"report.py: {path}: neither Google Benchmark JSON nor a peer list")
        if not r:
            raise SystemExit(f"report.py: {path}: no results")
        rows.update(r)

    os.makedirs(args.out_dir, exist_ok=True)
    md_path = os.path.join(args.out_dir, f"{args.date}.md")
    png_path = os.path.join(args.out_dir, f"{args.date}.png")
    args.png_name = os.path.basename(png_path) if write_png(rows, png_path) else ""
    text = build_markdown(rows, context, args, cmake_cache(args.build_dir))
    with open(md_path, "w") as f:
        f.write(text)
    sys.stdout.write(text)
    print(f"\nwrote {os.path.normpath(md_path)}" + (f" and {args.png_name}" if args.png_name else " (no matplotlib: no PNG)"))


if __name__ == "__main__":
    main()
