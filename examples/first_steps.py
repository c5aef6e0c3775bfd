"""First steps with minitransformer: tensors, backpropagation, a gradient check, and a small
network trained with nothing but the core (the parameters are plain tensors).

The task: tell apart the two arms of an interleaved spiral, which no straight line can do.
The network: x -> tanh(x W1 + b1) -> logits = h W2 + b2, trained by gradient descent on the
cross-entropy, the loss a Transformer's classifier head uses too.

    python examples/first_steps.py            # a few seconds on a laptop
"""

import os
import time

import numpy as np

import minitransformer as mt
import minitransformer.functional as F

FAST = os.environ.get("MINITRANSFORMER_FAST") == "1"


def spiral(points_per_arm, seed=0):
    """Two interleaved spirals: inputs (2N, 2) float32 and labels (2N,) of 0 and 1."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.5, 3 * np.pi, points_per_arm)
    arms = [np.stack([t * np.cos(t + k * np.pi), t * np.sin(t + k * np.pi)], axis=1) / (3 * np.pi)
            for k in (0, 1)]
    x = np.concatenate(arms) + 0.02 * rng.standard_normal((2 * points_per_arm, 2))
    y = np.repeat([0, 1], points_per_arm)
    return mt.tensor(x.astype(np.float32)), mt.tensor(y)


def forward(params, x):
    """Logits (N, 2) of the two-layer network."""
    w1, b1, w2, b2 = params
    hidden = (x @ w1 + b1).tanh()  # (N, H)
    return hidden @ w2 + b2  # (N, 2)


def main():
    # 1. Tensors and backpropagation: d/dx of sum(x²) is 2x.
    x = mt.tensor([1.0, -2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    print("x =", x.numpy(), " d/dx sum(x²) =", x.grad)

    # 2. A gradient check: backpropagation against central differences, in float64.
    mt.manual_seed(0)
    logits = mt.randn(4, 3, dtype="float64")
    targets = mt.tensor([0, 2, 1, 2])
    mt.gradcheck(lambda z: F.cross_entropy(z, targets, label_smoothing=0.1), logits)
    print("gradcheck of cross_entropy: passed")

    # 3. Train a small network on the spiral.
    inputs, labels = spiral(300)
    hidden, steps, lr = 64, 1500 if FAST else 3000, 0.5
    mt.manual_seed(0)
    params = [
        (mt.randn(2, hidden) * 3.0).detach(),
        mt.zeros(hidden),
        (mt.randn(hidden, 2) / hidden**0.5).detach(),
        mt.zeros(2),
    ]
    for p in params:
        p.requires_grad = True

    start = time.perf_counter()
    for step in range(1, steps + 1):
        loss = F.cross_entropy(forward(params, inputs), labels)
        for p in params:
            p.zero_grad()
        loss.backward()
        with mt.no_grad():
            for p in params:
                p.data -= lr * p.grad  # plain gradient descent, on the raw arrays
        if step % (steps // 5) == 0:
            with mt.no_grad():
                predicted = forward(params, inputs).numpy().argmax(axis=1)
            accuracy = (predicted == labels.numpy()).mean()
            print(f"step {step:5d}   loss {loss.item():.4f}   accuracy {accuracy:.1%}")
    seconds = time.perf_counter() - start
    print(f"trained {steps} steps in {seconds:.1f} s; final accuracy {accuracy:.1%}")
    return accuracy


if __name__ == "__main__":
    main()
