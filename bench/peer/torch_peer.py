"""The PyTorch peer of bench/peer.ts: the same models as ml/models, trained with the same batch, optimizer and
step policy as bench/backends.ts times ours, on the same images. One configuration per process (the thread count
is per process); prints one JSON line: {"samplesPerSec", "steps", "seconds", "warmupSteps", "threads", "torch", "peakRssMiB"}.

    .tools/peer/bin/python bench/peer/torch_peer.py '{"model": "conv-2", "threads": 1, "batch": 128,
        "lr": 0.01, "images": ".data/peer/mnist-10k.f32", "labels": ".data/peer/mnist-10k.i32"}'

The architectures are lth_models.py's: ml/models layer for layer, written as a PyTorch user would (nn.Conv2d and
nn.Linear, F.unfold for involution, F.scaled_dot_product_attention).

With "check": {"weights", "images", "logits"} it instead loads the weights `lth export` wrote into the model, runs
it on the images and prints {"maxAbsDiff"} against our logits for them: the two are the same model.
"""

import json
import math
import resource
import sys
import time

import torch
import torch.nn.functional as F

from lth_models import MODELS, build

# The step policy of bench/backends.ts, so both sides time the same way.
WARMUP_STEPS, WARMUP_SECONDS, WARMUP_CAP_SECONDS = 3, 1.0, 2.0
MIN_STEPS, MIN_SECONDS, MAX_STEPS, CAP_SECONDS = 10, 4.0, 2000, 5.0


def check(paths):
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(paths["weights"], framework="pt") as f:
        model = build(f.metadata())
    model.load_state_dict(load_file(paths["weights"]))
    model.eval()
    images = torch.frombuffer(bytearray(open(paths["images"], "rb").read()), dtype=torch.float32).view(-1, 1, 28, 28)
    ours = torch.frombuffer(bytearray(open(paths["logits"], "rb").read()), dtype=torch.float32).view(images.shape[0], -1)
    with torch.no_grad():
        theirs = model(images)
    return {"maxAbsDiff": (theirs - ours).abs().max().item(), "maxAbs": ours.abs().max().item()}


def main():
    spec = json.loads(sys.argv[1])
    if spec.get("check"):
        print(json.dumps(check(spec["check"])))
        return
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(1)
    images = torch.frombuffer(bytearray(open(spec["images"], "rb").read()), dtype=torch.float32).view(-1, 1, 28, 28)
    labels = torch.frombuffer(bytearray(open(spec["labels"], "rb").read()), dtype=torch.int32).long()
    model = MODELS[spec["model"]]()
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
                "peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
