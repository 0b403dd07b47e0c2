#!/usr/bin/env python3
"""PyTorch side of Regimen's training-throughput benchmark.

Trains the benchmark MLP (784-512-512-10, ReLU, batch 128) and CNN
(conv3x3/32 pad1 - BN - ReLU - maxpool2, conv3x3/64 pad1 - BN - ReLU - maxpool2,
linear 64*7*7 -> 10; batch 64) and ResNet (Regimen's `--model resnet`: depth 2, width 16,
3x32x32, batch 64) with Adam (lr 1e-3) and cross-entropy on random
in-memory data, on the CPU, and prints one JSON line per model:

  {"impl":"pytorch","model":"mlp","batch":128,"steps":..,"seconds":..,"samples_per_sec":..,"threads":T}

Arguments mirror bench/burn-bare (--model, --threads, --warmup, --steps, --seed, --mode).
--mode layers times each layer in isolation (forward, and forward + sum().backward()),
matching burn-bare's --mode layers; --mode phases splits the timed steps into phases.
"""

import argparse
import json
import os
import sys
import time

import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
import torch.nn as nn
import torch.nn.functional as F

CLASSES = 10
POOL = 4  # distinct random batches generated up front and cycled through
LR = 1e-3


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 512)
        self.fc2 = nn.Linear(512, 512)
        self.fc3 = nn.Linear(512, CLASSES)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(64)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc = nn.Linear(64 * 7 * 7, CLASSES)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = self.pool(F.relu(self.bn2(self.conv2(x))))
        return self.fc(x.flatten(1))


class Block(nn.Module):
    """Regimen's BasicBlock: conv3x3-BN-ReLU, conv3x3-BN, plus a 1x1-conv-BN projection when the
    shape changes, then ReLU; convolutions without bias."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.proj = None
        if stride != 1 or cin != cout:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        shortcut = x if self.proj is None else self.proj(x)
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + shortcut)


class ResNet(nn.Module):
    """Regimen's `--model resnet` with its defaults (depth 2, width 16: 14 layers) on 3x32x32."""

    def __init__(self, depth=2, width=16):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(width)
        blocks, cin = [], width
        for stage in range(3):
            cout = width << stage
            for b in range(depth):
                blocks.append(Block(cin, cout, 2 if stage > 0 and b == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, CLASSES)

    def forward(self, x):
        x = self.blocks(F.relu(self.stem_bn(self.stem(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


SPECS = {
    # model: (constructor, input shape, default warmup, default steps)
    "mlp": (Mlp, (128, 784), 10, 100),
    "cnn": (Cnn, (64, 1, 28, 28), 5, 30),
    "resnet": (ResNet, (64, 3, 32, 32), 3, 20),
}


def make_data(shape, seed, device):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(shape, generator=g).to(device), torch.randint(0, CLASSES, (shape[0],), generator=g).to(device))
        for _ in range(POOL)
    ]


def train(name, warmup, steps, seed, phases, device="cpu"):
    ctor, shape, dw, ds = SPECS[name]
    warmup = dw if warmup is None else warmup
    steps = ds if steps is None else steps
    torch.manual_seed(seed)
    model = ctor().to(device)
    model.train()
    data = make_data(shape, seed, device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    ph = {"forward": 0.0, "loss_read": 0.0, "backward": 0.0, "optim": 0.0}
    loss_v = float("nan")
    start = time.perf_counter()
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        x, y = data[step % POOL]
        if phases and step >= warmup:
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            t1 = time.perf_counter()
            loss_v = loss.item()
            t2 = time.perf_counter()
            loss.backward()
            t3 = time.perf_counter()
            opt.step()
            t4 = time.perf_counter()
            ph["forward"] += t1 - t0
            ph["loss_read"] += t2 - t1
            ph["backward"] += t3 - t2
            ph["optim"] += t4 - t3
        else:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss_v = loss.item()
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    assert loss_v == loss_v, "loss is NaN"
    out = {
        "impl": "pytorch",
        "model": name,
        "batch": shape[0],
        "steps": steps,
        "seconds": round(seconds, 6),
        "samples_per_sec": round(shape[0] * steps / seconds, 2),
        "threads": torch.get_num_threads(),
        "device": device,
        "final_loss": round(loss_v, 5),
        "torch": torch.__version__,
    }
    if phases:
        out["phase_ms"] = {k: round(v * 1e3 / steps, 3) for k, v in ph.items()}
    print(json.dumps(out, separators=(",", ":")), flush=True)


def time_layer(x, needs_grad, f, reps):
    def run(backward):
        xi = x.detach().requires_grad_(needs_grad)
        out = f(xi)
        if backward:
            out.sum().backward()

    res = []
    for backward in (False, True):
        for _ in range(reps // 4 + 1):
            run(backward)
        t = time.perf_counter()
        for _ in range(reps):
            run(backward)
        res.append((time.perf_counter() - t) * 1e3 / reps)
    return res


def layers(name, reps):
    torch.manual_seed(0)
    threads = torch.get_num_threads()

    def emit(layer, r):
        fwd, fb = r
        print(json.dumps({"impl": "pytorch", "kind": "layer", "model": name, "layer": layer,
                          "fwd_ms": round(fwd, 4), "fwd_bwd_ms": round(fb, 4),
                          "bwd_ms": round(fb - fwd, 4), "threads": threads},
                         separators=(",", ":")), flush=True)

    if name == "mlp":
        m = Mlp().train()
        x, h = torch.randn(128, 784), torch.randn(128, 512)
        emit("fc1 784x512", time_layer(x, False, m.fc1, reps))
        emit("fc2 512x512", time_layer(h, True, m.fc2, reps))
        emit("fc3 512x10", time_layer(h, True, m.fc3, reps))
        emit("relu [128,512]", time_layer(h, True, F.relu, reps))
        logits, y = torch.randn(128, CLASSES), torch.randint(0, CLASSES, (128,))
        emit("cross_entropy [128,10]",
             time_layer(logits, True, lambda t: F.cross_entropy(t, y), reps))
    else:
        m = Cnn().train()
        x = torch.randn(64, 1, 28, 28)
        a1, p1, a2 = torch.randn(64, 32, 28, 28), torch.randn(64, 32, 14, 14), torch.randn(64, 64, 14, 14)
        emit("conv1 1->32 28x28", time_layer(x, False, m.conv1, reps))
        emit("bn1 [64,32,28,28]", time_layer(a1, True, m.bn1, reps))
        emit("relu [64,32,28,28]", time_layer(a1, True, F.relu, reps))
        emit("maxpool1 [64,32,28,28]", time_layer(a1, True, m.pool, reps))
        emit("conv2 32->64 14x14", time_layer(p1, True, m.conv2, reps))
        emit("bn2 [64,64,14,14]", time_layer(a2, True, m.bn2, reps))
        emit("relu [64,64,14,14]", time_layer(a2, True, F.relu, reps))
        emit("maxpool2 [64,64,14,14]", time_layer(a2, True, m.pool, reps))
        emit("fc 3136x10", time_layer(torch.randn(64, 3136), True, m.fc, reps))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", "--models", default="mlp,cnn")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--mode", choices=["train", "phases", "layers"], default="train")
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]; the loss is read on the host every step, which syncs")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    # Intra-op only; keep inter-op to one thread like the Burn side (no graph-level parallelism).
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    for name in a.model.split(","):
        if name not in SPECS:
            sys.exit(f"unknown model {name}")
        if a.mode == "layers":
            layers(name, a.reps)
        else:
            train(name, a.warmup, a.steps, a.seed, a.mode == "phases", a.device)


if __name__ == "__main__":
    main()
