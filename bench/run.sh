#!/usr/bin/env bash
# Training-throughput benchmark: Regimen vs a bare Burn loop vs PyTorch, same machine,
# same thread count, one run.
#
#   bench/run.sh [--threads T] [--repeat N] [--models mlp,cnn,resnet] [--quick]
#
#   --threads T   intra-op threads for every implementation (default: nproc)
#   --repeat N    run every (model, impl) N times, interleaved; the table shows the median
#   --models L    comma-separated subset of mlp,cnn,resnet
#   --quick       fewer steps (smoke test; numbers are noisier)
#   --wait-idle S before each measurement wait up to S seconds for the machine to be idle
#                 (other processes using < 10% CPU); the busy level seen is logged either way.
#                 PyTorch's OpenMP threads spin at barriers and collapse when the cores are
#                 shared (measured 2-3x slower while a cargo build ran), so run on a quiet box.
#
# Environment:
#   TORCH_VERSION      torch pinned from PyPI into bench/.venv (default below)
#   CARGO_TARGET_DIR   where bench/burn-bare is built (default: target/bench-bare)
#   REGIMEN_TARGET_DIR where regimen-bench is built (default: target)
#   REGIMEN_BENCH      Regimen's side (default: target/release/regimen-bench, built here), run
#                      with the same arguments as the others:
#                        --model M --threads T --warmup W --steps S --seed N
#                      and printing the same JSON line with "impl":"regimen".
#   MLP_WARMUP MLP_STEPS CNN_WARMUP CNN_STEPS RESNET_WARMUP RESNET_STEPS   override the step counts
#
# Raw JSON lines go to bench/out/train_throughput.jsonl.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
cd "$ROOT"

TORCH_VERSION="${TORCH_VERSION:-2.15.0}"
THREADS="$(nproc)"
REPEAT=1
MODELS="mlp,cnn,resnet"
QUICK=0
WAIT_IDLE=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --threads) THREADS="$2"; shift 2 ;;
        --repeat) REPEAT="$2"; shift 2 ;;
        --models) MODELS="$2"; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --wait-idle) WAIT_IDLE="$2"; shift 2 ;;
        -h|--help) sed -n '2,26p' "$BENCH_DIR/run.sh"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

if [[ $QUICK == 1 ]]; then
    : "${MLP_WARMUP:=3}" "${MLP_STEPS:=20}" "${CNN_WARMUP:=2}" "${CNN_STEPS:=5}" "${RESNET_WARMUP:=1}" "${RESNET_STEPS:=3}"
else
    : "${MLP_WARMUP:=20}" "${MLP_STEPS:=200}" "${CNN_WARMUP:=5}" "${CNN_STEPS:=40}" "${RESNET_WARMUP:=3}" "${RESNET_STEPS:=20}"
fi
SEED=42

log() { echo "[bench] $*" >&2; }

source "$BENCH_DIR/quiet.sh"

# ---------------------------------------------------------------------------------------------
# 1. PyTorch from PyPI into bench/.venv
# ---------------------------------------------------------------------------------------------
# PyPI has no CPU-only torch wheel for Linux x86_64 (the "+cpu" builds are only on PyTorch's
# own index, which is not reachable here). The PyPI wheel links libtorch_cpu.so against
# libcudart/libcupti, so `--no-deps` does not even import; the full install (torch + the
# nvidia-*/cuda-toolkit wheels + triton) is ~5.3 GB on disk and runs fine on a GPU-less box.
VENV="$BENCH_DIR/.venv"
PY="$VENV/bin/python"
if [[ ! -x "$PY" ]]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
fi
if ! "$PY" -c "import sys, importlib.metadata as m; sys.exit(m.version('torch') != '$TORCH_VERSION')" 2>/dev/null; then
    log "installing torch==$TORCH_VERSION from PyPI into $VENV (several GB, a few minutes)"
    t0=$SECONDS
    "$PY" -m pip install --quiet --disable-pip-version-check --no-cache-dir "torch==$TORCH_VERSION"
    log "torch installed in $((SECONDS - t0)) s; venv size $(du -sh "$VENV" | cut -f1)"
fi

# ---------------------------------------------------------------------------------------------
# 2. Bare Burn loop (standalone package, not part of the workspace)
# ---------------------------------------------------------------------------------------------
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/bench-bare}"
log "building bench/burn-bare (release) into $CARGO_TARGET_DIR"
cargo build --release --quiet --manifest-path "$BENCH_DIR/burn-bare/Cargo.toml"
BURN_BARE="$CARGO_TARGET_DIR/release/burn-bare-bench"

log "building regimen-bench (release)"
REGIMEN_TARGET_DIR="${REGIMEN_TARGET_DIR:-$ROOT/target}"
CARGO_TARGET_DIR="$REGIMEN_TARGET_DIR" cargo build --release --quiet -p regimen-bench
REGIMEN_BENCH="${REGIMEN_BENCH:-$REGIMEN_TARGET_DIR/release/regimen-bench}"
IMPLS=(pytorch burn-bare burn-bare-tuned regimen)

# ---------------------------------------------------------------------------------------------
# 3. Run: same thread count for everyone
# ---------------------------------------------------------------------------------------------
# Flex (and gemm inside it) use rayon's global pool: RAYON_NUM_THREADS. PyTorch gets
# torch.set_num_threads(T) from --threads; OMP/MKL variables are set too so no library
# spawns more threads than T behind its back.
export RAYON_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"

OUT_DIR="$BENCH_DIR/out"
mkdir -p "$OUT_DIR"
JSONL="$OUT_DIR/train_throughput.jsonl"
: > "$JSONL"

run_impl() { # impl model warmup steps
    local impl="$1" model="$2" warmup="$3" steps="$4"
    local args=(--model "$model" --threads "$THREADS" --warmup "$warmup" --steps "$steps" --seed "$SEED")
    case "$impl" in
        pytorch) "$PY" "$BENCH_DIR/pytorch_train.py" "${args[@]}" ;;
        burn-bare) "$BURN_BARE" "${args[@]}" ;;
        # The same bare loop with glibc's allocator set as Regimen sets it
        # (regimen_train::system::keep_freed_memory): the baseline for Regimen's overhead.
        burn-bare-tuned)
            GLIBC_TUNABLES="glibc.malloc.mmap_threshold=33554432:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647:glibc.malloc.arena_max=1" \
                "$BURN_BARE" "${args[@]}" | sed 's/"impl":"burn-bare"/"impl":"burn-bare-tuned"/' ;;
        regimen) "$REGIMEN_BENCH" "${args[@]}" ;;
    esac
}

IFS=',' read -r -a MODEL_LIST <<< "$MODELS"
for model in "${MODEL_LIST[@]}"; do
    case "$model" in
        mlp) warmup=$MLP_WARMUP steps=$MLP_STEPS ;;
        cnn) warmup=$CNN_WARMUP steps=$CNN_STEPS ;;
        resnet) warmup=$RESNET_WARMUP steps=$RESNET_STEPS ;;
        *) echo "unknown model: $model" >&2; exit 2 ;;
    esac
    for ((rep = 1; rep <= REPEAT; rep++)); do
        for impl in "${IMPLS[@]}"; do
            busy="$(settle)"
            log "$model / $impl (run $rep/$REPEAT, $THREADS threads, $warmup warm-up + $steps timed steps; CPU busy before: $busy%)"
            ((busy < 10)) || log "warning: machine busy ($busy% CPU) before this run; numbers will be noisy"
            line="$(run_impl "$impl" "$model" "$warmup" "$steps" | grep '^{' | tail -n 1)"
            if [[ -z "$line" ]]; then
                echo "$impl printed no JSON line for $model" >&2
                exit 1
            fi
            echo "$line" >> "$JSONL"
        done
    done
done

# ---------------------------------------------------------------------------------------------
# 4. Table
# ---------------------------------------------------------------------------------------------
python3 - "$JSONL" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault((r["model"], r["impl"]), []).append(r["samples_per_sec"])
# Best of the repeats: interference from other processes only ever slows a run down.
best = {k: max(v) for k, v in by.items()}
med = {k: statistics.median(v) for k, v in by.items()}
order = ["pytorch", "burn-bare", "burn-bare-tuned", "regimen"]
threads = sorted({r["threads"] for r in rows})
torch_v = next((r.get("torch") for r in rows if r["impl"] == "pytorch"), "?")
n = max(len(v) for v in by.values())
print(f"\nTraining throughput (threads={','.join(map(str, threads))}, torch {torch_v}, "
      f"best of {n} run(s); ratios use the best)\n")
hdr = (f"{'model':<6} {'impl':<16} {'samples/s':>10} {'median':>10} {'vs pytorch':>11} "
       f"{'vs burn-bare':>13} {'overhead vs tuned bare':>23}")
print(hdr)
print("-" * len(hdr))
for model in dict.fromkeys(r["model"] for r in rows):
    pt, bb = best.get((model, "pytorch")), best.get((model, "burn-bare"))
    tuned = best.get((model, "burn-bare-tuned"))
    for impl in order:
        s = best.get((model, impl))
        if s is None:
            continue
        vs_pt = f"{s / pt:.3f}x" if pt else "-"
        vs_bb = f"{s / bb:.3f}x" if bb else "-"
        # Extra time per sample that Regimen adds on top of the bare Burn loop with the same allocator.
        ovh = f"{(tuned / s - 1) * 100:+.1f}%" if impl == "regimen" and tuned else ""
        print(f"{model:<6} {impl:<16} {s:>10.1f} {med[(model, impl)]:>10.1f} {vs_pt:>11} {vs_bb:>13} {ovh:>23}")
print(f"\nraw: {sys.argv[1]}")
EOF
