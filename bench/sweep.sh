#!/usr/bin/env bash
# Sweep benchmark: Regimen's sweep store and samplers vs Optuna 5.0, same machine, one run.
#
#   bench/sweep.sh [--repeat N] [--seeds N] [--optuna-trials N] [--store-dir DIR] [--skip-overhead] [--skip-quality]
#                  [--skip-zoom] [--zoom-after N] [--top-k K] [--margin M]
#
#   (a) overhead: 1,000 and 10,000 trivial trials persisted to SQLite (random sampler), Regimen's
#       store vs Optuna's RDB storage, both in DIR (default bench/out, on disk; /dev/shm leaves
#       fsync out); with --optuna-trials below 10,000 (default) Optuna's 10,000-trial total is
#       extrapolated (marked *).
#   (b) quality: normalized regret after 50 and 100 trials on the 24 BBOB functions in 5-D
#       (cocoex), Branin and Hartmann6, over N seeds (default 10), for Regimen's random, Sobol and
#       TPE and Optuna's random and TPE.
#   (c) zoom vs no zoom at equal budget: Regimen's TPE and random sampler zooming once after 50
#       trials (top 5, margin 0.25), against the same runs without zoom (--skip-zoom leaves it out).
#
# Environment:
#   CARGO_TARGET_DIR   where the example is built (default: target)
#
# bench/sweep-requirements.txt pins optuna 5.0.0, coco-experiment 2.8.2 (the `cocoex` module) and
# every dependency; they are installed into bench/.venv-sweep.
#
# Raw JSON lines go to bench/out/sweep_overhead.jsonl and bench/out/sweep_quality.jsonl; the
# temporary SQLite stores are created (and removed) in the store folder, the same for both.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
cd "$ROOT"

VENV="$BENCH_DIR/.venv-sweep"
REQUIREMENTS="$BENCH_DIR/sweep-requirements.txt"

log() { echo "[sweep-bench] $*" >&2; }

if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
fi
if ! diff -q <(grep -v '^#' "$REQUIREMENTS") <("$VENV/bin/pip" freeze) >/dev/null; then
    log "installing $REQUIREMENTS"
    "$VENV/bin/pip" install --quiet -r "$REQUIREMENTS"
fi

log "building the sweep_bench example (release)"
cargo build --release --quiet -p regimen-sweep --example sweep_bench
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

mkdir -p "$BENCH_DIR/out"
exec "$VENV/bin/python" "$BENCH_DIR/sweep_bench.py" \
    --regimen "$TARGET/release/examples/sweep_bench" --out "$BENCH_DIR/out" "$@"
