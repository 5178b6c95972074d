"""Shrink a long metric history to a few thousand points for a chart, keeping its shape.

A chart is a few hundred pixels wide: sending 100,000 points costs time and shows nothing more.
Each bucket of consecutive points keeps its first, lowest, highest and last point (the M4
scheme), so spikes and the exact ends survive, which an average or a stride would lose.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Point = tuple[int, float, int]  # step, value, timestamp


def downsample(points: Sequence[Point], max_points: int) -> list[Point]:
    """At most `max_points` of `points` (ordered by step), chosen bucket by bucket."""
    if max_points < 4:
        raise ValueError("max_points must be at least 4")
    n = len(points)
    if n <= max_points:
        return list(points)
    buckets = max_points // 4
    keep: list[int] = []
    for b in range(buckets):
        start = b * n // buckets
        end = (b + 1) * n // buckets
        keep.extend(sorted(set(_extremes(points, start, end))))
    return [points[i] for i in keep]


def _extremes(points: Sequence[Point], start: int, end: int) -> tuple[int, ...]:
    """Indices of the first, lowest, highest and last point in points[start:end]."""
    low = high = -1
    for i in range(start, end):
        value = points[i][1]
        if not math.isfinite(value):
            continue
        if low < 0 or value < points[low][1]:
            low = i
        if high < 0 or value > points[high][1]:
            high = i
    found = [start, end - 1]
    if low >= 0:
        found += [low, high]
    return tuple(found)
