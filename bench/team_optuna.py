"""Optuna's side of the team-store benchmark (bench/team.sh): trial throughput of N worker
processes sharing one study in Optuna's RDB storage on PostgreSQL.

Each process loops for the given seconds: ask a trial (RandomSampler, one log-uniform float, so
that the storage and not a sampler is measured), then tell it complete. This is the same work per
trial as Regimen's worker loop in team-store: read the study's state, create and claim a trial,
record its value. Prints one JSON object.
"""

import argparse
import json
import multiprocessing
import time

import optuna


def work(url, study_name, seconds, out):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(url)
    study = optuna.load_study(study_name=study_name, storage=storage, sampler=optuna.samplers.RandomSampler())
    deadline = time.perf_counter() + seconds
    done = 0
    while time.perf_counter() < deadline:
        trial = study.ask()
        study.tell(trial, trial.suggest_float("lr", 1e-4, 1e-1, log=True))
        done += 1
    out.put(done)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True, help="postgresql+psycopg2://user@host:port/db")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(study_name="bench", storage=args.url, direction="maximize")
    out = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=work, args=(args.url, "bench", args.seconds, out)) for _ in range(args.workers)]
    for w in workers:
        w.start()
    trials = sum(out.get() for _ in workers)
    for w in workers:
        w.join()
    # Each worker counted the trials it finished within its own window of `seconds`.
    print(json.dumps({"measure": "claims", "backend": f"optuna {optuna.__version__} RDB on postgres",
                      "workers": args.workers, "trials": trials, "trials_per_s": trials / args.seconds}))


if __name__ == "__main__":
    main()
