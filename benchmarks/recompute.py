"""Activation recomputation: the memory a training step needs, and the time it costs, with and
without ``recompute=True``.

    python benchmarks/recompute.py                       # medium (4 layers) and deep (8 layers)
    python benchmarks/recompute.py --config tiny --rounds 3

The model is the benchmark LM of configs.py (causal, post-LN, ReLU, Adam, float32) with dropout
0.1, so that recomputation must replay the dropout masks. For each config and each setting:

- kept: the bytes of the arrays the graph keeps for backward once the forward is done (walked
  from the loss), what the chapter's formula predicts;
- activation peak: the highest memory of arrays during forward + backward, above what was
  allocated before the forward (the weights, Adam's moments); NumPy reports every array
  allocation to ``tracemalloc``, so this counts arrays exactly, independent of the allocator;
- step time: the median over ``--rounds`` rounds of one full step (forward, loss, backward,
  Adam), the two settings alternating round by round on the same weights and batch.
"""

import argparse
import os
import sys
import time
import tracemalloc

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402 - after the thread settings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import minitransformer as mt  # noqa: E402
import minitransformer.functional as F  # noqa: E402
from configs import CONFIGS  # noqa: E402
from minitransformer import nn  # noqa: E402

DEEP = {**CONFIGS["medium"], "n_layers": 8}
SIZES = {**CONFIGS, "deep": DEEP}
MIB = 2**20


def build(config, recompute, dropout):
    mt.manual_seed(0)
    return nn.CausalLanguageModel(
        config["vocab"], d_model=config["d_model"], n_heads=config["n_heads"],
        n_layers=config["n_layers"], d_ff=config["d_ff"], dropout=dropout,
        max_len=config["seq_len"], positional="learned", norm_first=False, activation="relu",
        recompute=recompute, tie_weights=False,
    )


def batch(config):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, config["vocab"], (config["batch"], config["seq_len"] + 1))
    return mt.tensor(ids[:, :-1]), mt.tensor(ids[:, 1:])


class Step:
    """One training step of a model: forward, cross-entropy, backward, Adam."""

    def __init__(self, model, inputs, targets):
        self.model, self.inputs, self.targets = model, inputs, targets
        self.optimizer = mt.optim.Adam(model.parameters())

    def loss(self):
        return F.cross_entropy(self.model(self.inputs), self.targets)

    def __call__(self):
        self.optimizer.zero_grad()
        loss = self.loss()
        loss.backward()
        self.optimizer.step()
        return loss.item()


def activation_peak(step):
    """(kept MiB after the forward, peak MiB of forward + backward above the start)."""
    step.optimizer.zero_grad()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        loss = step.loss()
        kept = mt.autograd.saved_bytes(loss)
        loss.backward()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return kept / MIB, (peak - start) / MIB


def measure(name, rounds, dropout):
    config = SIZES[name]
    inputs, targets = batch(config)
    steps = {on: Step(build(config, on, dropout), inputs, targets) for on in (False, True)}
    losses = {}
    for on, step in steps.items():  # warm-up, from the same dropout masks: the same loss
        mt.manual_seed(1)
        losses[on] = step()
    if not np.isclose(losses[False], losses[True], rtol=1e-5):
        raise RuntimeError(f"{name}: the first losses differ ({losses}): not the same work")
    memory = {on: activation_peak(step) for on, step in steps.items()}
    times = {False: [], True: []}
    for round_index in range(rounds):
        for on in ((False, True) if round_index % 2 == 0 else (True, False)):
            start = time.perf_counter()
            steps[on]()
            times[on].append(time.perf_counter() - start)
    ms = {on: 1e3 * float(np.median(values)) for on, values in times.items()}
    ratio = float(np.median(np.divide(times[True], times[False])))
    return {"config": name, "layers": config["n_layers"], "kept": memory, "ms": ms,
            "time_ratio": ratio}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="medium,deep",
                        help=f"comma-separated, of {', '.join(SIZES)} (default: medium,deep)")
    parser.add_argument("--rounds", type=int, default=10, help="timed rounds (default: 10)")
    parser.add_argument("--dropout", type=float, default=0.1, help="default: 0.1")
    args = parser.parse_args(argv)
    names = args.config.split(",")
    unknown = [name for name in names if name not in SIZES]
    if unknown:
        parser.error(f"unknown config {unknown}; expected some of {list(SIZES)}")
    print(f"load average {os.getloadavg()[0]:.2f}; 1 thread; dropout {args.dropout}")
    print("| config | layers | kept for backward MiB (plain / recompute) | activation peak MiB "
          "(plain / recompute) | peak lower by | step ms (plain / recompute) | time ratio |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        row = measure(name, args.rounds, args.dropout)
        (kept_a, peak_a), (kept_b, peak_b) = row["kept"][False], row["kept"][True]
        print(f"| {name} | {row['layers']} | {kept_a:.0f} / {kept_b:.0f} | {peak_a:.0f} / "
              f"{peak_b:.0f} | {1 - peak_b / peak_a:.0%} | {row['ms'][False]:.0f} / "
              f"{row['ms'][True]:.0f} | {row['time_ratio']:.2f} |", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
