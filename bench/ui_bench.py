"""The dashboard benchmark's driver: `regimen ui` against MLflow 3.17.2's server and TensorBoard.

Run through `bench/ui.sh`, which installs the pinned peers and builds Regimen's side. Every tool
serves the same data, made by `crates/regimen-bench/src/bin/ui-store.rs`: N runs (10,000 by
default) with 12 parameters and 8 per-epoch series each, in five experiments, plus `long-run`,
whose `train.loss_step` has P points (1,000,000 by default) with one planted spike. The data and
what each peer loads from it are cached under `--cache` (one folder per N, P and seed), because
loading MLflow takes minutes; a rerun measures again without reloading.

- **Regimen**: the generator writes the store; `regimen ui --store ... --port 0`.
- **MLflow**: each run through `MlflowClient` on a SQLite store (`create_run`, `log_batch` with
  its params and metrics, `set_terminated`; the long series in batches of 1,000 points, the
  maximum), then `mlflow server --backend-store-uri sqlite:///... --host 127.0.0.1 --port ...`
  with its defaults otherwise.
- **TensorBoard**: the event files `regimen export --format tensorboard` writes, one folder per
  run, plus an hparams summary per run (its parameters, written with tensorboard's own protos) so
  that TensorBoard's runs table and hparams plugin have the same parameters as the others;
  `tensorboard --logdir ... --host 127.0.0.1 --port ...` with its defaults (which use its Rust
  data server, `--load_fast=auto`). The long run is served from a log folder of its own, and the
  N runs from another, loaded under a time cap (`--tb-cap`).

Measured, one tool at a time (only one server runs at any moment, on this 2-core machine):

(a) runs-table API: the first page of 200 runs of all experiments, sorted by validation accuracy
    (descending). Regimen: `GET /api/runs?offset=0&limit=200&fields=params.lr,metrics.val.acc
    &sort=-metrics.val.acc`. MLflow: `POST /ajax-api/2.0/mlflow/runs/search` with every
    experiment id, `max_results` 200 and `order_by ["metrics.`val.acc` DESC"]` (it returns every
    param, metric and tag of each run: it has no field selection). TensorBoard: the hparams
    plugin's `session_groups` (what its runs table asks for), sorted by `val.acc` descending,
    200 sessions with metrics.
(b) page-ready in headless Chromium (`bench/ui_page.mjs`): navigation start to the runs table
    showing rows, on a first visit (fresh browser context). Regimen: `/` until
    `body[data-ready=runs]` with `.tbody .row`. MLflow: its experiment-comparison page over every
    experiment (the same 10,001 runs; the runs table of a single experiment page asks the same
    search of fewer runs) until ag-grid shows a row with a run-name link. TensorBoard: its
    time-series dashboard until its runs table shows a row.
(c) curve API for the long series, whole range and a zoomed range (100,000 steps around the
    spike), and whether the planted spike is in the response. Regimen:
    `GET /api/runs/long-run/series?key=train.loss_step&buckets=2000` (first/min/max/last of each
    bucket). MLflow: `GET /ajax-api/2.0/mlflow/metrics/get-history-bulk-interval` with
    `max_results=2000` (what its charts use; first row of each of 2,000 equal buckets), and
    `get-history`, the whole history (1M points). TensorBoard:
    `GET /data/plugin/scalars/scalars?run=long-run&tag=train.loss_step` (its reservoir sample of
    1,000 points, the default; there is no range parameter, so no zoomed request).

Each API number is the median of `--repeat` requests after one warm-up request, on one
keep-alive connection, timed from sending the request to having read the whole body (parsing is
not timed). Page numbers are the median of `--page-repeat` loads after one warm-up load. The
"after idle" rows repeat the runs-table request and the page load `--idle-repeat` times, each
after `--idle` seconds (10.5) without requests: a person opening the page later, against a table
being scrolled or re-sorted (a server that kept its listing only for a while, as Regimen's did
before 9646228, reads it again). The same protocol runs on every tool.

Raw JSON lines (one per measurement, with every sample) go to OUT/ui.jsonl.
"""

import argparse
import datetime
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def log(message):
    print(f"[ui-bench] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# Plumbing: servers, HTTP, recording


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process in its own session, so that it and its workers are stopped together."""

    def __init__(self, command, log_path, env=None):
        self.log_path = log_path
        self.log_file = open(log_path, "w")
        self.process = subprocess.Popen(
            command, stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )

    def output(self):
        return Path(self.log_path).read_text(errors="replace")

    def alive(self):
        return self.process.poll() is None

    def stop(self):
        # Ctrl-C: `regimen ui` stops on SIGINT (its SIGTERM only asks a training run to stop), and
        # so do MLflow's and TensorBoard's servers.
        if self.alive():
            try:
                os.killpg(self.process.pid, signal.SIGINT)
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        self.log_file.close()


class Client:
    """One keep-alive HTTP connection; `request` returns (seconds, status, body bytes)."""

    def __init__(self, port, timeout=600):
        self.port, self.timeout = port, timeout
        self.connection = None

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        for attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                started = time.perf_counter()
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
                elapsed = time.perf_counter() - started
                if response.will_close:
                    self.connection.close()
                    self.connection = None
                return elapsed, response.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.connection.close()
                self.connection = None
                if attempt:
                    raise
            except Exception:
                # A connection that failed half-way cannot send again.
                self.connection.close()
                self.connection = None
                raise
        raise AssertionError("unreachable")

    def close(self):
        if self.connection is not None:
            self.connection.close()


def wait_until(check, timeout, what, server=None, interval=0.25):
    started = time.perf_counter()
    while True:
        try:
            value = check()
            if value:
                return time.perf_counter() - started, value
        except (OSError, http.client.HTTPException, ValueError):
            pass
        if server is not None and not server.alive():
            raise RuntimeError(f"{what}: the server exited:\n{server.output()[-3000:]}")
        if time.perf_counter() - started > timeout:
            return None, None
        time.sleep(interval)


class Recorder:
    def __init__(self, out, context):
        self.path = Path(out) / "ui.jsonl"
        self.context = context
        self.rows = {}

    def add(self, tool, metric, samples_s=None, value=None, **extra):
        line = dict(self.context, tool=tool, metric=metric)
        if samples_s is not None:
            ms = [s * 1000 for s in samples_s]
            line.update(samples_ms=[round(m, 3) for m in ms], median_ms=round(statistics.median(ms), 3))
            line.update(min_ms=round(min(ms), 3), max_ms=round(max(ms), 3))
            value = line["median_ms"]
        if value is not None:
            line["value"] = value
        line.update(extra)
        with open(self.path, "a") as f:
            f.write(json.dumps(line) + "\n")
        self.rows[(tool, metric)] = line
        shown = f"{value:.1f} ms" if samples_s is not None else value
        log(f"{tool:<11} {metric:<32} {shown}  {json.dumps(extra)[:160] if extra else ''}")
        return line


def timed(client, method, path, body, repeat, check=None, idle=0.0):
    """One warm-up request, then `repeat` timed ones, each after `idle` seconds without requests;
    `check` validates the first and last response's body. Returns (samples in seconds, warm-up
    seconds, the last body)."""
    warm, status, data = client.request(method, path, body)
    if status != 200:
        raise RuntimeError(f"{method} {path}: HTTP {status}: {data[:500]!r}")
    if check:
        check(data)
    samples = []
    for _ in range(repeat):
        time.sleep(idle)
        elapsed, status, data = client.request(method, path, body)
        if status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {data[:500]!r}")
        samples.append(elapsed)
    if check:
        check(data)
    return samples, warm, data


def page_ready(args, kind, url, idle=0.0):
    """Runs bench/ui_page.mjs; returns its JSON, or None with the reason logged."""
    repeat = args.idle_repeat if idle else args.page_repeat
    command = ["node", str(BENCH / "ui_page.mjs"), "--kind", kind, "--url", url, "--repeat", str(repeat),
               "--timeout", str(args.page_timeout), "--idle", str(idle)]
    try:
        done = subprocess.run(command, capture_output=True, text=True,
                              timeout=(args.page_timeout + idle) * (repeat + 2))
    except subprocess.TimeoutExpired:
        log(f"page {kind}: timed out")
        return None
    if done.returncode != 0:
        log(f"page {kind} failed:\n{done.stderr[-3000:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def table_and_page(args, recorder, tool, client, method, path, body, check, kind, url):
    """The runs-table API and page-ready, back to back and after `--idle` seconds without
    requests (when Regimen's cached listing of the runs has expired)."""
    samples, warm, data = timed(client, method, path, body, args.repeat, check)
    recorder.add(tool, "runs-table API", samples, warmup_ms=round(warm * 1000, 1), bytes=len(data))
    samples, _, _ = timed(client, method, path, body, args.idle_repeat, check, idle=args.idle)
    recorder.add(tool, "runs-table API, after idle", samples, idle_s=args.idle)
    record_page(recorder, tool, "page-ready, runs table", page_ready(args, kind, url))
    record_page(recorder, tool, "page-ready, runs table, after idle", page_ready(args, kind, url, args.idle),
                idle_s=args.idle)


def record_page(recorder, tool, metric, result, **extra):
    if result is None:
        recorder.add(tool, metric, value="failed", **extra)
    else:
        recorder.add(tool, metric, samples_s=[t / 1000 for t in result["times_ms"]],
                     warmup_ms=round(result["warmup_ms"], 1), url=result["url"], **extra)


# ----------------------------------------------------------------------------------------------
# The data


def read_runs(path):
    with open(path) as f:
        for line in f:
            yield json.loads(line)


def ensure_data(args, cache):
    meta_path = cache / "meta.json"
    if (cache / "data.complete").exists():
        log(f"data: reusing {cache}")
        return json.loads(meta_path.read_text())
    if cache.exists():
        shutil.rmtree(cache)
    cache.mkdir(parents=True)
    log(f"data: generating {args.runs} runs and a {args.points}-point series into {cache}")
    started = time.perf_counter()
    subprocess.run([args.ui_store, "--store", str(cache / "regimen"), "--runs", str(args.runs), "--points",
                    str(args.points), "--seed", str(args.seed), "--jsonl", str(cache / "runs.jsonl"), "--meta",
                    str(meta_path)], check=True)
    (cache / "data.complete").write_text(f"{time.perf_counter() - started:.1f} s\n")
    return json.loads(meta_path.read_text())


# ----------------------------------------------------------------------------------------------
# Regimen


def spike_in(points, meta):
    """Whether [step, value] pairs hold the planted spike."""
    return any(int(step) == meta["spike_step"] and value == meta["spike_value"] for step, value in points)


def zoom_range(meta):
    """100,000 steps (or a tenth of the series, if shorter) around the spike, which lies a little
    over a third of the way in: not on a round offset, where a sampler that keeps every n-th point
    would keep it by construction."""
    width = min(100_000, max(meta["long_points"] // 10, 10))
    low = max(0, meta["spike_step"] - width * 3 // 8 - 17)
    return low, min(meta["long_points"] - 1, low + width - 1)


def bench_regimen(args, cache, meta, recorder):
    log("regimen: starting `regimen ui`")
    server = Server([args.regimen, "ui", "--store", str(cache / "regimen"), "--port", "0"], cache / "regimen-ui.log")
    try:
        started, match = wait_until(lambda: re.search(r"open (http://127\.0\.0\.1:(\d+)/)", server.output()), 60,
                                    "regimen ui", server)
        if not match:
            raise RuntimeError(f"regimen ui did not start:\n{server.output()}")
        url, port = match.group(1), int(match.group(2))
        recorder.add("regimen", "server start (s)", value=round(started, 2))
        client = Client(port)

        table = "/api/runs?offset=0&limit=200&fields=params.lr,metrics.val.acc&sort=-metrics.val.acc"

        def check_table(data):
            page = json.loads(data)
            accuracies = [r["metrics"]["val.acc"]["best"] for r in page["runs"]]
            assert page["total"] == meta["runs"] and len(page["runs"]) == min(200, meta["runs"]), page["total"]
            assert accuracies == sorted(accuracies, reverse=True), "not sorted by val.acc"
            assert set(page["runs"][0]["params"]) == {"lr"}, "fields= was not applied"

        table_and_page(args, recorder, "regimen", client, "GET", table, None, check_table, "regimen-runs", url)
        # What the page asks on a first visit: its default columns, newest first.
        fields = ("params.model,params.lr,params.batch_size,params.optimizer,params.weight_decay,params.epochs,"
                  "params.seed,metrics.val.acc,metrics.val.macro_f1,metrics.val.loss,metrics.train.loss")
        samples, warm, data = timed(client, "GET", f"/api/runs?offset=0&limit=200&fields={fields}", None, args.repeat)
        recorder.add("regimen", "runs-table API, newest first", samples, warmup_ms=round(warm * 1000, 1), bytes=len(data))
        samples, warm, data = timed(client, "GET", "/api/keys", None, args.repeat)
        recorder.add("regimen", "keys API (page asks it first)", samples, warmup_ms=round(warm * 1000, 1), bytes=len(data))

        series = f"/api/runs/{meta['long_run']}/series?key={meta['long_key']}&buckets=2000"
        low, high = zoom_range(meta)
        for metric, path in [("curve API, whole", series), ("curve API, zoomed", f"{series}&from={low}&to={high}")]:
            samples, warm, data = timed(client, "GET", path, None, args.repeat)
            body = json.loads(data)
            recorder.add("regimen", metric, samples, warmup_ms=round(warm * 1000, 1), bytes=len(data),
                         points_returned=len(body["points"]), points_in_range=body["total"],
                         spike_kept=spike_in(body["points"], meta))
        client.close()

        record_page(recorder, "regimen", "page-ready, long run's page",
                    page_ready(args, "regimen-run", f"{url}#/run/{meta['long_run']}"))
    finally:
        server.stop()


# ----------------------------------------------------------------------------------------------
# MLflow

MLFLOW_STATUS = {"finished": "FINISHED", "stopped_early": "FINISHED", "diverged": "FAILED", "failed": "FAILED",
                 "crashed": "FAILED", "interrupted": "KILLED", "killed": "KILLED", "running": "FAILED"}


def ensure_mlflow(cache, meta):
    folder = cache / "mlflow"
    done = folder / "loaded.json"
    if done.exists():
        log(f"mlflow: reusing {folder}")
        return json.loads(done.read_text())
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    experiments, long_run = {}, None
    log(f"mlflow: loading {meta['runs']} runs through MlflowClient.log_batch (minutes; cached afterwards)")
    started = time.perf_counter()
    for count, run in enumerate(read_runs(cache / "runs.jsonl"), 1):
        name = run["experiment"]
        if name not in experiments:
            experiments[name] = client.create_experiment(name, artifact_location=str(folder / "artifacts" / name))
        created = client.create_run(experiments[name], start_time=run["started_at_ms"], run_name=run["name"],
                                    tags={"regimen.run_id": run["run_id"]})
        run_id = created.info.run_id
        metrics = [
            Metric(key, math.nan if v is None else v, wall, step)
            for key, series in run["metrics"].items()
            for step, wall, v in zip(series["step"], series["wall_ms"], series["value"])
        ]
        params = [Param(k, str(v)) for k, v in run["params"].items()]
        for i in range(0, max(len(metrics), 1), 1000):
            client.log_batch(run_id, metrics=metrics[i:i + 1000], params=params if i == 0 else [])
            if len(metrics) > 100_000 and i % 100_000 == 0:
                log(f"mlflow: long run, {i} of {len(metrics)} points, {time.perf_counter() - started:.0f} s")
        client.set_terminated(run_id, status=MLFLOW_STATUS[run["status"]], end_time=run["ended_at_ms"])
        if run["run_id"] == meta["long_run"]:
            long_run = run_id
        if count % 500 == 0:
            elapsed = time.perf_counter() - started
            log(f"mlflow: {count} of {meta['runs']} runs, {elapsed:.0f} s, "
                f"about {elapsed / count * (meta['runs'] - count):.0f} s left")
    loaded = {"experiments": experiments, "long_run": long_run, "load_s": round(time.perf_counter() - started, 1)}
    done.write_text(json.dumps(loaded) + "\n")
    log(f"mlflow: loaded in {loaded['load_s']} s")
    return loaded


def bench_mlflow(args, cache, meta, recorder):
    loaded = ensure_mlflow(cache, meta)
    recorder.add("mlflow", "load (s, once, cached)", value=loaded["load_s"])
    folder = cache / "mlflow"
    port = free_port()
    log("mlflow: starting `mlflow server`")
    server = Server([str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri",
                     f"sqlite:///{folder / 'mlflow.db'}", "--default-artifact-root", str(folder / "artifacts"),
                     "--host", "127.0.0.1", "--port", str(port)], cache / "mlflow-server.log")
    try:
        client = Client(port)

        def up():
            _, status, _ = client.request("GET", "/health")
            return status == 200

        started, ok = wait_until(up, 180, "mlflow server", server, interval=0.5)
        if not ok:
            raise RuntimeError(f"mlflow server did not start:\n{server.output()[-3000:]}")
        recorder.add("mlflow", "server start (s)", value=round(started, 2))
        ids = sorted(loaded["experiments"].values(), key=int)
        search = {"experiment_ids": ids, "max_results": 200, "order_by": ["metrics.`val.acc` DESC"],
                  "run_view_type": "ACTIVE_ONLY"}

        def check_table(data):
            runs = json.loads(data)["runs"]
            assert len(runs) == min(200, meta["runs"]), len(runs)

        experiments = urllib.parse.quote(json.dumps(ids, separators=(",", ":")))
        url = f"http://127.0.0.1:{port}/#/compare-experiments/s?experiments={experiments}"
        table_and_page(args, recorder, "mlflow", client, "POST", "/ajax-api/2.0/mlflow/runs/search", search,
                       check_table, "mlflow-runs", url)
        # What its runs table asks on a first visit (100 runs there), newest first.
        newest = dict(search, order_by=["attributes.start_time DESC"])
        samples, warm, data = timed(client, "POST", "/ajax-api/2.0/mlflow/runs/search", newest, args.repeat, check_table)
        recorder.add("mlflow", "runs-table API, newest first", samples, warmup_ms=round(warm * 1000, 1), bytes=len(data))

        run_id, key = loaded["long_run"], meta["long_key"]
        bulk = f"/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids={run_id}&metric_key={key}&max_results=2000"
        low, high = zoom_range(meta)
        for metric, path in [("curve API, whole", bulk), ("curve API, zoomed", f"{bulk}&start_step={low}&end_step={high}")]:
            samples, warm, data = timed(client, "GET", path, None, args.repeat)
            points = [(m["step"], m["value"]) for m in json.loads(data).get("metrics", [])]
            recorder.add("mlflow", metric, samples, warmup_ms=round(warm * 1000, 1), bytes=len(data),
                         points_returned=len(points), spike_kept=spike_in(points, meta),
                         endpoint="get-history-bulk-interval, max_results=2000")
        history = f"/ajax-api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key={key}"
        samples, warm, data = timed(client, "GET", history, None, args.history_repeat)
        points = [(m["step"], m["value"]) for m in json.loads(data).get("metrics", [])]
        recorder.add("mlflow", "full history API (all points)", samples, warmup_ms=round(warm * 1000, 1),
                     bytes=len(data), points_returned=len(points), spike_kept=spike_in(points, meta),
                     endpoint="get-history")
    finally:
        client.close()
        server.stop()


# ----------------------------------------------------------------------------------------------
# TensorBoard


def write_hparams(folder, runs):
    """Appends each run's parameters, as an hparams summary, to the event file `regimen export`
    wrote for it (one event file per run: TensorBoard's data server keeps every file open)."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.hparams import summary_v2
    from tensorboard.summary.writer.record_writer import RecordWriter

    for run in runs:
        wall = run["started_at_ms"] / 1000
        summary = summary_v2.hparams_pb(run["params"], trial_id=run["run_id"], start_time_secs=wall)
        [path] = (folder / run["run_id"]).glob("events.out.tfevents.*")
        with open(path, "ab") as f:
            writer = RecordWriter(f)
            writer.write(event_pb2.Event(wall_time=wall, summary=summary).SerializeToString())
            writer.flush()


def ensure_tensorboard(args, cache, meta, name, only_long):
    folder = cache / name
    done = cache / f"{name}.complete"
    if done.exists():
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    runs = [r for r in read_runs(cache / "runs.jsonl") if not only_long or r["run_id"] == meta["long_run"]]
    log(f"tensorboard: exporting {len(runs)} runs with `regimen export --format tensorboard` into {folder}")
    started = time.perf_counter()
    ids = [r["run_id"] for r in runs]
    for i in range(0, len(ids), 1000):
        exported = subprocess.run([args.regimen, "export", "--store", str(cache / "regimen"), "--format", "tensorboard",
                                   "--out", str(folder), *ids[i:i + 1000]], capture_output=True, text=True)
        if exported.returncode != 0:
            raise RuntimeError(f"regimen export failed:\n{exported.stderr[-3000:]}")
    write_hparams(folder, runs)
    done.write_text(f"{time.perf_counter() - started:.1f} s\n")
    return folder


def start_tensorboard(cache, folder, name):
    port = free_port()
    server = Server([str(Path(sys.executable).parent / "tensorboard"), "--logdir", str(folder), "--host", "127.0.0.1",
                     "--port", str(port)], cache / f"{name}.log")
    return server, port, Client(port)


def scalars(client, run, tag):
    path = f"/data/plugin/scalars/scalars?run={urllib.parse.quote(run)}&tag={urllib.parse.quote(tag)}"
    return path, client.request("GET", path)


def bench_tensorboard_long(args, cache, meta, recorder):
    folder = ensure_tensorboard(args, cache, meta, "tensorboard-long", only_long=True)
    log("tensorboard: starting on the long run")
    server, port, client = start_tensorboard(cache, folder, "tensorboard-long")
    try:
        def loaded():
            _, (_, status, data) = scalars(client, meta["long_run"], meta["long_key"])
            return status == 200 and json.loads(data)[-1][1] == meta["long_points"] - 1

        seconds, ok = wait_until(loaded, args.tb_cap, "tensorboard", server)
        if not ok:
            recorder.add("tensorboard", "curve API, whole", value=f"not loaded in {args.tb_cap} s")
            return
        recorder.add("tensorboard", "load, long run (s)", value=round(seconds, 2), note="start to the last step served")
        path, _ = scalars(client, meta["long_run"], meta["long_key"])
        samples, warm, data = timed(client, "GET", path, None, args.repeat)
        points = [(step, value) for _, step, value in json.loads(data)]
        recorder.add("tensorboard", "curve API, whole", samples, warmup_ms=round(warm * 1000, 1), bytes=len(data),
                     points_returned=len(points), spike_kept=spike_in(points, meta),
                     endpoint="scalars plugin, default reservoir of 1,000 samples")
        recorder.add("tensorboard", "curve API, zoomed", value="n/a", note="no range parameter: a zoom redraws the same samples")
    finally:
        client.close()
        server.stop()


def bench_tensorboard_all(args, cache, meta, recorder):
    folder = ensure_tensorboard(args, cache, meta, "tensorboard-all", only_long=False)
    log(f"tensorboard: starting on all {meta['runs']} runs (cap {args.tb_cap} s)")
    server, port, client = start_tensorboard(cache, folder, "tensorboard-all")
    try:
        def loaded():
            _, status, data = client.request("GET", "/data/runs")
            if status != 200 or len(json.loads(data)) < meta["runs"]:
                return False
            _, (_, status, data) = scalars(client, meta["long_run"], meta["long_key"])
            return status == 200 and json.loads(data)[-1][1] == meta["long_points"] - 1

        seconds, ok = wait_until(loaded, args.tb_cap, "tensorboard", server, interval=1.0)
        if not ok:
            recorder.add("tensorboard", "load, all runs (s)", value=f"not loaded in {args.tb_cap} s")
            return
        recorder.add("tensorboard", "load, all runs (s)", value=round(seconds, 2),
                     note="start to every run listed and the long run's last step served")
        samples, warm, data = timed(client, "GET", "/data/runs", None, args.repeat)
        recorder.add("tensorboard", "run list API (names only)", samples, warmup_ms=round(warm * 1000, 1),
                     bytes=len(data))
        groups = {
            "experimentName": "defaultExperimentId",
            "allowedStatuses": ["STATUS_FAILURE", "STATUS_RUNNING", "STATUS_SUCCESS", "STATUS_UNKNOWN"],
            "colParams": [{"metric": {"group": "", "tag": "val.acc"}, "order": "ORDER_DESC", "missingValuesFirst": False},
                          {"hparam": "lr"}],
            "startIndex": 0, "sliceSize": 200, "includeMetrics": True,
        }
        path = "/experiment/defaultExperimentId/data/plugin/hparams/session_groups"

        def check_groups(data):
            body = json.loads(data)
            assert len(body.get("sessionGroups", [])) == min(200, meta["runs"]), str(body)[:300]

        table_and_page(args, recorder, "tensorboard", client, "POST", path, groups, check_groups, "tensorboard-runs",
                       f"http://127.0.0.1:{port}/#timeseries")
    finally:
        client.close()
        server.stop()


# ----------------------------------------------------------------------------------------------
# The table

ROWS = [
    ("runs-table API", "ms"),
    ("runs-table API, after idle", "ms"),
    ("runs-table API, newest first", "ms"),
    ("page-ready, runs table", "ms"),
    ("page-ready, runs table, after idle", "ms"),
    ("curve API, whole", "ms"),
    ("curve API, zoomed", "ms"),
    ("spike kept, whole / zoomed", None),
    ("points returned, whole", None),
    ("full history API (all points)", "ms"),
    ("page-ready, long run's page", "ms"),
    ("keys API (page asks it first)", "ms"),
    ("run list API (names only)", "ms"),
    ("server start (s)", None),
    ("load, long run (s)", None),
    ("load, all runs (s)", None),
    ("load (s, once, cached)", None),
]
TOOLS = ["regimen", "mlflow", "tensorboard"]


def cell(rows, tool, metric):
    if metric == "spike kept, whole / zoomed":
        marks = []
        for m in ("curve API, whole", "curve API, zoomed"):
            line = rows.get((tool, m))
            marks.append("—" if not line or "spike_kept" not in line else ("yes" if line["spike_kept"] else "NO"))
        return " / ".join(marks) if any(m != "—" for m in marks) else ""
    if metric == "points returned, whole":
        line = rows.get((tool, "curve API, whole"))
        return f"{line['points_returned']:,}" if line and "points_returned" in line else ""
    line = rows.get((tool, metric))
    if not line:
        return ""
    value = line.get("value")
    if isinstance(value, float) and "median_ms" in line:
        return f"{value:,.1f}"
    return str(value)


def print_table(recorder, meta):
    rows = recorder.rows
    header = ["metric", "Regimen", "MLflow", "TensorBoard", "MLflow / Regimen", "TensorBoard / Regimen"]
    lines = []
    for metric, unit in ROWS:
        cells = [cell(rows, tool, metric) for tool in TOOLS]
        if not any(cells):
            continue
        ratios = []
        for tool in ("mlflow", "tensorboard"):
            mine, theirs = rows.get(("regimen", metric)), rows.get((tool, metric))
            if unit and mine and theirs and "median_ms" in mine and "median_ms" in theirs and mine["median_ms"] > 0:
                ratios.append(f"{theirs['median_ms'] / mine['median_ms']:,.1f}×")
            else:
                ratios.append("")
        name = f"{metric} ({unit})" if unit else metric
        lines.append([name, *cells, *ratios])
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    print()
    print(f"Dashboards: {meta['runs']:,} runs, long series of {meta['long_points']:,} points "
          f"(spike at step {meta['spike_step']:,}); median of {recorder.context['repeat']} requests, "
          f"{recorder.context['page_repeat']} page loads; 'after idle': median of {recorder.context['idle_repeat']}, "
          f"each after {recorder.context['idle']} s without requests")
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-|-".join("-" * w for w in widths))
    for line in lines:
        print(" | ".join([line[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(line[1:], widths[1:])]))
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--regimen", required=True, help="the regimen binary")
    parser.add_argument("--ui-store", required=True, help="the ui-store generator binary")
    parser.add_argument("--out", default=str(BENCH / "out"))
    parser.add_argument("--cache", default=str(BENCH / "out" / "ui-cache"), help="generated data and loaded peers")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--repeat", type=int, default=10, help="timed requests per API measurement")
    parser.add_argument("--history-repeat", type=int, default=3, help="timed requests of MLflow's whole history")
    parser.add_argument("--idle", type=float, default=10.5,
                        help="seconds without requests before each 'after idle' measurement")
    parser.add_argument("--idle-repeat", type=int, default=5, help="timed requests and page loads after idle")
    parser.add_argument("--page-repeat", type=int, default=5, help="timed page loads")
    parser.add_argument("--page-timeout", type=int, default=180, help="seconds one page load may take")
    parser.add_argument("--tb-cap", type=int, default=600, help="seconds TensorBoard may take to load a log folder")
    parser.add_argument("--skip-regimen", action="store_true")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--skip-tensorboard", action="store_true")
    parser.add_argument("--skip-tensorboard-all", action="store_true", help="only the long run in TensorBoard")
    args = parser.parse_args()

    if args.points < 10:
        parser.error("--points must be at least 10: the long series carries the spike")
    cache = Path(args.cache) / f"runs{args.runs}-points{args.points}-seed{args.seed}"
    Path(args.out).mkdir(parents=True, exist_ok=True)
    meta = ensure_data(args, cache)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    context = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit, "cores": os.cpu_count(), "runs": meta["runs"], "points": meta["long_points"],
        "repeat": args.repeat, "page_repeat": args.page_repeat, "idle": args.idle, "idle_repeat": args.idle_repeat,
    }
    recorder = Recorder(args.out, context)
    try:
        if not args.skip_regimen:
            bench_regimen(args, cache, meta, recorder)
        if not args.skip_mlflow:
            bench_mlflow(args, cache, meta, recorder)
        if not args.skip_tensorboard:
            bench_tensorboard_long(args, cache, meta, recorder)
            if not args.skip_tensorboard_all:
                bench_tensorboard_all(args, cache, meta, recorder)
    finally:
        print_table(recorder, meta)
        log(f"raw lines appended to {recorder.path}")


if __name__ == "__main__":
    main()
