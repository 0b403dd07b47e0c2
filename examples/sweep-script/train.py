#!/usr/bin/env python3
"""A training script that a Regimen sweep can tune: `regimen sweep run sweep.toml -- python3 train.py --lr {lr}`.

It follows the protocol in docs/sweep-protocol.md: parameters come in on the command line (and in
REGIMEN_PARAMS as JSON), metrics go out as one JSON object per line on stdout, and SIGTERM (a
scheduler stopping the trial) ends it cleanly. The model is a logistic regression trained by
mini-batch SGD on two noisy Gaussian blobs, in plain Python so that it runs anywhere.
"""

import argparse
import json
import math
import os
import random
import signal
import sys


def blobs(count, rng):
    """Two classes: points around (-1, -1) and (1, 1) with unit noise."""
    points = []
    for i in range(count):
        label = i % 2
        centre = 1.0 if label else -1.0
        points.append((centre + rng.gauss(0, 1.2), centre + rng.gauss(0, 1.2), label))
    return points


def evaluate(weights, points):
    loss, correct = 0.0, 0
    for x, y, label in points:
        z = weights[0] * x + weights[1] * y + weights[2]
        p = 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))
        loss -= math.log(max(p if label else 1.0 - p, 1e-12))
        correct += int((p > 0.5) == bool(label))
    return loss / len(points), correct / len(points)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # A scheduler that stops this trial sends SIGTERM: end at once, with a normal exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    rng = random.Random(args.seed)
    train, val = blobs(400, rng), blobs(200, rng)
    weights = [0.0, 0.0, 0.0]
    step = 0
    for epoch in range(1, args.epochs + 1):
        rng.shuffle(train)
        for start in range(0, len(train), args.batch_size):
            batch = train[start : start + args.batch_size]
            grad = [0.0, 0.0, 0.0]
            for x, y, label in batch:
                z = weights[0] * x + weights[1] * y + weights[2]
                error = 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0))) - label
                grad[0] += error * x
                grad[1] += error * y
                grad[2] += error
            weights = [w - args.lr * g / len(batch) for w, g in zip(weights, grad)]
            step += 1
        val_loss, val_acc = evaluate(weights, val)
        # One line per epoch; `epoch` is what a scheduler compares trials at.
        print(json.dumps({"epoch": epoch, "step": step, "val.loss": val_loss, "val.acc": val_acc}), flush=True)

    # The same protocol through the file Regimen names, for metrics computed at the end.
    metrics_file = os.environ.get("REGIMEN_METRICS_FILE")
    if metrics_file:
        with open(metrics_file, "a") as f:
            f.write(json.dumps({"epoch": args.epochs, "step": step, "final.weight_norm": math.hypot(*weights[:2])}) + "\n")


if __name__ == "__main__":
    main()
