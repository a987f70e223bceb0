#!/usr/bin/env python3
"""generator_step.py: Python generators (and greenlet-based ones) as a peer.

The same work as bench/generator_bench.cpp: a generator yielding ints
forever, one step (a value produced and taken) at a time, and a for loop over
a finite generator. Every sample takes --steps steps. Prints a JSON list in
report.py's peer schema:
  py_generator_next           ns per next(g) on a generator function
  py_generator_for_loop       ns per item of `for v in gen(1000)`, the
                              generator created per 1,000 items
  py_greenlet_generator_next  ns per g.switch() into a greenlet that hands
                              back each int with parent.switch(i) (only with
                              python3-greenlet installed)
ns_per_op is the median of --repetitions runs; spread is (max-min)/median in %.
"""
import argparse
import json
import sys
import time

from peer_rows import row

try:
    import greenlet
except ImportError:
    greenlet = None

FOR_LOOP_ITEMS = 1000


def count_forever():
    i = 0
    while True:
        yield i
        i += 1


def count_to(n):
    for i in range(n):
        yield i


def next_ns(steps):
    g = count_forever()
    step = g.__next__
    t0 = time.perf_counter_ns()
    for _ in range(steps):
        step()
    t1 = time.perf_counter_ns()
    g.close()
    return (t1 - t0) / steps


def for_loop_ns(steps):
    rounds = max(1, steps // FOR_LOOP_ITEMS)
    t0 = time.perf_counter_ns()
    for _ in range(rounds):
        total = 0
        for v in count_to(FOR_LOOP_ITEMS):
            total += v
    t1 = time.perf_counter_ns()
    return (t1 - t0) / (rounds * FOR_LOOP_ITEMS)


def greenlet_next_ns(steps):
    main = greenlet.getcurrent()

    def body():
        hand_back = main.switch
        i = 0
        while True:
            hand_back(i)
            i += 1

    g = greenlet.greenlet(body)
    step = g.switch
    t0 = time.perf_counter_ns()
    for _ in range(steps):
        step()
    t1 = time.perf_counter_ns()
    g.throw(greenlet.GreenletExit)
    return (t1 - t0) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1_000_000)
    args = parser.parse_args()
    python = f"Python {sys.version.split()[0]}"
    reps = range(args.repetitions)
    rows = [
        row("py_generator_next", [next_ns(args.steps) for _ in reps], f"{python}, generator"),
        row("py_generator_for_loop", [for_loop_ns(args.steps) for _ in reps], f"{python}, generator"),
    ]
    if greenlet is not None:
        rows.append(row("py_greenlet_generator_next", [greenlet_next_ns(args.steps) for _ in reps],
                        f"{python}, greenlet {greenlet.__version__}"))
    json.dump(rows, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
