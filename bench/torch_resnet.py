"""PyTorch reference for bench/train-speed.ts: trains the same CIFAR ResNet (zero-pad shortcuts, given widths)
on random 28x28x1 batches and prints images per second as JSON. Usage:
  python3 bench/torch_resnet.py --depth 20 --widths 16,32,64,16,... --batch 128 --steps 10 --threads 1 [--device cuda]
"""
import argparse
import resource
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Shortcut(nn.Module):
    """Parameter-free: subsample by stride, then zero-pad or drop channels (prunespace's 'shortcut' node)."""

    def __init__(self, stride, cout):
        super().__init__()
        self.stride, self.cout = stride, cout

    def forward(self, x):
        x = x[:, :, :: self.stride, :: self.stride]
        cin = x.shape[1]
        if cin >= self.cout:
            return x[:, : self.cout]
        return F.pad(x, (0, 0, 0, 0, 0, self.cout - cin))


class Block(nn.Module):
    def __init__(self, cin, inner, cout, stride, shortcut):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, inner, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = Shortcut(stride, cout) if shortcut else nn.Identity()

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNet(nn.Module):
    """Widths in prunespace's group order: stage1, stage2, stage3, then each block's inner width."""

    def __init__(self, depth, widths, channels, classes):
        super().__init__()
        n = (depth - 2) // 6
        stages, inner = widths[:3], widths[3:]
        self.stem = nn.Conv2d(channels, stages[0], 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(stages[0])
        blocks, cin, k = [], stages[0], 0
        for s in range(3):
            for i in range(n):
                stride = 2 if s > 0 and i == 0 else 1
                blocks.append(Block(cin, inner[k], stages[s], stride, s > 0 and i == 0))
                cin, k = stages[s], k + 1
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--widths", required=True)
    p.add_argument("--input", default="28x28x1")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--channels-last", action="store_true", help="kernels and activations in channels-last memory format")
    p.add_argument("--profile", action="store_true", help="also profile --steps more steps: self CPU ms per step by op")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    h, w, c = (int(v) for v in a.input.split("x"))
    dev = torch.device(a.device)
    model = ResNet(a.depth, [int(v) for v in a.widths.split(",")], c, a.classes).to(dev)
    params = sum(p.numel() for p in model.parameters())
    x = torch.randn(a.batch, c, h, w, device=dev)
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    y = torch.randint(0, a.classes, (a.batch,), device=dev)
    # CUDA runs asynchronously: a step is timed up to its completion.
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    model.train()
    times = []
    faults = 0
    for step in range(a.warmup + a.steps):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        sync()
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
            faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    times.sort()
    median = times[len(times) // 2]
    out = {"imagesPerSecond": a.batch / median, "medianStepSeconds": median, "params": params,
           "threads": torch.get_num_threads(), "torch": torch.__version__, "channelsLast": a.channels_last, "faultsPerStep": faults / a.steps}
    if a.profile:
        # The legacy autograd profiler, the one the torch engine's profileStart uses, so the two tables compare.
        with torch.autograd.profiler.profile() as prof:
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t0 = time.perf_counter()
            for _ in range(a.steps):
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()
                opt.step()
            wall = time.perf_counter() - t0
            out["profiledFaultsPerStep"] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / a.steps
        out["profile"] = {e.key: e.self_cpu_time_total / 1000 / a.steps for e in prof.key_averages()}
        out["profiledStepMs"] = 1000 * wall / a.steps
    print(json.dumps(out))


if __name__ == "__main__":
    main()
