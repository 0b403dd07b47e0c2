"""TensorBoard's side of the logging benchmark: `SummaryWriter.add_scalar` per point, then `close`.

    python tensorboard_log.py [--points N] [--measure N]

Uses PyTorch's `torch.utils.tensorboard.SummaryWriter`, the one training loops use, with its
defaults, writing an event file in a fresh temporary folder. `add_scalar` builds the protobuf
event and queues it for the writer's background thread, so the hot-path cost per point is the
loop's time; the sustained rate counts until `close` returns, when every event is in the file.
`close` flushes to the operating system but does not fsync, so unlike Regimen's numbers these do
not include making the data durable.

`--measure N` logs only N points and extrapolates the total time to `--points` linearly: the line
printed says `"extrapolated": true`.
"""

import argparse
import tempfile
import time

from workload import KEYS, folder_bytes, report, steps_for, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000, help="points the table reports (default 1,000,000)")
    parser.add_argument("--measure", type=int, default=None, help="points actually logged (default: --points)")
    args = parser.parse_args()
    measured = steps_for(args.measure or args.points) * len(KEYS)

    import tensorboard
    import torch
    from torch.utils.tensorboard import SummaryWriter

    with tempfile.TemporaryDirectory(prefix="regimen-bench-tensorboard-") as workdir:
        writer = SummaryWriter(log_dir=workdir)
        began = time.perf_counter()
        for step in range(measured // len(KEYS)):
            for k, key in enumerate(KEYS):
                writer.add_scalar(key, value(step, k), step)
        logged = time.perf_counter()
        writer.close()
        ended = time.perf_counter()
        report(
            "tensorboard",
            f"event file (torch {torch.__version__} SummaryWriter, tensorboard {tensorboard.__version__}), no fsync",
            args.points,
            measured,
            logged - began,
            ended - began,
            bytes=folder_bytes(workdir),
        )


if __name__ == "__main__":
    main()
