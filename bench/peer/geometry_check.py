"""The Hessian of an exported level as PyTorch's autograd computes it: double backward in float64 (the reference of
bench/geometry.ts --check-torch). Reads the level's weights and masks (the files `lth export` writes: PyTorch's names
and layouts), the images and labels, and the Hutchinson probes lth used; prints one JSON line:
{"eigenvalues": [...], "iterations": [...], "traceSamples": [...], "seconds": s, "torch": version}.

The Hessian is that of the mean cross-entropy over the images, restricted to the free (unpruned) coordinates:
H_free = M H M with M the mask, as ml/geometry works in the mask's subspace. Eigenvalues of largest magnitude by power
iteration with deflation (PyHessian's method), each from a seeded start, until the Rayleigh quotient changes by less
than `tol` relative.
"""

import json
import sys
import time

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

from lth_models import build


def main():
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(spec.get("threads", 2))
    torch.manual_seed(spec.get("seed", 0))
    started = time.perf_counter()
    with safe_open(spec["weights"], framework="pt") as f:
        model = build(f.metadata())
    model.load_state_dict(load_file(spec["weights"]))
    model = model.double().eval()
    names = [n for n, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    stored_masks = load_file(spec["masks"])
    masks = [stored_masks[n].double() for n in names]
    images = torch.frombuffer(bytearray(open(spec["images"], "rb").read()), dtype=torch.float32)
    images = images.view(-1, 1, 28, 28).double()
    labels = torch.frombuffer(bytearray(open(spec["labels"], "rb").read()), dtype=torch.int32).long()

    loss = F.cross_entropy(model(images), labels)
    grads = torch.autograd.grad(loss, params, create_graph=True)

    def hvp(v):
        hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)
        return [h * m for h, m in zip(hv, masks)]

    def dot(a, b):
        return sum((x * y).sum() for x, y in zip(a, b)).item()

    def normalized(v):
        n = dot(v, v) ** 0.5
        return [x / n for x in v]

    found = []
    iterations = []
    for _ in range(spec["k"]):
        v = normalized([torch.randn_like(p) * m for p, m in zip(params, masks)])
        previous = None
        value = 0.0
        for it in range(1, spec["maxIterations"] + 1):
            for u in found:
                c = dot(v, u[1])
                v = [x - c * y for x, y in zip(v, u[1])]
            v = normalized(v)
            hv = hvp(v)
            value = dot(v, hv)
            converged = previous is not None and abs(value - previous) <= spec["tol"] * abs(previous)
            previous = value
            v = normalized(hv)
            if converged:
                break
        for u in found:
            c = dot(v, u[1])
            v = [x - c * y for x, y in zip(v, u[1])]
        found.append((value, normalized(v)))
        iterations.append(it)

    probes = load_file(spec["probes"])
    samples = []
    for i in range(spec["probeCount"]):
        v = [probes[f"probe{i}/{n}"].double() for n in names]
        samples.append(dot(v, hvp(v)))

    print(
        json.dumps(
            {
                "eigenvalues": [e for e, _ in found],
                "iterations": iterations,
                "traceSamples": samples,
                "seconds": time.perf_counter() - started,
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
