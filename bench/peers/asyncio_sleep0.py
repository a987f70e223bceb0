#!/usr/bin/env python3
"""asyncio_sleep0.py: asyncio (and uvloop when installed) as a peer.

100,000 tasks each await asyncio.sleep(0) ten times. Every sleep(0) yields to
the loop, which resumes the task with one call_soon callback, so the figure
is the cost of one scheduled callback (a task step), task creation included
amortized over its 11 steps. It also times asyncio.gather() over 1,000 tasks that return their index.
Prints a JSON list in report.py's peer schema:
  py_asyncio_sleep0_step, py_uvloop_sleep0_step  ns per task step
  py_asyncio_call_soon, py_uvloop_call_soon      ns per call_soon() callback
  py_asyncio_gather, py_uvloop_gather            ns per task created, run and
                                                 gathered (1,000 at a time)
  py_asyncio_gather_wrapped                      the same through a task factory
                                                 wrapping each coroutine in one
                                                 that counts starts and ends
ns_per_op is the median of --repetitions runs; spread is (max-min)/median in %.
"""
import argparse
import asyncio
import json
import sys
import time

from peer_rows import on_fresh_loops, row

try:
    import uvloop
except ImportError:
    uvloop = None


async def worker(sleeps):
    for _ in range(sleeps):
        await asyncio.sleep(0)


async def scenario(tasks, sleeps):
    t0 = time.perf_counter_ns()
    await asyncio.gather(*(worker(sleeps) for _ in range(tasks)))
    t1 = time.perf_counter_ns()
    return (t1 - t0) / (tasks * (sleeps + 1))


async def index(i):
    return i


async def gather_scenario(tasks, rounds):
    t0 = time.perf_counter_ns()
    for _ in range(rounds):
        results = await asyncio.gather(*[asyncio.create_task(index(i)) for i in range(tasks)])
        assert results[-1] == tasks - 1
    return (time.perf_counter_ns() - t0) / (tasks * rounds)


def gather_ns(new_loop, repetitions, tasks=1000, rounds=100):
    """ns per task created, run and gathered (as gather_tasks/1000)."""
    return on_fresh_loops(new_loop, repetitions, lambda: gather_scenario(tasks, rounds))


def wrapping_factory(counts):
    """A task factory wrapping each coroutine in one that counts its starts and ends, as
    gather_tasks_factory/1000/1's wrapper does."""
    def factory(loop, coro, **kwargs):
        async def wrapped():
            counts[0] += 1
            result = await coro
            counts[1] += 1
            return result
        return asyncio.Task(wrapped(), loop=loop, **kwargs)
    return factory


async def gather_wrapped_scenario(tasks, rounds):
    counts = [0, 0]
    asyncio.get_running_loop().set_task_factory(wrapping_factory(counts))
    ns = await gather_scenario(tasks, rounds)
    assert counts == [tasks * rounds, tasks * rounds]
    return ns


def gather_wrapped_ns(new_loop, repetitions, tasks=1000, rounds=100):
    """ns per task created, run and gathered through a wrapping factory (gather_tasks_factory/1000/1)."""
    return on_fresh_loops(new_loop, repetitions, lambda: gather_wrapped_scenario(tasks, rounds))


def call_soon_ns(new_loop, callbacks, repetitions):
    """ns per call_soon() callback, scheduled and run (as loop_call_soon)."""
    samples = []
    for _ in range(repetitions):
        loop = new_loop()
        try:
            counter = [0]

            def bump():
                counter[0] += 1

            t0 = time.perf_counter_ns()
            for _ in range(callbacks - 1):
                loop.call_soon(bump)
            loop.call_soon(loop.stop)
            loop.run_forever()
            samples.append((time.perf_counter_ns() - t0) / callbacks)
        finally:
            loop.close()
    return samples


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--sleeps", type=int, default=10)
    args = parser.parse_args()
    python = f"Python {sys.version.split()[0]}"
    steps = lambda: scenario(args.tasks, args.sleeps)  # noqa: E731
    rows = [row("py_asyncio_sleep0_step", on_fresh_loops(asyncio.new_event_loop, args.repetitions, steps), f"{python}, asyncio")]
    rows.append(row("py_asyncio_call_soon",
                    call_soon_ns(asyncio.new_event_loop, 100_000, args.repetitions), f"{python}, asyncio"))
    rows.append(row("py_asyncio_gather", gather_ns(asyncio.new_event_loop, args.repetitions), f"{python}, asyncio"))
    rows.append(row("py_asyncio_gather_wrapped", gather_wrapped_ns(asyncio.new_event_loop, args.repetitions),
                    f"{python}, asyncio"))
    if uvloop is not None:
        rows.append(row("py_uvloop_sleep0_step",
                        on_fresh_loops(uvloop.new_event_loop, args.repetitions, steps),
                        f"{python}, uvloop {uvloop.__version__}"))
        rows.append(row("py_uvloop_call_soon",
                        call_soon_ns(uvloop.new_event_loop, 100_000, args.repetitions),
                        f"{python}, uvloop {uvloop.__version__}"))
        rows.append(row("py_uvloop_gather", gather_ns(uvloop.new_event_loop, args.repetitions),
                        f"{python}, uvloop {uvloop.__version__}"))
    json.dump(rows, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
