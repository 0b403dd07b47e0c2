#!/usr/bin/env bash
# Regimen on an NVIDIA GPU, in one call: build with `--features cuda` from the registries alone,
# train the quickstart on `--device cuda`, and measure training throughput against PyTorch CUDA on
# the same models as bench/run.sh (MLP, CNN, ResNet).
#
#   bench/gpu.sh [--device cuda:0] [--repeat 3] [--skip-build]
#
# Needs: an NVIDIA driver (libcuda) and, for the build, a C++ compiler and zlib/zstd headers
# (Debian: g++ zlib1g-dev libzstd-dev). Everything else comes from crates.io and PyPI:
#   - LLVM for cubecl-cuda from PyPI (.ci/cuda-llvm.sh), not from the bundler's GitHub download;
#   - torch==$TORCH_VERSION from PyPI (its Linux wheels are the CUDA build) into bench/.venv.
# --skip-build uses the binaries already in target/release (built here with this script, or
# copied from a machine that built them).
#
# Output: bench/out/gpu.jsonl (raw lines) and a table on stdout; the quickstart's run goes to
# bench/out/gpu-store.
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
cd "$ROOT"
DEVICE="cuda:0"; REPEAT=3; BUILD=1
TORCH_VERSION="${TORCH_VERSION:-2.15.0}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --device) DEVICE="$2"; shift 2 ;;
        --repeat) REPEAT="$2"; shift 2 ;;
        --skip-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
log() { echo "[gpu] $*" >&2; }
OUT="$BENCH_DIR/out"; mkdir -p "$OUT"
JSONL="$OUT/gpu.jsonl"; : > "$JSONL"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
REGIMEN="$TARGET/release/regimen"; BENCH="$TARGET/release/regimen-bench"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2 \
    || { echo "no NVIDIA GPU or driver found (nvidia-smi failed)" >&2; exit 1; }

if [[ $BUILD == 1 ]]; then
    log "LLVM for cubecl-cuda from PyPI: $(bash .ci/cuda-llvm.sh)"
    log "building regimen and regimen-bench with --features cuda (release)"
    cargo build --release -p regimen-cli -p regimen-bench --features regimen-cli/cuda,regimen-bench/cuda
fi

PY="$BENCH_DIR/.venv/bin/python"
if ! "$PY" -c "import sys, importlib.metadata as m; sys.exit(m.version('torch') != '$TORCH_VERSION')" 2>/dev/null; then
    log "installing torch==$TORCH_VERSION from PyPI into bench/.venv"
    python3 -m venv "$BENCH_DIR/.venv"
    "$PY" -m pip install --quiet --disable-pip-version-check "torch==$TORCH_VERSION"
fi
"$PY" -c "import torch; assert torch.cuda.is_available(), 'PyTorch sees no CUDA device'"

# 1. The quickstart on the GPU: time, accuracy, and the test split.
STORE="$OUT/gpu-store"; rm -rf "$STORE"
log "quickstart: regimen train --device $DEVICE"
"$REGIMEN" train --device "$DEVICE" --store "$STORE" --json > "$OUT/gpu-quickstart.json"
RUN_ID="$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['run_id'])" "$OUT/gpu-quickstart.json")"
"$REGIMEN" eval "$RUN_ID" --split test --store "$STORE" --json > "$OUT/gpu-quickstart-test.json"
"$PY" - "$OUT/gpu-quickstart.json" "$OUT/gpu-quickstart-test.json" "$JSONL" <<'PY'
import json, sys
run, test = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
line = {"kind": "quickstart", "seconds": run["seconds"], "val_acc": run["best"].get("val.acc"),
        "test": test.get("metrics", test)}
open(sys.argv[3], "a").write(json.dumps(line) + "\n")
print(f"quickstart on the GPU: {run['epochs']} epochs in {run['seconds']:.1f} s, "
      f"best val.acc {run['best'].get('val.acc')}")
PY

# 2. Throughput, interleaved, against PyTorch CUDA on the same models and batch sizes.
for model in mlp cnn resnet; do
    case "$model" in mlp) w=20 s=200 ;; cnn) w=10 s=100 ;; resnet) w=5 s=50 ;; esac
    for ((rep = 1; rep <= REPEAT; rep++)); do
        log "$model run $rep/$REPEAT"
        "$BENCH" --model "$model" --device "$DEVICE" --warmup "$w" --steps "$s" | grep '^{' | tail -n 1 >> "$JSONL"
        "$PY" "$BENCH_DIR/pytorch_train.py" --model "$model" --device "$DEVICE" --warmup "$w" --steps "$s" \
            | grep '^{' | tail -n 1 >> "$JSONL"
    done
done

"$PY" - "$JSONL" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
best = {}
for r in rows:
    if "impl" in r:
        key = (r["model"], r["impl"])
        best[key] = max(best.get(key, 0), r["samples_per_sec"])
print(f"\n{'model':<7} {'impl':<8} {'samples/s':>11} {'vs pytorch':>11}")
for model in ("mlp", "cnn", "resnet"):
    pt = best.get((model, "pytorch"))
    for impl in ("pytorch", "regimen"):
        s = best.get((model, impl))
        if s:
            print(f"{model:<7} {impl:<8} {s:>11.1f} {s / pt if pt else float('nan'):>10.2f}x")
print(f"\nraw: {sys.argv[1]}")
PY
