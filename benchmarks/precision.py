"""float32 against float16 (mixed precision) on the CPU: the time of a training step, and the
loss a short seeded run reaches in each.

    python benchmarks/precision.py                                   # tiny, 1 thread
    python benchmarks/precision.py --config small --rounds 3 --steps 10  # ~6 min: float16 is slow
    python benchmarks/precision.py --device gpu --config small,medium --steps 100  # CuPy

The model is the benchmark LM of configs.py (causal, post-LN, ReLU, Adam, dropout 0). Each
step is the Trainer's own ``train_step`` with ``precision="float32"`` or ``"float16"`` (float16
copies of the float32 weights, the loss scaled, the gradients unscaled and checked), so the
float16 time includes everything mixed precision adds.

- step time: each round times one step of each precision on the same batch, the order
  alternating round by round; the ratio is the median of the per-round ratios float16/float32
  (a burst of load from another process slows both steps of a round alike);
- final loss: each precision trains a fresh model (same initial weights) for ``--steps`` steps
  on the same seeded batches of a task it can learn (tokens that step +1 or +2 at random,
  modulo the vocabulary: the best loss is ln 2 ≈ 0.693); the mean loss of the last 5 steps.

NumPy has no float16 BLAS: its float16 matrix products run a plain loop, so on the CPU the
float16 step is many times slower than the float32 one. The point of float16 is a GPU.
"""

import argparse
import os
import sys
import time

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
PRECISIONS = ("float32", "float16")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="tiny",
                        help="tiny, small or medium, or a comma-separated list (default tiny)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads (default 1)")
    parser.add_argument("--rounds", type=int, default=10, help="timed rounds (default 10)")
    parser.add_argument("--steps", type=int, default=30,
                        help="steps of the seeded run whose final loss is printed (default 30)")
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam's learning rate")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                        help="cpu (NumPy) or gpu (CuPy); each step ends in loss.item(), which "
                             "waits for the GPU, so the times are whole steps")
    return parser.parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()
    for variable in THREAD_VARIABLES:  # before NumPy (and its BLAS) is first imported
        os.environ[variable] = str(ARGS.threads)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import minitransformer as mt  # noqa: E402
import minitransformer.functional as F  # noqa: E402
from configs import CONFIGS, build_model  # noqa: E402
from minitransformer import optim  # noqa: E402
from minitransformer.train import TrainConfig, Trainer  # noqa: E402


def load_average():
    """The 1, 5 and 15 minute load averages (/proc/loadavg's first three fields)."""
    return "load average {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


def random_walk_batches(config, seed=0):
    """batches(epoch) -> 8 batches (B, T + 1) of ids that step +1 or +2 (mod vocab) at random."""
    batch, length, vocab = config["batch"], config["seq_len"] + 1, config["vocab"]

    def batches(epoch):
        rng = np.random.default_rng(seed * 1000 + epoch)
        result = []
        for _ in range(8):
            start = rng.integers(0, vocab, (batch, 1))
            steps = rng.integers(1, 3, (batch, length - 1))
            result.append(mt.tensor(np.concatenate([start, start + np.cumsum(steps, 1)], 1)
                                    % vocab))  # (B, T + 1)
        return result

    return batches


def lm_loss(model, ids):
    logits = model(ids[:, :-1])  # (B, T, V)
    return F.cross_entropy(logits, ids[:, 1:], reuse_logits=True), \
        ids.shape[0] * (ids.shape[1] - 1)


def trainer_for(config, precision, steps, lr):
    mt.manual_seed(0)
    model = build_model(config)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    return Trainer(model, optimizer, lm_loss, random_walk_batches(config),
                   TrainConfig(steps=steps, log_every=1, precision=precision, progress=False))


def time_steps(config, rounds, lr):
    """Median ms per step of each precision and the median per-round ratio float16/float32."""
    trainers = {p: trainer_for(config, p, rounds + 1, lr) for p in PRECISIONS}
    fixed = random_walk_batches(config)(0)[:1]
    for trainer in trainers.values():  # every step sees the same batch
        trainer.batches = lambda epoch: fixed
        trainer.train_step()  # warm-up: first allocations, the float16 copies
    times = {p: [] for p in PRECISIONS}
    for round_number in range(rounds):
        order = PRECISIONS if round_number % 2 == 0 else PRECISIONS[::-1]
        for precision in order:
            start = time.perf_counter()
            trainers[precision].train_step()
            times[precision].append(time.perf_counter() - start)
    ratios = [b / a for a, b in zip(times["float32"], times["float16"])]
    return ({p: 1e3 * float(np.median(times[p])) for p in PRECISIONS},
            float(np.median(ratios)))


def final_loss(config, precision, steps, lr):
    """Mean loss of the last 5 steps of a seeded run, and its skipped steps (float16)."""
    trainer = trainer_for(config, precision, steps, lr)
    history = trainer.fit()
    skipped = trainer.scaler.skipped_steps if trainer.scaler is not None else 0
    return float(np.mean([row["loss"] for row in history[-5:]])), history[0]["loss"], skipped


def main(args):
    with mt.use_backend("cupy" if args.device == "gpu" else "numpy"):
        measure(args)


def measure(args):
    started = time.perf_counter()
    print(f"precision benchmark on the {args.device}: {args.threads} thread(s), {args.rounds} "
          "timed rounds, "
          f"{args.steps}-step runs, lr {args.lr}; NumPy {np.__version__}; {load_average()}")
    print("| config | float32 ms | float16 ms | float16 / float32 | first loss | "
          "final loss float32 | final loss float16 | difference | skipped (float16) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.config.split(","):
        config = CONFIGS[name]
        milliseconds, ratio = time_steps(config, args.rounds, args.lr)
        loss32, first, _ = final_loss(config, "float32", args.steps, args.lr)
        loss16, _, skipped = final_loss(config, "float16", args.steps, args.lr)
        print(f"| {name} | {milliseconds['float32']:.1f} | {milliseconds['float16']:.1f} | "
              f"{ratio:.1f} | {first:.3f} | {loss32:.4f} | {loss16:.4f} | "
              f"{(loss16 - loss32) / loss32:+.2%} | {skipped} |", flush=True)
    print(f"wall time {time.perf_counter() - started:.0f} s; {load_average()}")


if __name__ == "__main__":
    main(ARGS)
