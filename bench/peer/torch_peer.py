"""The PyTorch peer of bench/peer.ts: the same models as ml/models, trained with the same batch, optimizer and
step policy as bench/backends.ts times ours, on the same images. One configuration per process (the thread count
is per process); prints one JSON line: {"samplesPerSec", "steps", "seconds", "warmupSteps", "threads", "torch"}.

    .tools/peer/bin/python bench/peer/torch_peer.py '{"model": "conv-2", "threads": 1, "batch": 128,
        "lr": 0.01, "images": ".data/peer/mnist-10k.f32", "labels": ".data/peer/mnist-10k.i32"}'

The architectures follow ml/models (conv.ts, teachers.ts, vit.ts, ml/ops/involution.ts) layer for layer, written
as a PyTorch user would: nn.Conv2d/nn.Linear, F.unfold for involution, F.scaled_dot_product_attention.
"""

import json
import math
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

# The step policy of bench/backends.ts, so both sides time the same way.
WARMUP_STEPS, WARMUP_SECONDS, WARMUP_CAP_SECONDS = 3, 1.0, 2.0
MIN_STEPS, MIN_SECONDS, MAX_STEPS, CAP_SECONDS = 10, 4.0, 2000, 5.0


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 300), nn.Linear(300, 100), nn.Linear(100, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class ConvNet(nn.Module):
    """conv.ts: 3x3 'same' convolutions in blocks, a 2x2 max pool after each block, dense layers on the map."""

    def __init__(self, blocks, hidden, pool_before_relu=False):
        super().__init__()
        self.convs, self.pool_after, c, side = nn.ModuleList(), [], 1, 28
        for block in blocks:
            for j, out in enumerate(block):
                self.convs.append(nn.Conv2d(c, out, 3, padding=1))
                self.pool_after.append(j == len(block) - 1)
                c = out
            side //= 2
        widths = [side * side * c, *hidden, 10]
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
        self.pool_before_relu = pool_before_relu

    def forward(self, x):
        for conv, pool in zip(self.convs, self.pool_after):
            z = conv(x)
            if not pool:
                x = F.relu(z)
            elif self.pool_before_relu:
                x = F.relu(F.max_pool2d(z, 2))
            else:
                x = F.max_pool2d(F.relu(z), 2)
        x = x.flatten(1)
        for i, fc in enumerate(self.fcs):
            x = fc(x)
            if i < len(self.fcs) - 1:
                x = F.relu(x)
        return x


class Involution(nn.Module):
    """ml/ops/involution.ts: per-pixel kernels relu(rms(W1 x + b1)) -> W2 (G*K*K taps), aggregated over K x K."""

    def __init__(self, channels, kernel, groups, reduction):
        super().__init__()
        self.k, self.g = kernel, groups
        self.reduce = nn.Conv2d(channels, channels // reduction, 1)
        self.span = nn.Conv2d(channels // reduction, groups * kernel * kernel, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        t = self.reduce(x)
        t = F.relu(t * torch.rsqrt(t.pow(2).mean(1, keepdim=True) + 1e-5))
        kernel = self.span(t).view(n, self.g, 1, self.k * self.k, h, w)
        patches = F.unfold(x, self.k, padding=(self.k - 1) // 2).view(n, self.g, c // self.g, self.k * self.k, h, w)
        return (kernel * patches).sum(3).view(n, c, h, w)


class InvolutionNet(nn.Module):
    """teachers.ts involution-teacher: stem conv 32, pool, relu; x + involution then 1x1 (pool), relu; FC 128-10."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 32, 3, padding=1)
        self.inv1, self.mix1 = Involution(32, 3, 4, 4), nn.Conv2d(32, 64, 1)
        self.inv2, self.mix2 = Involution(64, 3, 8, 4), nn.Conv2d(64, 64, 1)
        self.fc1, self.fc2 = nn.Linear(7 * 7 * 64, 128), nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.stem(x), 2))
        x = F.relu(F.max_pool2d(self.mix1(x + self.inv1(x)), 2))
        x = F.relu(self.mix2(x + self.inv2(x)))
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.query, self.key, self.value, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(dim, dim * mlp_ratio), nn.Linear(dim * mlp_ratio, dim)

    def forward(self, h):
        b, t, d = h.shape
        n = self.norm1(h)
        split = lambda m: m(n).view(b, t, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        a = F.scaled_dot_product_attention(split(self.query), split(self.key), split(self.value))
        h = h + self.out(a.transpose(1, 2).reshape(b, t, d))
        return h + self.fc2(F.gelu(self.fc1(self.norm2(h))))


class Vit(nn.Module):
    """vit.ts vit-tiny: 4x4 patches, dim 64, depth 4, 4 heads, MLP ratio 2, a class token, pre-norm blocks."""

    def __init__(self, patch=4, dim=64, depth=4, heads=4, mlp_ratio=2):
        super().__init__()
        self.patch, self.grid = patch, 28 // patch
        self.embed = nn.Linear(patch * patch, dim)
        self.token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.position = nn.Parameter(torch.randn(1, 1 + self.grid * self.grid, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, 10)

    def forward(self, x):
        b, p, g = x.shape[0], self.patch, self.grid
        patches = x.view(b, g, p, g, p).permute(0, 1, 3, 2, 4).reshape(b, g * g, p * p)
        h = torch.cat([self.token.expand(b, -1, -1), self.embed(patches)], 1) + self.position
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h[:, 0]))


MODELS = {
    "lenet-300-100": LeNet,
    "conv-2": lambda: ConvNet([[64, 64]], [256, 256]),
    "conv-4": lambda: ConvNet([[64, 64], [128, 128]], [256, 256]),
    "cnn-teacher": lambda: ConvNet([[32], [64]], [128], pool_before_relu=True),
    "involution-teacher": InvolutionNet,
    "vit-tiny": Vit,
}


def main():
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(1)
    images = torch.frombuffer(bytearray(open(spec["images"], "rb").read()), dtype=torch.float32).view(-1, 1, 28, 28)
    labels = torch.frombuffer(bytearray(open(spec["labels"], "rb").read()), dtype=torch.int32).long()
    model = MODELS[spec["model"]]()
    if spec.get("count"):
        # bench/peer.ts compares this with ml/models before timing anything: the same architecture, parameter for parameter.
        print(json.dumps({"params": sum(p.numel() for p in model.parameters())}))
        return
    opt = torch.optim.SGD(model.parameters(), lr=spec["lr"], momentum=0.9)
    batch, n = spec["batch"], images.shape[0]
    order = torch.randperm(n)
    cursor = [0]

    def step():
        if cursor[0] + batch > n:
            cursor[0] = 0
        idx = order[cursor[0] : cursor[0] + batch]
        cursor[0] += batch
        loss = F.cross_entropy(model(images[idx]), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    w0, warmup = time.perf_counter(), 0
    while True:
        s = time.perf_counter() - w0
        if warmup >= 1 and ((warmup >= WARMUP_STEPS and s >= WARMUP_SECONDS) or s >= WARMUP_CAP_SECONDS):
            break
        step()
        warmup += 1
    t0, steps = time.perf_counter(), 0
    while True:
        loss = step()
        steps += 1
        s = time.perf_counter() - t0
        if steps >= MAX_STEPS or (steps >= MIN_STEPS and s >= MIN_SECONDS) or s >= CAP_SECONDS:
            break
    value = loss.item()
    seconds = time.perf_counter() - t0
    if not math.isfinite(value):
        raise SystemExit(f"training diverged (loss {value})")
    print(
        json.dumps(
            {
                "samplesPerSec": steps * batch / seconds,
                "steps": steps,
                "seconds": seconds,
                "warmupSteps": warmup,
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
