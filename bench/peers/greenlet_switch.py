#!/usr/bin/env python3
"""greenlet_switch.py: Python's greenlet (python3-greenlet) as a peer.

Prints a JSON list in report.py's peer schema:
  py_greenlet_switch  ns per switch, main <-> child ping-pong (2 per round trip)
  py_greenlet_create  ns per greenlet created, switched into, finished, dropped
ns_per_op is the median of --repetitions runs; spread is (max-min)/median in %.
"""
import argparse
import json
import sys
import time

from peer_rows import row as peer_row

try:
    import greenlet
except ImportError:
    sys.exit("greenlet_switch.py: the greenlet module is not installed (apt-get install python3-greenlet)")


def switch_ns(rounds):
    main = greenlet.getcurrent()

    def child():
        while True:
            main.switch()

    g = greenlet.greenlet(child)
    g.switch()
    sw = g.switch
    t0 = time.perf_counter_ns()
    for _ in range(rounds):
        sw()
    t1 = time.perf_counter_ns()
    g.throw(greenlet.GreenletExit)
    return (t1 - t0) / (2 * rounds)


def create_ns(count):
    def run():
        pass

    make = greenlet.greenlet
    t0 = time.perf_counter_ns()
    for _ in range(count):
        make(run).switch()
    t1 = time.perf_counter_ns()
    return (t1 - t0) / count


def row(name, samples):
    return peer_row(name, samples, f"Python {sys.version.split()[0]}, greenlet {greenlet.__version__}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1_000_000)
    args = parser.parse_args()
    switch_ns(args.rounds // 10)  # warm up
    switches = [switch_ns(args.rounds) for _ in range(args.repetitions)]
    creates = [create_ns(args.rounds // 4) for _ in range(args.repetitions)]
    json.dump([row("py_greenlet_switch", switches), row("py_greenlet_create", creates)], sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
