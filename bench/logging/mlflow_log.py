"""MLflow's side of the logging benchmark: `MlflowClient().log_batch` to the default local store.

    python mlflow_log.py [--points N] [--measure N]

Runs in a fresh temporary folder with no tracking URI set, so MLflow uses its default store:
in MLflow 3.x that is the SQLite database `./mlflow.db` (`sqlite:///mlflow.db`; older versions
and folders that already hold `./mlruns` use the file store). Creating the store (its migrations),
the experiment and the run happen before the clock starts.

The loop logs each step's points into a list of `Metric`s and sends it with `log_batch` when it
reaches 1000 metrics, MLflow's per-call maximum, as a training loop that batches would. `log_batch`
is synchronous (the default), so the hot-path cost per point and the sustained rate come from the
same clock; the run is then ended with `set_terminated`, included in the total.

`--measure N` logs only N points and extrapolates the total time to `--points` linearly: the line
printed says `"extrapolated": true`.
"""

import argparse
import os
import tempfile
import time

from workload import KEYS, folder_bytes, report, steps_for, value

MAX_METRICS_PER_BATCH = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000, help="points the table reports (default 1,000,000)")
    parser.add_argument("--measure", type=int, default=None, help="points actually logged (default: --points)")
    args = parser.parse_args()
    measured = steps_for(args.measure or args.points) * len(KEYS)

    with tempfile.TemporaryDirectory(prefix="regimen-bench-mlflow-") as workdir:
        os.chdir(workdir)
        try:
            run(args.points, measured, workdir)
        finally:
            os.chdir("/")


def run(points: int, measured: int, workdir: str) -> None:
    """Logs `measured` points with MLflow in the current folder and reports them."""
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient()
    store = mlflow.get_tracking_uri().replace(workdir + "/", "")
    experiment = client.create_experiment("logging-bench")
    run_id = client.create_run(experiment).info.run_id

    batch = []
    began = time.perf_counter()
    for step in range(measured // len(KEYS)):
        timestamp = int(time.time() * 1000)
        for k, key in enumerate(KEYS):
            batch.append(Metric(key, value(step, k), timestamp, step))
        if len(batch) + len(KEYS) > MAX_METRICS_PER_BATCH:
            client.log_batch(run_id, metrics=batch)
            batch = []
    if batch:
        client.log_batch(run_id, metrics=batch)
    logged = time.perf_counter()
    client.set_terminated(run_id)
    ended = time.perf_counter()

    report(
        "mlflow",
        f"{store} (MLflow {mlflow.__version__} default), log_batch of {MAX_METRICS_PER_BATCH}",
        points,
        measured,
        logged - began,
        ended - began,
        bytes=folder_bytes(workdir),
    )


if __name__ == "__main__":
    main()
