"""Timing helpers shared by the bench sections: one way to time and summarise.

Times are taken with ``perf_counter_ns`` (a call of a few microseconds is still
resolved to tens of nanoseconds) and summarised by nearest-rank percentiles, so a
p99 is a time that was actually measured, not an interpolation.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarise(values: Sequence[float], unit: str) -> dict[str, Any]:
    """Median, p90, p99, min and max of ``values`` (already in ``unit``)."""
    return {
        "unit": unit,
        "count": len(values),
        "median": statistics.median(values),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "min": min(values),
        "max": max(values),
    }


def per_call(
    fn: Callable[[Any], Any],
    count: int,
    *,
    unit: str = "us",
    warmup: int = 0,
    prepare: Callable[[int], Any] | None = None,
) -> dict[str, Any]:
    """Time ``count`` calls of ``fn(prepare(i))`` one by one; ``prepare`` (untimed)
    makes each call's argument, e.g. a fresh instance so nothing is cached between
    calls. ``warmup`` calls first, untimed."""
    prepare = prepare or (lambda i: None)
    for i in range(warmup):
        fn(prepare(i))
    scale, clock = UNITS[unit], time.perf_counter_ns
    samples = []
    for i in range(count):
        argument = prepare(i)
        started = clock()
        fn(argument)
        samples.append((clock() - started) / scale)
    return summarise(samples, unit)


def repeated(fn: Callable[[], Any], count: int, *, unit: str = "ms", warmup: int = 1) -> dict[str, Any]:
    """Time ``count`` runs of a larger piece of work ``fn()``."""
    return per_call(lambda _: fn(), count, unit=unit, warmup=warmup)


def once(fn: Callable[[], Any], *, unit: str = "s") -> tuple[float, Any]:
    """One timed run: (time in ``unit``, what ``fn`` returned)."""
    started = time.perf_counter_ns()
    result = fn()
    return (time.perf_counter_ns() - started) / UNITS[unit], result


def load() -> list[float]:
    """The load average now: figures from a shared machine are read with it."""
    return [round(n, 2) for n in os.getloadavg()]
