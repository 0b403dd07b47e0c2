#!/usr/bin/env bash
# Regimen on an NVIDIA GPU, in one call: build with `--features cuda` from the registries alone,
# train the quickstart on `--device cuda`, and measure training throughput against PyTorch CUDA on
# the same models as bench/run.sh (MLP, CNN, ResNet).
#
#   bench/gpu.sh [--device cuda:0] [--repeat 3] [--skip-build] [--bin-dir DIR] [--out DIR]
#
# Needs: an NVIDIA driver (libcuda) and NVRTC (libnvrtc, from the CUDA toolkit or PyPI's
# nvidia-cuda-nvrtc; found on its own under /usr/local/cuda* and in python3's site-packages), and,
# for the build, a C++ compiler and zlib/zstd headers (Debian: g++ zlib1g-dev libzstd-dev).
# Everything else comes from crates.io and PyPI:
#   - LLVM for cubecl-cuda from PyPI (.ci/cuda-llvm.sh), not from the bundler's GitHub download;
#   - PyTorch with CUDA: the `python3` on the PATH when it has one (set REGIMEN_BENCH_PYTHON to
#     choose another), else torch==$TORCH_VERSION from PyPI (its Linux wheels are the CUDA
#     build) into bench/.venv.
# --skip-build uses the binaries already built (in --bin-dir, default target/release), built here
# with this script or copied from a machine that built them, so a GPU machine without network
# access needs no compiler.
#
# Output (in --out, default bench/out): gpu.jsonl (raw lines), gpu-quickstart.json and
# gpu-quickstart-test.json, and a table on stdout; the quickstart's run store goes to a temporary
# folder (set STORE to keep it elsewhere).
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
cd "$ROOT"
DEVICE="cuda:0"; REPEAT=3; BUILD=1
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"; BIN_DIR="$TARGET/release"; OUT="$BENCH_DIR/out"
TORCH_VERSION="${TORCH_VERSION:-2.15.0}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --device) DEVICE="$2"; shift 2 ;;
        --repeat) REPEAT="$2"; shift 2 ;;
        --skip-build) BUILD=0; shift ;;
        --bin-dir) BIN_DIR="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
log() { echo "[gpu] $*" >&2; }
mkdir -p "$OUT"; OUT="$(cd "$OUT" && pwd)"
JSONL="$OUT/gpu.jsonl"; : > "$JSONL"
REGIMEN="$BIN_DIR/regimen"; BENCH="$BIN_DIR/regimen-bench"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2 \
    || { echo "no NVIDIA GPU or driver found (nvidia-smi failed)" >&2; exit 1; }

if [[ $BUILD == 1 ]]; then
    log "LLVM for cubecl-cuda from PyPI: $(bash .ci/cuda-llvm.sh)"
    log "building regimen and regimen-bench with --features cuda (release)"
    cargo build --release -p regimen-cli -p regimen-bench --features regimen-cli/cuda,regimen-bench/cuda
fi

# cubecl-cuda loads NVRTC at run time by name; put the first one found on the library path.
if ! ldconfig -p 2>/dev/null | grep -q 'libnvrtc\.so'; then
    NVRTC="$( { [[ -n "${CUDA_PATH:-}" ]] && echo "$CUDA_PATH"; ls -d /usr/local/cuda* /opt/cuda 2>/dev/null;
                python3 -c 'import site; print("\n".join(site.getsitepackages()))' 2>/dev/null | sed 's|$|/nvidia|'; } \
              | while read -r d; do find "$d" -name 'libnvrtc.so*' 2>/dev/null; done | head -n 1 || true)"
    [[ -n "$NVRTC" ]] || { echo "libnvrtc not found: install the CUDA toolkit or pip's nvidia-cuda-nvrtc" >&2; exit 1; }
    export LD_LIBRARY_PATH="$(dirname "$NVRTC")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    log "NVRTC: $NVRTC"
fi
# cubecl-cuda compiles its kernels with NVRTC against the toolkit's headers (CUDA_PATH, else
# /usr/local/cuda).
if [[ -z "${CUDA_PATH:-}" && ! -d /usr/local/cuda ]] && command -v nvcc >/dev/null; then
    export CUDA_PATH="$(dirname "$(dirname "$(command -v nvcc)")")"
fi

PY="${REGIMEN_BENCH_PYTHON:-$BENCH_DIR/.venv/bin/python}"
if [[ -z "${REGIMEN_BENCH_PYTHON:-}" ]] && python3 -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
    PY="$(command -v python3)"
elif [[ -z "${REGIMEN_BENCH_PYTHON:-}" ]] && ! "$PY" -c "import sys, importlib.metadata as m; sys.exit(m.version('torch') != '$TORCH_VERSION')" 2>/dev/null; then
    log "installing torch==$TORCH_VERSION from PyPI into bench/.venv"
    python3 -m venv "$BENCH_DIR/.venv"
    "$PY" -m pip install --quiet --disable-pip-version-check "torch==$TORCH_VERSION"
fi
"$PY" -c "import torch; assert torch.cuda.is_available(), 'PyTorch sees no CUDA device'"

# 1. The quickstart on the GPU: time, accuracy, and the test split.
STORE="${STORE:-$(mktemp -d)/gpu-store}"
log "quickstart: regimen train --device $DEVICE (store: $STORE)"
started=$EPOCHREALTIME
"$REGIMEN" train --device "$DEVICE" --store "$STORE" --json > "$OUT/gpu-quickstart.json"
seconds=$("$PY" -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$started" "$EPOCHREALTIME")
RUN_ID="$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['run_id'])" "$OUT/gpu-quickstart.json")"
"$REGIMEN" eval "$RUN_ID" --split test --store "$STORE" --json > "$OUT/gpu-quickstart-test.json"
"$PY" - "$OUT/gpu-quickstart.json" "$OUT/gpu-quickstart-test.json" "$JSONL" "$seconds" <<'PY'
import json, sys
run, test = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
line = {"kind": "quickstart", "wall_seconds": float(sys.argv[4]), "epochs": run["epochs"],
        "status": run["status"], "best": run["best"], "test": test}
open(sys.argv[3], "a").write(json.dumps(line) + "\n")
print(f"quickstart on the GPU: {run['epochs']} epochs in {float(sys.argv[4]):.1f} s (wall, with start-up), "
      f"best val.acc {run['best'].get('val.acc')}")
PY

# 2. Throughput, interleaved, against PyTorch CUDA on the same models and batch sizes.
for model in mlp cnn resnet; do
    case "$model" in mlp) w=20 s=200 ;; cnn) w=10 s=100 ;; resnet) w=5 s=50 ;; esac
    for ((rep = 1; rep <= REPEAT; rep++)); do
        log "$model run $rep/$REPEAT"
        (cd "$(mktemp -d)" && "$BENCH" --model "$model" --device "$DEVICE" --warmup "$w" --steps "$s") \
            | grep '^{' | tail -n 1 >> "$JSONL" || log "regimen-bench --model $model failed"
        "$PY" "$BENCH_DIR/pytorch_train.py" --model "$model" --device "$DEVICE" --warmup "$w" --steps "$s" \
            | grep '^{' | tail -n 1 >> "$JSONL" || log "pytorch_train.py --model $model failed"
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
