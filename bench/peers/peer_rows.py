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
