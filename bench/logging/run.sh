#!/usr/bin/env bash
# Logging benchmark: 1,000,000 scalar points (10 keys x 100,000 steps) from a training-style loop,
# through Regimen's run store (StoreSink over SQLite), MLflow's Python client (log_batch to its
# default local store) and TensorBoard (PyTorch's SummaryWriter.add_scalar), with ratios.
#
#   bench/logging/run.sh [--points N] [--repeat N] [--mlflow-measure N] [--tensorboard-measure N]
#                        [--wait-idle S] [--skip-python]
#
#   --points N               points each side logs, or is reported for (default 1000000)
#   --repeat N               Regimen repeats, fresh store each; the table shows the median (default 5)
#   --mlflow-measure N       points MLflow actually logs; its total is extrapolated linearly to
#                            --points and marked so (default 100000: MLflow logs a few thousand
#                            points a second, so the full million takes several minutes)
#   --tensorboard-measure N  the same for TensorBoard (default: --points)
#   --wait-idle S            before each measurement wait up to S seconds for the machine to be
#                            idle (see bench/quiet.sh); the busy level seen is logged either way
#   --skip-python            Regimen only (no virtual environment needed)
#
# Environment:
#   REGIMEN_LOGGING_BENCH  a prebuilt Regimen side (the `record` bench binary of regimen-store)
#                          instead of `cargo bench -p regimen-store --bench record`
#   MLFLOW_VERSION TENSORBOARD_VERSION   pinned into bench/.venv-logging (defaults below)
#
# PyTorch's SummaryWriter needs torch, which is ~5 GB from PyPI: rather than a second copy, the
# torch that bench/run.sh installs into bench/.venv is put on bench/.venv-logging's path with a
# .pth file (same Python; the logging venv's own packages come first). Run bench/run.sh once, or
# pass --skip-python.
#
# Raw JSON lines go to bench/out/logging.jsonl; the table is printed at the end.
set -euo pipefail

LOGGING_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH_DIR="$(cd "$LOGGING_DIR/.." && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
cd "$ROOT"

MLFLOW_VERSION="${MLFLOW_VERSION:-3.17.2}"
TENSORBOARD_VERSION="${TENSORBOARD_VERSION:-2.21.0}"
POINTS=1000000
REPEAT=5
MLFLOW_MEASURE=100000
TENSORBOARD_MEASURE=""
WAIT_IDLE=0
SKIP_PYTHON=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --points) POINTS="$2"; shift 2 ;;
        --repeat) REPEAT="$2"; shift 2 ;;
        --mlflow-measure) MLFLOW_MEASURE="$2"; shift 2 ;;
        --tensorboard-measure) TENSORBOARD_MEASURE="$2"; shift 2 ;;
        --wait-idle) WAIT_IDLE="$2"; shift 2 ;;
        --skip-python) SKIP_PYTHON=1; shift ;;
        -h|--help) sed -n '2,29p' "$LOGGING_DIR/run.sh"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
TENSORBOARD_MEASURE="${TENSORBOARD_MEASURE:-$POINTS}"
((MLFLOW_MEASURE > POINTS)) && MLFLOW_MEASURE="$POINTS"
((TENSORBOARD_MEASURE > POINTS)) && TENSORBOARD_MEASURE="$POINTS"

log() { echo "[logging-bench] $*" >&2; }

source "$BENCH_DIR/quiet.sh"

OUT="$BENCH_DIR/out/logging.jsonl"
mkdir -p "$(dirname "$OUT")"
: > "$OUT"

# ---------------------------------------------------------------------------------------------
# 1. Regimen
# ---------------------------------------------------------------------------------------------
regimen_args=(--json --repeat "$REPEAT" --points "$POINTS")
log "Regimen: $POINTS points, $REPEAT repeats (machine busy: $(settle)%)"
if [[ -n "${REGIMEN_LOGGING_BENCH:-}" ]]; then
    "$REGIMEN_LOGGING_BENCH" "${regimen_args[@]}" | grep '^{' >> "$OUT"
else
    cargo bench --quiet -p regimen-store --bench record -- "${regimen_args[@]}" | grep '^{' >> "$OUT"
fi

if [[ $SKIP_PYTHON == 0 ]]; then
    # -----------------------------------------------------------------------------------------
    # 2. bench/.venv-logging: pinned MLflow and TensorBoard, torch borrowed from bench/.venv
    # -----------------------------------------------------------------------------------------
    VENV="$BENCH_DIR/.venv-logging"
    PY="$VENV/bin/python"
    if [[ ! -x "$PY" ]]; then
        log "creating $VENV"
        python3 -m venv "$VENV"
    fi
    if ! "$PY" -c "import sys, importlib.metadata as m; sys.exit(m.version('mlflow') != '$MLFLOW_VERSION' or m.version('tensorboard') != '$TENSORBOARD_VERSION')" 2>/dev/null; then
        log "installing mlflow==$MLFLOW_VERSION tensorboard==$TENSORBOARD_VERSION into $VENV (about 900 MB)"
        "$PY" -m pip install --quiet --disable-pip-version-check --no-cache-dir "mlflow==$MLFLOW_VERSION" "tensorboard==$TENSORBOARD_VERSION"
    fi
    if ! "$PY" -c "import torch" 2>/dev/null; then
        TORCH_SITE="$("$BENCH_DIR/.venv/bin/python" -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))' 2>/dev/null || true)"
        if [[ -z "$TORCH_SITE" ]]; then
            echo "TensorBoard's side uses PyTorch's SummaryWriter and borrows torch from bench/.venv, which has none:" >&2
            echo "run bench/run.sh once (it installs torch there), or pass --skip-python" >&2
            exit 1
        fi
        "$PY" -c 'import site, sys; open(site.getsitepackages()[0] + "/zz-bench-torch.pth", "w").write(sys.argv[1] + "\n")' "$TORCH_SITE"
        log "torch from $TORCH_SITE put on $VENV's path"
    fi

    # -----------------------------------------------------------------------------------------
    # 3. MLflow and TensorBoard
    # -----------------------------------------------------------------------------------------
    log "MLflow: $MLFLOW_MEASURE of $POINTS points (machine busy: $(settle)%)"
    (cd "$LOGGING_DIR" && "$PY" mlflow_log.py --points "$POINTS" --measure "$MLFLOW_MEASURE") | grep '^{' >> "$OUT"
    log "TensorBoard: $TENSORBOARD_MEASURE of $POINTS points (machine busy: $(settle)%)"
    (cd "$LOGGING_DIR" && "$PY" tensorboard_log.py --points "$POINTS" --measure "$TENSORBOARD_MEASURE") | grep '^{' >> "$OUT"
fi

python3 "$LOGGING_DIR/table.py" "$OUT"
