"""peer_rows.py: the JSON row every peer script prints (report.py's peer schema).

Not a peer itself: bench/run_all.sh skips it.
"""
import statistics


def row(name, samples, source, **extra):
    """A row: the median of the samples in ns per op and their spread, (max-min)/median in %."""
    median = statistics.median(samples)
    return {
        "name": name,
        "ns_per_op": median,
        "spread": 100.0 * (max(samples) - min(samples)) / median,
        "repetitions": len(samples),
        "source": source,
        **extra,
    }


def on_fresh_loops(new_loop, repetitions, make_scenario):
    """One sample per repetition: make_scenario()'s result, each on a fresh loop from new_loop(),
    whose default executor is shut down before it closes (as asyncio.run() does)."""
    samples = []
    for _ in range(repetitions):
        loop = new_loop()
        try:
            samples.append(loop.run_until_complete(make_scenario()))
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
    return samples
