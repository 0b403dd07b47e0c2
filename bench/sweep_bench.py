"""The sweep benchmark's driver: Regimen's sweep store and samplers against Optuna 5.0.

Run through `bench/sweep.sh`, which installs the pinned peer and builds Regimen's side
(`crates/regimen-sweep/examples/sweep_bench.rs`). Two parts, printed side by side:

(a) Overhead: trivial trials (one float `x` in [-5, 5], objective x^2, random sampler) persisted
    to a SQLite store. Regimen: the example's `overhead` mode (trials_since, suggest, claim,
    complete: what a sweep worker does per trial). Optuna: `study.optimize` on
    `storage="sqlite:///..."` with `RandomSampler`. Both stores live in `--store-dir` (default: the
    output folder, on disk; `/dev/shm` takes the cost of fsync out). Optuna runs `--optuna-trials`
    trials (10,000 by default, ~2.5 minutes on a quiet 2-core machine); with fewer, its 10,000-trial
    total is extrapolated two ways (the rest at the cost of its last 100 trials, and on a straight
    line fitted to its second half), and the table marks those rows with *. Regimen's runs take
    seconds and are dominated by fsync, whose latency varies on a shared disk: each size runs
    `--repeat` times (default 3) and the table shows the median run.

(b) Sampler quality: the ask/tell loop on the 24 noiseless BBOB functions in 5-D (COCO's own
    implementation, `cocoex`), Branin and Hartmann6, one evaluator for every sampler. Seed s
    runs on BBOB instance s+1. Regimen's samplers run as a subprocess (`tell-loop` mode) per
    (problem, seed, sampler).

(c) Zoom vs no zoom at equal budget: Regimen's TPE and random sampler again on the same runs, but
    after `--zoom-after` trials (default 50) the example zooms once on its own history
    (`zoom_history` with `--top-k` 5 and `--margin` 0.25: the child box spans the top trials plus
    a quarter of their span on each side; parent trials outside it are dropped, as `inherit`
    does) and spends the rest of the `--trials` budget in the child box. Compared with the
    no-zoom runs of (b): same functions, instances, seeds and first `--zoom-after` trials.

Normalized regret of a run after n trials: (best_n - f_opt) / (f_ref - f_opt), where f_ref is
the median of f over 1,000 uniform random points of the box (fixed numpy seed). 0 is the optimum,
1 is "as good as a typical random point"; it makes functions of very different scales comparable.
BBOB's f_opt is f at the optimum cocoex reports (`Problem._best_parameter`), rounded to 0.01 as
BBOB defines it.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np


# ----------------------------------------------------------------------------------------------
# Test functions


def branin(x):
    a, b, c = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    return a * (x[1] - b * x[0] ** 2 + c * x[0] - r) ** 2 + s * (1 - t) * math.cos(x[0]) + s


HARTMANN6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
HARTMANN6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
HARTMANN6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def hartmann6(x):
    x = np.asarray(x)
    inner = np.sum(HARTMANN6_A * (x - HARTMANN6_P) ** 2, axis=1)
    return float(-np.sum(HARTMANN6_ALPHA * np.exp(-inner)))


class Problem:
    """A function on a box with its optimum and reference value."""

    def __init__(self, name, group, f, lower, upper, f_opt):
        self.name, self.group, self.f = name, group, f
        self.lower, self.upper = list(map(float, lower)), list(map(float, upper))
        self.f_opt = f_opt
        rng = np.random.default_rng(20261130)
        points = rng.uniform(self.lower, self.upper, size=(1000, len(self.lower)))
        self.f_ref = float(np.median([f(p) for p in points]))

    def normalized(self, value):
        return max(value - self.f_opt, 0.0) / (self.f_ref - self.f_opt)


def bbob_problems(seeds, dim):
    import cocoex

    suite = cocoex.Suite("bbob", f"instances: 1-{seeds}", f"dimensions: {dim}")
    problems = {}
    with tempfile.TemporaryDirectory() as folder:
        here = os.getcwd()
        os.chdir(folder)  # _best_parameter writes its answer to a file in the current folder
        try:
            for fid in range(1, 25):
                for instance in range(1, seeds + 1):
                    p = suite.get_problem_by_function_dimension_instance(fid, dim, instance)
                    p._best_parameter("print")
                    x_opt = np.loadtxt("._bbob_problem_best_parameter.txt")
                    f_opt = round(float(p(x_opt)), 2)
                    problems[(fid, instance)] = Problem(
                        f"f{fid}", "bbob", lambda x, p=p: float(p(np.asarray(x))), p.lower_bounds, p.upper_bounds, f_opt
                    )
        finally:
            os.chdir(here)
    return problems, suite


# ----------------------------------------------------------------------------------------------
# Samplers


def run_optuna(kind, problem, seed, trials):
    import optuna

    sampler = optuna.samplers.TPESampler(seed=seed) if kind == "tpe" else optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(sampler=sampler)
    values = []
    for _ in range(trials):
        trial = study.ask()
        x = [trial.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(zip(problem.lower, problem.upper))]
        value = problem.f(x)
        study.tell(trial, value)
        values.append(value)
    return values


def run_regimen(binary, kind, problem, seed, trials, zoom=None):
    """The values of `trials` asks of the example's tell-loop; with `zoom` = (after, top_k, margin)
    it zooms once, and the values come with its report of the zoom."""
    bounds = ",".join(f"{lo!r}:{hi!r}" for lo, hi in zip(problem.lower, problem.upper))
    command = [binary, "tell-loop", "--bounds", bounds, "--sampler", kind, "--seed", str(seed)]
    if zoom:
        command += ["--zoom-after", str(zoom[0]), "--top-k", str(zoom[1]), "--margin", str(zoom[2])]
    proc = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    values = []
    for _ in range(trials):
        proc.stdin.write('{"ask": true}\n')
        proc.stdin.flush()
        x = json.loads(proc.stdout.readline())
        value = problem.f(x)
        proc.stdin.write(json.dumps({"tell": value}) + "\n")
        values.append(value)
    proc.stdin.close()
    stderr = proc.stderr.read()
    if proc.wait() != 0:
        raise RuntimeError(f"{binary} tell-loop failed on {problem.name} seed {seed}: {stderr}")
    if zoom:
        return values, json.loads(stderr.strip().splitlines()[-1])
    return values


SAMPLERS = [
    ("regimen", "random"),
    ("regimen", "sobol"),
    ("regimen", "tpe"),
    ("optuna", "random"),
    ("optuna", "tpe"),
]

# (c): Regimen's samplers that zoom once.
ZOOMED = [("regimen", "tpe"), ("regimen", "random")]


def sign_test(better, worse):
    """Two-sided exact binomial p-value of `better` against `worse` (ties left out)."""
    n, k = better + worse, min(better, worse)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


# ----------------------------------------------------------------------------------------------
# (a) Overhead


def optuna_overhead(trials, folder):
    import optuna

    path = os.path.join(folder, "optuna-overhead.db")
    if os.path.exists(path):
        os.remove(path)
    study = optuna.create_study(storage=f"sqlite:///{path}", sampler=optuna.samplers.RandomSampler(seed=0))
    stamps = []
    started = time.perf_counter()
    study.optimize(
        lambda t: t.suggest_float("x", -5.0, 5.0) ** 2,
        n_trials=trials,
        callbacks=[lambda s, t: stamps.append(time.perf_counter())],
    )
    per_trial = np.diff([started] + stamps) * 1e3
    os.remove(path)
    n = len(per_trial)
    late = per_trial[n // 2 :]
    slope, intercept = np.polyfit(np.arange(n // 2, n), late, 1)
    return {
        "impl": "optuna",
        "sampler": "random",
        "trials": trials,
        "total_s": stamps[-1] - started,
        "total_s_at_1000": stamps[min(999, trials - 1)] - started,
        "ms_per_trial_at_100": float(np.mean(per_trial[50:150])),
        "ms_per_trial_at_end": float(np.mean(per_trial[n - 100 :])),
        "median_ms_at_100": float(np.median(per_trial[50:150])),
        "median_ms_at_end": float(np.median(per_trial[n - 100 :])),
        "ms_per_trial_per_100": [float(np.mean(per_trial[i : i + 100])) for i in range(0, n, 100)],
        # A straight line through the cost of the second half of the trials, in ms per trial.
        "fit_ms_per_trial": [float(intercept), float(slope)],
    }


def extrapolate(opt, n):
    """Optuna's total for n trials from its measured total: (low) the remaining trials at the mean
    cost of its last 100, (fit) at the cost of the straight line fitted to its second half."""
    rest = n - opt["trials"]
    low = opt["total_s"] + rest * opt["ms_per_trial_at_end"] / 1e3
    a, b = opt["fit_ms_per_trial"]
    first, last = opt["trials"], n - 1
    fit = opt["total_s"] + (rest * a + b * (first + last) * rest / 2) / 1e3
    return low, fit


def overhead(args, out):
    rows = []
    for n in (1000, 10000):
        # fsync latency on a shared disk varies from run to run: repeat, keep the median run.
        runs = []
        for _ in range(args.repeat):
            line = subprocess.run(
                [args.regimen, "overhead", "--trials", str(n), "--sampler", "random", "--dir", args.store_dir],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            runs.append(dict(json.loads(line), store_dir=args.store_dir))
            out.write(json.dumps(runs[-1]) + "\n")
        runs.sort(key=lambda r: r["total_s"])
        rows.append(dict(runs[len(runs) // 2], totals_s=[r["total_s"] for r in runs]))
        print(f"  regimen {n} trials: {' '.join(f'{r:.2f}' for r in rows[-1]['totals_s'])} s", file=sys.stderr)
    optuna_row = dict(optuna_overhead(args.optuna_trials, args.store_dir), store_dir=args.store_dir)
    out.write(json.dumps(optuna_row) + "\n")
    out.flush()

    opt = optuna_row
    print(f"\n(a) Overhead: trivial trials persisted to SQLite in {args.store_dir}, random sampler (ms/trial: mean, median)")
    print(
        f"{'trials':>7} | {'regimen s':>9} | {'optuna s':>15} | {'ratio':>13} | "
        f"{'regimen @100':>13} | {'regimen @end':>13} | {'optuna @100':>13} | {'optuna @end':>13}"
    )
    for row in rows:
        n = row["trials"]
        if n <= opt["trials"]:
            o_total = opt["total_s_at_1000"] if n == 1000 else opt["total_s"]
            o_text, ratio = f"{o_total:.1f}", f"{o_total / row['total_s']:.1f}x"
            o_end = f"{opt['ms_per_trial_at_end']:.2f}, {opt['median_ms_at_end']:.2f}" if n == opt["trials"] else "—"
        else:
            low, fit = extrapolate(opt, n)
            o_text = f"{low:.0f}-{fit:.0f}*"
            ratio = f"{low / row['total_s']:.0f}-{fit / row['total_s']:.0f}x*"
            o_end = f"≥{opt['ms_per_trial_at_end']:.1f}*"
        print(
            f"{n:>7} | {row['total_s']:>9.2f} | {o_text:>15} | {ratio:>13} | "
            f"{row['ms_per_trial_at_100']:>5.2f}, {row['median_ms_at_100']:>5.2f} | "
            f"{row['ms_per_trial_at_end']:>5.2f}, {row['median_ms_at_end']:>5.2f} | "
            f"{opt['ms_per_trial_at_100']:>5.2f}, {opt['median_ms_at_100']:>5.2f} | {o_end:>13}"
        )
    last = rows[-1]
    for row in rows:
        print(f"  regimen {row['trials']} trials, every run (s): {' '.join(f'{t:.2f}' for t in row['totals_s'])}")
    print(
        f"  regimen cost at trial 10,000 / at trial 100: mean {last['ms_per_trial_at_end'] / last['ms_per_trial_at_100']:.2f},"
        f" median {last['median_ms_at_end'] / last['median_ms_at_100']:.2f} (target <= 2)"
    )
    print(f"  optuna ms/trial per block of 100: {' '.join(f'{v:.0f}' for v in opt['ms_per_trial_per_100'])}")
    if opt["trials"] < 10000:
        a, b = opt["fit_ms_per_trial"]
        print(
            f"  * Optuna measured for {opt['trials']} trials; its 10,000-trial total is extrapolated: low = the rest at the"
            f" mean cost of its last 100 trials; high = the rest on the line {a:.1f} + {b:.4f} n ms fitted to its second half."
        )


# ----------------------------------------------------------------------------------------------
# (b) Quality


def quality(args, out):
    problems, _suite = bbob_problems(args.seeds, 5)
    extra = {
        "branin": Problem("branin", "branin", branin, [-5, 0], [10, 15], 0.397887),
        "hartmann6": Problem("hartmann6", "hartmann6", hartmann6, [0] * 6, [1] * 6, -3.32237),
    }
    runs = [(problems[(fid, seed + 1)], seed) for fid in range(1, 25) for seed in range(args.seeds)]
    runs += [(extra[name], seed) for name in ("branin", "hartmann6") for seed in range(args.seeds)]
    results = []
    started = time.perf_counter()
    zoom = (args.zoom_after, args.top_k, args.margin)
    configs = [(impl, kind, None) for impl, kind in SAMPLERS]
    if not args.skip_zoom:
        configs += [(impl, kind, zoom) for impl, kind in ZOOMED]
    for impl, kind, zoomed in configs:
        t0 = time.perf_counter()
        for problem, seed in runs:
            report = None
            if impl == "optuna":
                values = run_optuna(kind, problem, seed, args.trials)
            elif zoomed:
                values, report = run_regimen(args.regimen, kind, problem, seed, args.trials, zoomed)
            else:
                values = run_regimen(args.regimen, kind, problem, seed, args.trials)
            row = {
                "impl": impl,
                "sampler": kind,
                "zoom": report,
                "problem": problem.name,
                "group": problem.group,
                "seed": seed,
                "f_opt": problem.f_opt,
                "f_ref": problem.f_ref,
                "best_50": min(values[:50]),
                "best_at_zoom": min(values[: args.zoom_after]),
                "best_100": min(values[:100]),
                "regret_50": problem.normalized(min(values[:50])),
                "regret_100": problem.normalized(min(values[:100])),
            }
            results.append(row)
            out.write(json.dumps(row) + "\n")
        out.flush()
        label = f"{impl} {kind}" + (f" zoom@{zoomed[0]}" if zoomed else "")
        print(f"  {label}: {len(runs)} runs in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    print(f"  quality total {time.perf_counter() - started:.1f} s", file=sys.stderr)
    report_quality([row for row in results if not row["zoom"]], args.seeds)
    if not args.skip_zoom:
        report_zoom(results, args)


GROUPS = [("bbob", "BBOB 24 fns 5-D"), ("branin", "Branin"), ("hartmann6", "Hartmann6")]
NAMES = [f"f{i}" for i in range(1, 25)] + ["branin", "hartmann6"]


def summary(r):
    return f"{statistics.mean(r):.4f} ± {statistics.stdev(r):.4f} [{statistics.median(r):.4f}]"


def compare(a, b):
    """-1 when regret a is lower than b, 1 when higher, 0 when they tie."""
    if abs(a - b) <= 1e-12 * max(1.0, abs(b)):
        return 0
    return -1 if a < b else 1


def paired(ours, theirs, n):
    """(better, worse, ties) of `ours` against `theirs`, run by run (same problem and seed), after n trials."""
    by_key = {(row["problem"], row["seed"]): row[f"regret_{n}"] for row in theirs}
    signs = [compare(row[f"regret_{n}"], by_key[(row["problem"], row["seed"])]) for row in ours]
    return signs.count(-1), signs.count(1), signs.count(0)


def per_function(ours, theirs, n):
    """(better, worse, ties) of `ours` against `theirs` on the mean regret over seeds, function by function."""
    signs = [
        compare(
            statistics.mean(row[f"regret_{n}"] for row in ours if row["problem"] == name),
            statistics.mean(row[f"regret_{n}"] for row in theirs if row["problem"] == name),
        )
        for name in NAMES
    ]
    return signs.count(-1), signs.count(1), signs.count(0)


def report_zoom(results, args):
    n = args.trials

    def rows_of(kind, zoomed):
        return [r for r in results if r["impl"] == "regimen" and r["sampler"] == kind and bool(r["zoom"]) == zoomed]

    print(
        f"\n(c) Zoom vs no zoom at {n} trials: one zoom after {args.zoom_after} trials (top {args.top_k},"
        f" margin {args.margin}), normalized regret mean ± std [median]"
    )
    print(f"{'sampler':<22}" + "".join(f" | {label + ' @' + str(n):>30}" for _, label in GROUPS))
    for kind in ("tpe", "random"):
        for zoomed in (False, True):
            rows = rows_of(kind, zoomed)
            cells = [summary([r[f"regret_{n}"] for r in rows if r["group"] == g]) for g, _ in GROUPS]
            label = f"regimen {kind}" + (f" zoom@{args.zoom_after}" if zoomed else "")
            print(f"{label:<22}" + "".join(f" | {c:>30}" for c in cells))
    for kind in ("tpe", "random"):
        plain, zoomed = rows_of(kind, False), rows_of(kind, True)
        before = {(p["problem"], p["seed"]): p["best_at_zoom"] for p in plain}
        same = sum(1 for z in zoomed if z["best_at_zoom"] == before[(z["problem"], z["seed"])])
        b, w, t = paired(zoomed, plain, n)
        fb, fw, ft = per_function(zoomed, plain, n)
        inherited = [z["zoom"]["inherited"] for z in zoomed]
        share = [z["zoom"]["volume_share"] for z in zoomed]
        print(
            f"  {kind}: zoom better in {b}, worse in {w}, tied in {t} of {len(zoomed)} paired runs"
            f" (sign test p = {sign_test(b, w):.2g}); per function better on {fb}, worse on {fw}, tied on {ft} of {len(NAMES)}"
        )
        print(
            f"    best of the first {args.zoom_after} trials identical in {same} of {len(zoomed)} runs; trials inherited:"
            f" median {statistics.median(inherited):.0f} (min {min(inherited)}, max {max(inherited)}); the child box's"
            f" share of the volume: median {statistics.median(share):.2g} (min {min(share):.2g}, max {max(share):.2g})"
        )
    print(f"\n{'fn':<10} | {'tpe':>9} | {'tpe zoom':>9} | {'random':>9} | {'rnd zoom':>9}   (mean regret @{n})")
    for name in NAMES:
        cells = [
            statistics.mean(r[f"regret_{n}"] for r in rows_of(kind, zoomed) if r["problem"] == name)
            for kind in ("tpe", "random")
            for zoomed in (False, True)
        ]
        print(f"{name:<10} | " + " | ".join(f"{c:>9.4f}" for c in cells))


def report_quality(results, seeds):
    print(f"\n(b) Normalized regret (0 = optimum, 1 = median random point), mean ± std [median] over runs, {seeds} seeds")
    header = f"{'sampler':<15}" + "".join(f" | {label + ' @' + str(n):>30}" for _, label in GROUPS for n in (50, 100))
    print(header)
    for impl, kind in SAMPLERS:
        cells = []
        for group, _ in GROUPS:
            for n in (50, 100):
                cells.append(
                    summary([row[f"regret_{n}"] for row in results if row["impl"] == impl and row["sampler"] == kind and row["group"] == group])
                )
        print(f"{impl + ' ' + kind:<15}" + "".join(f" | {c:>30}" for c in cells))

    print("\nRegimen TPE vs Optuna TPE, per function (mean normalized regret over seeds) and per paired run:")
    ours = [row for row in results if row["impl"] == "regimen" and row["sampler"] == "tpe"]
    theirs = [row for row in results if row["impl"] == "optuna" and row["sampler"] == "tpe"]
    for n in (50, 100):
        b, w, t = per_function(ours, theirs, n)
        print(f"  @{n}: Regimen TPE better on {b}, worse on {w}, tied on {t} of {len(NAMES)} functions")
    for n in (50, 100):
        b, w, t = paired(ours, theirs, n)
        print(f"  @{n}, paired runs: Regimen TPE better in {b}, worse in {w}, tied in {t} of {len(ours)} (sign test p = {sign_test(b, w):.2g})")
    print(f"\n{'fn':<10} | {'regimen tpe @100':>16} | {'optuna tpe @100':>15} | {'regimen rnd @100':>16} | {'optuna rnd @100':>15}")
    for name in NAMES:
        cells = []
        for impl, kind in (("regimen", "tpe"), ("optuna", "tpe"), ("regimen", "random"), ("optuna", "random")):
            cells.append(
                statistics.mean(
                    row["regret_100"] for row in results if row["impl"] == impl and row["sampler"] == kind and row["problem"] == name
                )
            )
        print(f"{name:<10} | {cells[0]:>16.4f} | {cells[1]:>15.4f} | {cells[2]:>16.4f} | {cells[3]:>15.4f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regimen", required=True, help="the built sweep_bench example")
    parser.add_argument("--out", default="bench/out", help="folder for raw JSON lines and temporary stores")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--optuna-trials", type=int, default=10000, help="Optuna overhead trials (see above)")
    parser.add_argument("--repeat", type=int, default=3, help="Regimen overhead runs per size (median shown)")
    parser.add_argument("--store-dir", help="where the overhead stores live (default: --out)")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-zoom", action="store_true", help="leave out (c)")
    parser.add_argument("--zoom-after", type=int, default=50, help="(c): trials before the zoom")
    parser.add_argument("--top-k", type=int, default=5, help="(c): trials the zoom spans")
    parser.add_argument("--margin", type=float, default=0.25, help="(c): margin of the zoom")
    args = parser.parse_args()

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    os.makedirs(args.out, exist_ok=True)
    args.store_dir = args.store_dir or args.out
    os.makedirs(args.store_dir, exist_ok=True)
    print(f"optuna {optuna.__version__}; TPESampler defaults (multivariate for single-objective, n_startup_trials=10, n_ei_candidates=24)")
    if not args.skip_overhead:
        with open(os.path.join(args.out, "sweep_overhead.jsonl"), "w") as out:
            overhead(args, out)
    if not args.skip_quality:
        with open(os.path.join(args.out, "sweep_quality.jsonl"), "w") as out:
            quality(args, out)


if __name__ == "__main__":
    main()
