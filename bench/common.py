"""Helpers shared by the benchmarks: timing summaries and machine description."""

from __future__ import annotations

import os
import platform
import statistics


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(name: str, samples_seconds: list[float]) -> str:
    ms = [sample * 1000 for sample in samples_seconds]
    return (
        f"{name:42} n={len(ms):4}  p50={percentile(ms, 0.5):8.2f} ms  "
        f"p99={percentile(ms, 0.99):8.2f} ms  mean={statistics.fmean(ms):8.2f} ms"
    )


def machine() -> str:
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
        f"{memory_gib:.0f} GiB, Python {platform.python_version()}"
    )
