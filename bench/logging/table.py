"""Prints the logging benchmark's table from the JSON lines of `run.sh` (a file, or stdin).

    python table.py bench/out/logging.jsonl

One row per implementation: hot-path nanoseconds per logged point, sustained points per second,
total seconds for the workload, bytes on disk per point, and how many times faster Regimen is on
the first two. A row whose
total was extrapolated from fewer points says so.
"""

import json
import sys


def main() -> None:
    source = open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin
    rows = {}
    for line in source:
        line = line.strip()
        if line.startswith("{"):
            row = json.loads(line)
            rows[row["impl"]] = row
    regimen = rows.get("regimen")
    if regimen is None:
        sys.exit("no Regimen line in the input: nothing to compare against")

    header = f"{'':<12} {'hot path ns/point':>18} {'sustained points/s':>19} {'total s':>9} {'bytes/point':>12} {'hot path ×':>11} {'sustained ×':>12}"
    print(header)
    print("-" * len(header))
    notes = []
    for name in ["regimen", "mlflow", "tensorboard"]:
        row = rows.get(name)
        if row is None:
            continue
        total = f"{row['seconds']:.2f}" + ("*" if row.get("extrapolated") else "")
        if name == "regimen":
            hot_ratio, rate_ratio = "", ""
        else:
            hot_ratio = f"{row['ns_per_call'] / regimen['ns_per_call']:.0f}×"
            rate_ratio = f"{regimen['points_per_s'] / row['points_per_s']:.0f}×"
        size = f"{row['bytes'] / row['measured_points']:.1f}"
        print(f"{name:<12} {row['ns_per_call']:>18,.0f} {row['points_per_s']:>19,.0f} {total:>9} {size:>12} {hot_ratio:>11} {rate_ratio:>12}")
        notes.append(f"  {name}: {row['store']}")
        if row.get("extrapolated"):
            notes.append(f"    * measured on {row['measured_points']:,} points and extrapolated linearly to {row['points']:,}")
        if "repeats" in row:
            notes.append(f"    median of {row['repeats']} repeats (best {row['best_points_per_s']:,.0f} points/s)")
    print()
    print("× = how many times faster Regimen is (hot path: their ns / ours; sustained: our rate / theirs)")
    print("\n".join(notes))


if __name__ == "__main__":
    main()
