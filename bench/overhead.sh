#!/usr/bin/env bash
# What logging and live diagnosis cost a training step: Regimen's real loop (regimen-bench) run
# in interleaved pairs that differ in one setting only, median of the per-pair ratios.
#
#   bench/overhead.sh [--pairs N] [--models mlp,cnn] [--threads T] [--wait-idle S]
#
# Pairs, per model:
#   logging    --logging full (JSON-lines file + SQLite run store, the training loss at every
#              step, predictions on a fixed batch each epoch) vs --logging none (NullSink)
#   grad-norm  --grad-norm-every 100 (the default of `regimen train`) vs 0, both --logging none
#   grad-norm-every-10  the same with norms every 10 steps (ten times the default rate)
# The grad-norm pairs time the steps that compute norms along with those that do not, which
# is the cost a run pays. Targets: logging < 2%, grad norms < 3% of step time.
# Raw JSON lines go to bench/out/overhead.jsonl. REGIMEN_BENCH=PATH uses a prebuilt regimen-bench.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
cd "$ROOT"

PAIRS=9
MODELS="mlp,cnn"
THREADS="$(nproc)"
WAIT_IDLE=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --pairs) PAIRS="$2"; shift 2 ;;
        --models) MODELS="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --wait-idle) WAIT_IDLE="$2"; shift 2 ;;
        -h|--help) sed -n '2,17p' "$BENCH_DIR/overhead.sh"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
source "$BENCH_DIR/quiet.sh"
export RAYON_NUM_THREADS="$THREADS"

if [[ -z "${REGIMEN_BENCH:-}" ]]; then
    echo "[bench] building regimen-bench (release)" >&2
    cargo build --release --quiet -p regimen-bench
fi
BIN="${REGIMEN_BENCH:-$ROOT/target/release/regimen-bench}"
mkdir -p "$BENCH_DIR/out"
JSONL="$BENCH_DIR/out/overhead.jsonl"
: > "$JSONL"

measure() { # label model steps args...
    local label="$1" model="$2" warmup="$3" steps="$4"; shift 4
    settle > /dev/null
    "$BIN" --model "$model" --threads "$THREADS" --warmup "$warmup" --steps "$steps" "$@" \
        | grep '^{' | tail -n 1 | sed "s/^{/{\"label\":\"$label\",/" >> "$JSONL"
}

IFS=',' read -r -a MODEL_LIST <<< "$MODELS"
for model in "${MODEL_LIST[@]}"; do
    case "$model" in
        mlp) warmup=20 steps=300 ;;
        cnn) warmup=5 steps=60 ;;
        *) echo "unknown model: $model" >&2; exit 2 ;;
    esac
    for ((pair = 1; pair <= PAIRS; pair++)); do
        echo "[bench] $model pair $pair/$PAIRS" >&2
        # Alternate which side goes first so that drift cancels out.
        if ((pair % 2)); then order=(on off); else order=(off on); fi
        for side in "${order[@]}"; do
            if [[ $side == on ]]; then
                measure logging:on "$model" $warmup $steps --logging full --grad-norm-every 0
                measure grad:on "$model" $warmup $steps --logging none --grad-norm-every 100
                measure grad10:on "$model" $warmup $steps --logging none --grad-norm-every 10
            else
                measure logging:off "$model" $warmup $steps --logging none --grad-norm-every 0
            fi
        done
    done
done

python3 - "$JSONL" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
med = statistics.median
print("A/B: interleaved pairs, median of the per-pair step-time ratios (noisy: single runs vary by several %)")
print()
print("| model | what | off (samples/s) | on (samples/s) | step-time overhead | target |")
print("|---|---|---:|---:|---:|---|")
for model in dict.fromkeys(r["model"] for r in rows):
    of = lambda label: [r for r in rows if r["model"] == model and r["label"] == label]
    off = [r["samples_per_sec"] for r in of("logging:off")]
    for label, what, target in [("logging", "full logging (file + store, loss every step)", "< 2%"),
                                ("grad", "per-layer grad norms every 100 steps", "< 3%"),
                                ("grad10", "per-layer grad norms every 10 steps", "")]:
        on = [r["samples_per_sec"] for r in of(label + ":on")]
        ratios = [a / b - 1 for a, b in zip(off, on)]
        print(f"| {model} | {what} | {med(off):,.0f} | {med(on):,.0f} | {100 * med(ratios):+.2f}% | {target} |")
print()
print("Direct: the same runs, cost measured inside the process, as a share of the step time")
print()
print("| model | step ms | sink calls µs/step | store writer CPU µs/step | logging share | grad-norm call ms | share at every 100 | at every 10 |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for model in dict.fromkeys(r["model"] for r in rows):
    full = [r for r in rows if r["model"] == model and r["label"] == "logging:on"]
    off = [r for r in rows if r["model"] == model and r["label"] == "logging:off"]
    step = med([r["seconds"] / r["steps"] for r in off])
    sink = med([r["sink_seconds_per_step"] for r in full])
    writer = med([r["writer_cpu_seconds_per_step"] for r in full])
    grad = med([r["grad_norm_seconds_per_call"] for r in rows if r["model"] == model])
    print(f"| {model} | {1e3 * step:.2f} | {1e6 * sink:.1f} | {1e6 * writer:.1f} | {100 * (sink + writer) / step:.3f}% "
          f"| {1e3 * grad:.3f} | {100 * grad / (100 * step):.3f}% | {100 * grad / (10 * step):.3f}% |")
PY
