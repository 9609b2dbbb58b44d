"""The models of ml/models written with torch.nn, layer for layer, with the parameter names and layouts that
`lth export` writes: load an exported file with

    import safetensors, safetensors.torch, lth_models
    with safetensors.safe_open("run-weights.torch.safetensors", framework="pt") as f:
        metadata = f.metadata()
    model = lth_models.build(metadata)
    model.load_state_dict(safetensors.torch.load_file("run-weights.torch.safetensors"))

Inputs are NCHW [B, 1, 28, 28] float32 images scaled as the project's datasets are. bench/peer.ts checks, before it
times anything, that each model here gives the logits ours give from the same (exported) weights.
"""

import json

import torch
import torch.nn.functional as F
from torch import nn


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 300), nn.Linear(300, 100), nn.Linear(100, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class ConvNet(nn.Module):
    """conv.ts: 3x3 'same' convolutions in blocks, a 2x2 max pool after each block, dense layers on the map."""

    def __init__(self, blocks, hidden, pool_before_relu=False, side=28, channels=1, classes=10):
        super().__init__()
        self.convs, self.pool_after, c = nn.ModuleList(), [], channels
        for block in blocks:
            for j, out in enumerate(block):
                self.convs.append(nn.Conv2d(c, out, 3, padding=1))
                self.pool_after.append(j == len(block) - 1)
                c = out
            side //= 2
        widths = [side * side * c, *hidden, classes]
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
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.query, self.key, self.value, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, h):
        b, t, d = h.shape
        n = self.norm1(h)
        split = lambda m: m(n).view(b, t, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        a = F.scaled_dot_product_attention(split(self.query), split(self.key), split(self.value))
        h = h + self.out(a.transpose(1, 2).reshape(b, t, d))
        return h + self.fc2(F.gelu(self.fc1(self.norm2(h))))


class Vit(nn.Module):
    """vit.ts: p x p patches, a class token and one distillation token per teacher, pre-norm blocks, a final
    LayerNorm, one head per token; the prediction averages the heads' probabilities (or is the class head's)."""

    def __init__(self, patch=4, dim=64, depth=4, heads=4, mlpRatio=2, distillTokens=0, predict="average",
                 featureChannels=None, dropout=None, dropPath=None):
        super().__init__()
        self.patch, self.grid, self.predict = patch, 28 // patch, predict
        tokens = 1 + distillTokens
        self.embed = nn.Linear(patch * patch, dim)
        self.tokens = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.position = nn.Parameter(torch.randn(1, tokens + self.grid * self.grid, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, int(dim * mlpRatio)) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.heads = nn.ModuleList(nn.Linear(dim, 10) for _ in range(tokens))
        # Feature distillation's projection of the patch tokens: trained with the student, unused by the prediction.
        self.features = nn.Linear(dim, featureChannels) if featureChannels else None

    def forward(self, x):
        b, p, g = x.shape[0], self.patch, self.grid
        patches = x.view(b, g, p, g, p).permute(0, 1, 3, 2, 4).reshape(b, g * g, p * p)
        h = torch.cat([self.tokens.expand(b, -1, -1), self.embed(patches)], 1) + self.position
        for block in self.blocks:
            h = block(h)
        h = self.norm(h)
        logits = [head(h[:, t]) for t, head in enumerate(self.heads)]
        if len(logits) == 1 or self.predict == "class":
            return logits[0]
        probs = torch.stack([F.softmax(z, -1) for z in logits]).mean(0)
        return torch.log(probs + 1e-30)


MODELS = {
    "lenet-300-100": LeNet,
    "conv-2": lambda: ConvNet([[64, 64]], [256, 256]),
    "conv-4": lambda: ConvNet([[64, 64], [128, 128]], [256, 256]),
    "conv-6": lambda: ConvNet([[64, 64], [128, 128], [256, 256]], [256, 256]),
    "cnn-teacher": lambda: ConvNet([[32], [64]], [128], pool_before_relu=True),
    "involution-teacher": InvolutionNet,
    "vit-tiny": Vit,
}


def build(metadata):
    """The model an exported file's metadata names (`model`, and `config` for a ViT), freshly initialised."""
    if metadata.get("config"):
        return Vit(**json.loads(metadata["config"]))
    return MODELS[metadata["model"]]()
