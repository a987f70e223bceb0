#!/usr/bin/env python3
"""gevent_switch.py: gevent (python3-gevent) greenlets on its hub as a peer.

Prints a JSON list in report.py's peer schema (peer_rows.row: the median of
--repetitions samples, spread (max-min)/median in %):
  py_gevent_sleep0_switch    ns per task switch: two greenlets alternate with
                             gevent.sleep(0), each call hands over to the other
                             through the hub (one sleep(0) per switch)
  py_gevent_channel_switch   ns per switch: the main greenlet and an echo
                             greenlet ping-pong over two gevent.queue.Channel
                             (unbuffered, as Go's channels; a round trip is two)
  py_gevent_create           ns per greenlet spawned, run and joined, one at a time
  py_gevent_sleep0_step      ns per step: 100,000 greenlets each gevent.sleep(0)
                             ten times, creation amortized over the 11 steps
                             (the loop's and asyncio's 100k x 10 sleep(0) workload)
  py_gevent_suspended_memory resident bytes per greenlet with 100,000 blocked on
                             one gevent.event.Event (RSS delta / count), each
                             sample in a fresh interpreter
"""
import argparse
import gc
import json
import os
import subprocess
import sys
import time

from peer_rows import row

try:
    import gevent
    import gevent.event
    import gevent.queue
except ImportError:
    sys.exit("gevent_switch.py: the gevent module is not installed (apt-get install python3-gevent)")


def sleep0_switch_ns(rounds):
    sleep = gevent.sleep

    def side():
        for _ in range(rounds):
            sleep(0)

    a, b = gevent.spawn(side), gevent.spawn(side)
    t0 = time.perf_counter_ns()
    gevent.joinall([a, b])
    return (time.perf_counter_ns() - t0) / (2 * rounds)


def channel_switch_ns(rounds):
    ping, pong = gevent.queue.Channel(), gevent.queue.Channel()

    def echo():
        get, put = ping.get, pong.put
        while get() is not None:
            put(True)

    g = gevent.spawn(echo)
    put, get = ping.put, pong.get
    t0 = time.perf_counter_ns()
    for _ in range(rounds):
        put(True)
        get()
    elapsed = time.perf_counter_ns() - t0
    ping.put(None)
    g.join()
    return elapsed / (2 * rounds)


def create_ns(count):
    def run():
        pass

    spawn = gevent.spawn
    t0 = time.perf_counter_ns()
    for _ in range(count):
        spawn(run).join()
    return (time.perf_counter_ns() - t0) / count


def sleep0_step_ns(tasks, sleeps):
    sleep = gevent.sleep

    def worker():
        for _ in range(sleeps):
            sleep(0)

    t0 = time.perf_counter_ns()
    gevent.joinall([gevent.spawn(worker) for _ in range(tasks)])
    return (time.perf_counter_ns() - t0) / (tasks * (sleeps + 1))


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGESIZE")


def memory_once(tasks):
    """RSS growth per greenlet with `tasks` greenlets blocked on one Event."""
    gate = gevent.event.Event()
    gc.collect()
    before = resident_bytes()
    all_ = [gevent.spawn(gate.wait) for _ in range(tasks)]
    gevent.sleep(0)  # every greenlet starts and blocks (spawns run first, in order)
    after = resident_bytes()
    gate.set()
    gevent.joinall(all_)
    return (after - before) / tasks


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=100_000)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--sleeps", type=int, default=10)
    parser.add_argument("--memory-once", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_once:
        print(memory_once(args.tasks))
        return
    memory = [float(subprocess.run([sys.executable, __file__, "--memory-once", "--tasks", str(args.tasks)],
                                   check=True, capture_output=True, text=True).stdout)
              for _ in range(args.repetitions)]
    sleep0_switch_ns(args.rounds // 10)  # warm up
    reps = range(args.repetitions)
    source = f"Python {sys.version.split()[0]}, gevent {gevent.__version__}"
    rows = [
        row("py_gevent_sleep0_switch", [sleep0_switch_ns(args.rounds) for _ in reps], source),
        row("py_gevent_channel_switch", [channel_switch_ns(args.rounds) for _ in reps], source),
        row("py_gevent_create", [create_ns(args.rounds // 4) for _ in reps], source),
        row("py_gevent_sleep0_step", [sleep0_step_ns(args.tasks, args.sleeps) for _ in reps], source),
    ]
    mem = row("py_gevent_suspended_memory", memory, source)
    mem["bytes_per_task"] = mem.pop("ns_per_op")
    rows.append(mem)
    json.dump(rows, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
