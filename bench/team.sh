#!/usr/bin/env bash
# Team-store benchmark: the embedded SQLite store against the PostgreSQL store, and sweep workers
# claiming trials on PostgreSQL against Optuna 5.0's RDB storage on the same PostgreSQL.
#
#   bench/team.sh [--points P] [--runs N] [--workers W] [--seconds S]
#
#   (a) ingest: one writer, P metric points (default 2,000,000) in batches of 10,000; points/s;
#   (b) listing: N finished runs (default 10,000), then a `regimen runs`-style query (filter on a
#       hyperparameter and the status, sort by best val.acc, first 20), median of 5; ms;
#   (c) claims: W workers (default 8) for S seconds (default 10): read the sweep's changes, claim
#       a trial, report it complete; trials/s. Optuna's workers ask() and tell() a trial each loop
#       with its RandomSampler, so that the storage, not a sampler, is measured.
#
# PostgreSQL is a throwaway cluster of Debian's server with its default durability (fsync on),
# started by .ci/postgres.sh; SQLite is in bench/out/team/ with Regimen's settings (synchronous=FULL).
# bench/team-requirements.txt pins optuna 5.0.0, psycopg2-binary and their dependencies, installed
# into bench/.venv-team. Raw JSON lines go to bench/out/team.jsonl.
#
# Environment: CARGO_TARGET_DIR (default: target); the dev profile, which is optimized.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
cd "$ROOT"
POINTS=2000000 RUNS=10000 WORKERS=8 SECONDS_=10
while [ $# -gt 0 ]; do
    case "$1" in
    --points) POINTS="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --workers) WORKERS="$2"; shift 2 ;;
    --seconds) SECONDS_="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
log() { echo "[team-bench] $*" >&2; }

VENV="$BENCH_DIR/.venv-team"
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$BENCH_DIR/team-requirements.txt" >&2

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
log "building team-store"
cargo build -q -p regimen-bench --bin team-store >&2

OUT="$BENCH_DIR/out"
mkdir -p "$OUT"
work="$(mktemp -d /tmp/regimen-team-bench.XXXXXX)"
chmod 755 "$work"  # the cluster belongs to the postgres user when run as root
trap 'bash .ci/postgres.sh stop "$work/pg"; rm -rf "$work"' EXIT
server="$(bash .ci/postgres.sh start "$work/pg" durable)"
base="${server%/*}"
psql "$server" -qc "CREATE DATABASE regimen_bench" -c "CREATE DATABASE optuna_bench"

log "Regimen: SQLite and PostgreSQL ($POINTS points, $RUNS runs, $WORKERS workers for $SECONDS_ s)"
results="$work/results.jsonl"
"$TARGET/debug/team-store" --sqlite "$work/sqlite" --postgres "$base/regimen_bench" \
    --points "$POINTS" --runs "$RUNS" --workers "$WORKERS" --seconds "$SECONDS_" | tee "$results" >&2
log "Optuna: RDB storage on the same PostgreSQL"
"$VENV/bin/python" "$BENCH_DIR/team_optuna.py" --url "postgresql+psycopg2://${base#postgres://}/optuna_bench" \
    --workers "$WORKERS" --seconds "$SECONDS_" | tee -a "$results" >&2
commit="$(git rev-parse --short HEAD)"
stamp="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
while read -r line; do
    echo "{\"commit\":\"$commit\",\"at\":\"$stamp\",\"result\":$line}"
done <"$results" >>"$OUT/team.jsonl"

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
get = lambda measure, backend: next(r for r in rows if r["measure"] == measure and r["backend"].startswith(backend))
ing = {b: get("ingest", b)["points_per_s"] for b in ("sqlite", "postgres")}
lst = {b: get("listing", b) for b in ("sqlite", "postgres")}
clm = {b: get("claims", b) for b in ("sqlite", "postgres", "optuna")}
print(f"{'':32} {'SQLite':>14} {'PostgreSQL':>14}")
print(f"{'ingest, points/s':32} {ing['sqlite']:>14,.0f} {ing['postgres']:>14,.0f}")
print(f"{'runs written, runs/s':32} {lst['sqlite']['runs_written_per_s']:>14,.0f} {lst['postgres']['runs_written_per_s']:>14,.0f}")
print(f"{'runs query at %d runs, ms' % lst['sqlite']['runs']:32} {lst['sqlite']['query_ms']:>14.1f} {lst['postgres']['query_ms']:>14.1f}")
print()
w = clm["postgres"]["workers"]
print(f"trial claims, {w} workers, trials/s")
print(f"  Regimen on SQLite              {clm['sqlite']['trials_per_s']:>10,.0f}")
print(f"  Regimen on PostgreSQL          {clm['postgres']['trials_per_s']:>10,.0f}")
print(f"  {clm['optuna']['backend']:30} {clm['optuna']['trials_per_s']:>10,.0f}")
print(f"  ratio Regimen / Optuna on PostgreSQL: {clm['postgres']['trials_per_s'] / clm['optuna']['trials_per_s']:.1f}x")
PY
