"""The logging benchmark's workload, shared by the MLflow and TensorBoard scripts.

The same as Regimen's side (`crates/regimen-store/benches/record.rs`): a training loop that logs
the same 10 scalar keys at every step, 100,000 steps, 1,000,000 points in all.
"""

import json
import os
import sys

# The keys a training loop logs every step: one list, `keys.txt`, read by both sides.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "keys.txt"), encoding="utf-8") as keys:
    KEYS = [line.strip() for line in keys if line.strip()]


def value(step: int, k: int) -> float:
    """The value of key number `k` at `step`: cheap, deterministic, different per key."""
    return 1.0 / (1 + step) + 0.001 * k


def steps_for(points: int) -> int:
    """Whole steps of every key in `points` points."""
    steps = points // len(KEYS)
    if steps < 1:
        sys.exit(f"--points must be at least {len(KEYS)}, one step of every key; got {points}")
    return steps


def folder_bytes(path: str) -> int:
    """Bytes of every file under `path`."""
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def report(impl: str, store: str, points: int, measured: int, hot_seconds: float, total_seconds: float, **extra) -> None:
    """Prints one JSON line in the shape `bench/logging/table.py` reads.

    `measured` points were logged; when fewer than `points`, the time is extrapolated linearly to
    `points` and the line says so.
    """
    scale = points / measured
    line = {
        "impl": impl,
        "store": store,
        "points": points,
        "measured_points": measured,
        "extrapolated": measured != points,
        "ns_per_call": hot_seconds / measured * 1e9,
        "points_per_s": measured / total_seconds,
        "seconds": total_seconds * scale,
        **extra,
    }
    print(json.dumps(line), flush=True)
