#!/usr/bin/env bash
# Profiling companion of run.sh (run run.sh once first: it creates bench/.venv and builds
# bench/burn-bare). Writes bench/out/profile.jsonl with, for PyTorch and bare Burn:
#   --mode phases  per-step forward / loss read / backward / (grads) / optimizer time
#   --mode layers  each layer alone: forward, and forward + sum().backward()
# and, with the count-alloc build, heap allocations per training step of the bare Burn loop.
#
#   bench/profile.sh [--threads T] [--wait-idle S]   (options as in run.sh)
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
THREADS="$(nproc)"; WAIT_IDLE=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --threads) THREADS="$2"; shift 2 ;;
        --wait-idle) WAIT_IDLE="$2"; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
export RAYON_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/bench-bare}"
PY="$BENCH_DIR/.venv/bin/python"
MANIFEST="$BENCH_DIR/burn-bare/Cargo.toml"
BIN="$CARGO_TARGET_DIR/release/burn-bare-bench"

source "$BENCH_DIR/quiet.sh"
note_busy() { echo "[profile] CPU busy before run: $(settle)%" >&2; }

OUT="$BENCH_DIR/out/profile.jsonl"
mkdir -p "$BENCH_DIR/out"; : > "$OUT"

# Allocation counts: build with the counting allocator, keep a copy, rebuild the plain binary.
cargo build --release --quiet --manifest-path "$MANIFEST" --features count-alloc
cp "$BIN" "$CARGO_TARGET_DIR/release/burn-bare-bench-count-alloc"
cargo build --release --quiet --manifest-path "$MANIFEST"
"$CARGO_TARGET_DIR/release/burn-bare-bench-count-alloc" --mode phases --threads "$THREADS" \
    --model mlp,cnn --warmup 3 --steps 10 | sed 's/"impl":"burn-bare"/"impl":"burn-bare-count-alloc"/' >> "$OUT"

for model in mlp cnn; do
    if [[ $model == mlp ]]; then steps=(--warmup 20 --steps 100); else steps=(--warmup 5 --steps 20); fi
    note_busy; "$PY" "$BENCH_DIR/pytorch_train.py" --mode phases --threads "$THREADS" --model $model "${steps[@]}" >> "$OUT"
    note_busy; "$BIN" --mode phases --threads "$THREADS" --model $model "${steps[@]}" >> "$OUT"
    # Same loop with glibc told never to trim/unmap freed memory: isolates the page-fault cost
    # of Flex's allocate-per-op pattern (see PROFILE_NOTES.md).
    note_busy; GLIBC_TUNABLES=glibc.malloc.trim_threshold=4000000000:glibc.malloc.mmap_threshold=4000000000 \
        "$BIN" --mode phases --threads "$THREADS" --model $model "${steps[@]}" \
        | sed 's/"impl":"burn-bare"/"impl":"burn-bare+no-trim-malloc"/' >> "$OUT"
    note_busy; "$PY" "$BENCH_DIR/pytorch_train.py" --mode layers --threads "$THREADS" --model $model --reps 20 >> "$OUT"
    note_busy; "$BIN" --mode layers --threads "$THREADS" --model $model --reps 20 >> "$OUT"
done
echo "[profile] wrote $OUT" >&2
