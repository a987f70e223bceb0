#!/usr/bin/env python3
"""http_wrk.py: the HTTP/1.1 hello servers under wrk, as rows for report.py.

Usage:
  http_wrk.py --build-dir BUILD [--repetitions 5] [--duration 5] [--connections 100]
              [--threads 1] [--python /usr/bin/python3] [--only NAME,...]

Starts each server on its own free port on 127.0.0.1 (all at once; an idle one
costs nothing):
  http_hello                     ours, examples/http_hello.cpp (BUILD/bench/http_hello), streams
  http_hello_protocol            the same with an asyncio::Protocol
  asio_http_hello                Boost.Asio, completion handlers (BUILD/bench/http_hello_asio)
  asio_http_hello_coroutine      Boost.Asio, C++20 coroutines
  py_uvloop_http_hello           asyncio streams on uvloop (bench/peers/http_hello_uvloop.py)
  py_uvloop_http_hello_protocol  an asyncio.Protocol on uvloop
checks that each answers keep-alive requests correctly (two requests one after
the other on one connection, then two pipelined, the second with
"Connection: close"), runs one short wrk warm-up against each, then
--repetitions rounds of `wrk -t1 -c100 -dDs --latency`, one server after the
other in each round, so that a burst of noise on the machine is spread over
all of them. Prints a JSON list in report.py's peer schema: ns_per_op is
1e9 / requests per second (the median over rounds), spread (max-min)/median of
requests per second in %, plus requests_per_second, the medians of wrk's
average, 50% and 99% latencies in ms, and server_cpu_us: the server process's
CPU time (user + system, from /proc/PID/stat) per request wrk counted. With
wrk on the same small machine, requests/s may be wrk's limit rather than the
server's; CPU per request is the server's own cost either way. Exits 0 with an empty list and a note on
stderr when wrk is not installed.
"""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
CLOSE_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
BODY = b"Hello, World!"


def note(msg):
    print(f"http_wrk.py: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def servers(args):
    """(name, argv builder taking a port, source) for every server that can run here."""
    build = os.path.join(args.build_dir, "bench")
    out = []
    ours = os.path.join(build, "http_hello")
    if os.access(ours, os.X_OK):
        out.append(("http_hello", lambda p: [ours, str(p)], "ours, examples/http_hello.cpp, streams"))
        out.append(("http_hello_protocol", lambda p: [ours, str(p), "protocol"],
                    "ours, examples/http_hello.cpp, protocol"))
    else:
        note(f"{ours} not built: row http_hello skipped")
    asio = os.path.join(build, "http_hello_asio")
    if os.access(asio, os.X_OK):
        out.append(("asio_http_hello", lambda p: [asio, str(p), "callback"], "Boost.Asio, completion handlers"))
        out.append(("asio_http_hello_coroutine", lambda p: [asio, str(p), "coroutine"],
                    "Boost.Asio, C++20 coroutines"))
    else:
        note(f"{asio} not built: Asio rows skipped")
    probe = subprocess.run([args.python, "-c", "import sys, uvloop; print(sys.version.split()[0], uvloop.__version__)"],
                           capture_output=True, text=True)
    if probe.returncode == 0:
        python, uv = probe.stdout.split()
        script = os.path.join(BENCH, "peers", "http_hello_uvloop.py")
        for name, mode in (("py_uvloop_http_hello", "streams"), ("py_uvloop_http_hello_protocol", "protocol")):
            out.append((name, lambda p, mode=mode: [args.python, script, "--port", str(p), "--mode", mode],
                        f"Python {python}, uvloop {uv}, {mode}"))
    else:
        note(f"{args.python} has no uvloop: uvloop rows skipped")
    if args.only:
        keep = set(args.only.split(","))
        out = [s for s in out if s[0] in keep]
    return out


def wait_ready(proc, port, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def read_response(sock, buf):
    """Reads one response from sock (buf holds bytes already read); returns (body, rest) or (None, buf) at EOF."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)content-length:\s*(\d+)", head)
    if not head.startswith(b"HTTP/1.1 200") or not m:
        raise ValueError(f"bad response head {head[:80]!r}")
    length = int(m.group(1))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None, buf
        rest += chunk
    return rest[:length], rest[length:]


def check_keep_alive(port):
    """Two requests in turn, then two pipelined (the second asks to close): four 'Hello, World!' and EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        buf = b""
        bodies = []
        for _ in range(2):
            s.sendall(REQUEST)
            body, buf = read_response(s, buf)
            bodies.append(body)
        s.sendall(REQUEST + CLOSE_REQUEST)
        for _ in range(2):
            body, buf = read_response(s, buf)
            bodies.append(body)
        if bodies != [BODY] * 4:
            raise ValueError(f"bodies {bodies!r}")
        s.settimeout(5)
        if buf or s.recv(1):
            raise ValueError("the server did not close after Connection: close")


UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_wrk(text):
    def ms(pattern):
        m = re.search(pattern + r"\s+([\d.]+)(us|ms|s)\b", text)
        return float(m.group(1)) * UNITS_MS[m.group(2)] if m else None

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not rps:
        raise ValueError(f"no Requests/sec in wrk output:\n{text}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    total = re.search(r"(\d+) requests in", text)
    return {
        "rps": float(rps.group(1)),
        "requests": int(total.group(1)) if total else None,
        "avg": ms(r"Latency"),
        "p50": ms(r"\n\s+50%"),
        "p99": ms(r"\n\s+99%"),
        "errors": (sum(int(x) for x in errors.groups()) if errors else 0) + (int(non2xx.group(1)) if non2xx else 0),
    }


def cpu_seconds(pid):
    """User + system CPU time of process pid so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(wrk, port, args, duration):
    cmd = [wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{duration}s", "--latency",
           f"http://127.0.0.1:{port}/"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr}")
    return parse_wrk(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--only", default="", help="comma-separated row names")
    args = parser.parse_args()

    wrk = shutil.which("wrk")
    if not wrk:
        note("wrk is not installed (apt-get install wrk): HTTP rows skipped")
        print("[]")
        return
    tool = f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency"
    running = []
    try:
        for name, argv, source in servers(args):
            port = free_port()
            proc = subprocess.Popen(argv(port), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if not wait_ready(proc, port):
                note(f"{name} did not start: {proc.stderr.read().decode() if proc.poll() is not None else 'timeout'}")
                proc.kill()
                continue
            try:
                check_keep_alive(port)
            except (OSError, ValueError) as e:
                note(f"{name} fails the keep-alive check ({e}): row skipped")
                proc.kill()
                continue
            running.append((name, proc, port, source))
        samples = {name: [] for name, *_ in running}
        failed = set()
        for round_ in range(args.repetitions + 1):  # round 0: a 1-second warm-up
            for name, proc, port, _ in running:
                if name in failed:
                    continue
                try:
                    cpu_before = cpu_seconds(proc.pid)
                    result = run_wrk(wrk, port, args, 1 if round_ == 0 else args.duration)
                    cpu = cpu_seconds(proc.pid) - cpu_before
                except (RuntimeError, ValueError, OSError, subprocess.TimeoutExpired) as e:
                    note(f"{name}: {e}: row skipped")
                    failed.add(name)
                    continue
                result["cpu_us"] = cpu * 1e6 / result["requests"] if result["requests"] else None
                if round_ > 0:
                    samples[name].append(result)
        running_ok = [r for r in running if r[0] not in failed]
    finally:
        for _, proc, _, _ in running:
            proc.terminate()
        for _, proc, _, _ in running:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
    rows = []
    for name, _, _, source in running_ok:
        runs = samples[name]
        rps = [r["rps"] for r in runs]
        median = statistics.median(rps)
        errors = sum(r["errors"] for r in runs)
        if errors:
            note(f"{name}: wrk counted {errors} socket errors or non-2xx responses")
            source += f" ({errors} wrk errors)"

        def med(key):
            values = [r[key] for r in runs if r[key] is not None]
            return statistics.median(values) if values else None

        rows.append({
            "name": name,
            "ns_per_op": 1e9 / median,
            "spread": 100.0 * (max(rps) - min(rps)) / median,
            "repetitions": len(runs),
            "source": source,
            "requests_per_second": median,
            "latency_avg_ms": med("avg"),
            "latency_p50_ms": med("p50"),
            "latency_p99_ms": med("p99"),
            "server_cpu_us": med("cpu_us"),
            "connections": args.connections,
            "tool": tool,
        })
    json.dump(rows, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
