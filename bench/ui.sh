#!/usr/bin/env bash
# Dashboard benchmark: `regimen ui` vs MLflow 3.17.2's server vs TensorBoard, same data, same machine.
#
#   bench/ui.sh [--runs N] [--points P] [--repeat R] [--page-repeat K] [--idle S] [--idle-repeat K]
#               [--tb-cap SECONDS] [--skip-regimen] [--skip-mlflow] [--skip-tensorboard]
#               [--skip-tensorboard-all] [--cache DIR] [--out DIR]
#
#   bench/ui.sh                                  # full size: 10,000 runs, a 1,000,000-point series
#   bench/ui.sh --runs 1000 --points 100000      # a quick try (MLflow loads in about a minute)
#
#   (a) runs-table API: first page of 200 runs sorted by val.acc, median of R requests (default 10);
#   (b) page-ready in headless Chromium: navigation start to the runs table showing rows, median of
#       K first-visit loads (default 5);
#   (a) and (b) again after S seconds without requests (default 10.5), median of --idle-repeat
#       (default 5);
#   (c) curve API for the P-point series at 2,000 buckets, whole range and zoomed, and whether the
#       planted spike is in the response.
#
# The data is generated once by crates/regimen-bench's `ui-store` and cached, with MLflow's loaded
# database (loading 10,000 runs and 1M points took 7 minutes on 2 cores) and TensorBoard's log folders,
# under bench/out/ui-cache/runs<N>-points<P>-seed<S>/; delete that folder to start over.
#
# Environment:
#   CARGO_TARGET_DIR   where the binaries are built (default: target); dev profile
#
# bench/ui-requirements.txt pins mlflow 3.17.2, tensorboard 2.21.0 and every dependency; they are
# installed into bench/.venv-ui. Page loads use Debian's /usr/bin/chromium (override with
# CHROMIUM) through the playwright-core in crates/regimen-ui/web/node_modules (`npm ci` there).
#
# Raw JSON lines go to bench/out/ui.jsonl (one per measurement, every sample).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
cd "$ROOT"

VENV="$BENCH_DIR/.venv-ui"
REQUIREMENTS="$BENCH_DIR/ui-requirements.txt"

log() { echo "[ui-bench] $*" >&2; }

if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
    # Keep the environment out of git status.
    echo '*' > "$VENV/.gitignore"
fi
if ! diff -q <(grep -v '^#' "$REQUIREMENTS") <("$VENV/bin/pip" freeze) >/dev/null; then
    log "installing $REQUIREMENTS"
    "$VENV/bin/pip" install --quiet -r "$REQUIREMENTS"
fi
if [[ ! -d crates/regimen-ui/web/node_modules/playwright-core ]]; then
    log "installing the dashboard's node modules (playwright-core drives Chromium)"
    (cd crates/regimen-ui/web && npm ci --silent)
fi
if [[ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]]; then
    log "no ${CHROMIUM:-/usr/bin/chromium}: install Debian's chromium package (page-ready times need it)"
    exit 1
fi

log "building regimen and ui-store (dev profile)"
cargo build --quiet -p regimen-cli -p regimen-bench --bin regimen --bin ui-store
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

mkdir -p "$BENCH_DIR/out"
exec "$VENV/bin/python" "$BENCH_DIR/ui_bench.py" \
    --regimen "$TARGET/debug/regimen" --ui-store "$TARGET/debug/ui-store" --out "$BENCH_DIR/out" "$@"
