"""Python overhead per op: what the framework adds on top of the NumPy call, at tiny sizes.

At (4, 4) the arithmetic is nearly free, so the time left is the cost of the Tensor, the Function
dispatch, the Context and the engine. Later work can keep these numbers low.

    python benchmarks/op_overhead.py            # prints a table in microseconds

Columns: NumPy alone; our forward under no_grad; our forward recording the graph; forward plus
backward of a graph of that one op; and overhead = recorded forward - NumPy.
"""

import argparse
import timeit

import numpy as np

import minitransformer as mt
import minitransformer.functional as F


def best_microseconds(statement, number):
    """The fastest of 7 repeats, per call, in µs (the least disturbed by other load)."""
    return min(timeit.repeat(statement, number=number, repeat=7)) / number * 1e6


def cases(size):
    a_np = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    b_np = np.random.default_rng(1).standard_normal((size, size)).astype(np.float32)
    a, b = mt.tensor(a_np), mt.tensor(b_np)
    ids = mt.tensor([0, 1, 1, 2])
    return [
        ("add", lambda: a_np + b_np, lambda x, y: x + y),
        ("mul", lambda: a_np * b_np, lambda x, y: x * y),
        ("mul by 2.0", lambda: a_np * 2.0, lambda x, y: x * 2.0),
        ("add (4,4)+(4,)", lambda: a_np + b_np[0], lambda x, y: x + y[0]),
        ("matmul", lambda: a_np @ b_np, lambda x, y: x @ y),
        ("exp", lambda: np.exp(a_np), lambda x, y: x.exp()),
        ("sum(axis=-1)", lambda: a_np.sum(axis=-1), lambda x, y: x.sum(axis=-1)),
        ("reshape", lambda: a_np.reshape(-1), lambda x, y: x.reshape(-1)),
        ("transpose", lambda: a_np.T, lambda x, y: x.T),
        ("getitem [ids]", lambda: a_np[[0, 1, 1, 2]], lambda x, y: x[ids]),
        ("softmax", lambda: np.exp(a_np) / np.exp(a_np).sum(-1, keepdims=True),
         lambda x, y: F.softmax(x)),
        ("layer_norm", lambda: (a_np - a_np.mean(-1, keepdims=True)) / a_np.std(-1, keepdims=True),
         lambda x, y: F.layer_norm(x)),
    ], a, b


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4, help="side of the square inputs")
    parser.add_argument("--number", type=int, default=2000, help="calls per timing")
    args = parser.parse_args()
    rows, a, b = cases(args.size)
    leaf_a = mt.tensor(a.numpy(), requires_grad=True)
    leaf_b = mt.tensor(b.numpy(), requires_grad=True)

    def forward_backward(op):
        out = op(leaf_a, leaf_b)
        out.backward(mt.ones_like(out))

    print(f"per-op time at ({args.size}, {args.size}), float32, microseconds (best of 7)")
    header = f"{'op':<16}{'numpy':>8}{'no_grad':>9}{'graph':>8}{'fwd+bwd':>9}{'overhead':>10}"
    print(header)
    print("-" * len(header))
    overheads = []
    for name, numpy_op, op in rows:
        reference = best_microseconds(numpy_op, args.number)
        with mt.no_grad():
            plain = best_microseconds(lambda op=op: op(a, b), args.number)
        recorded = best_microseconds(lambda op=op: op(leaf_a, leaf_b), args.number)
        both = best_microseconds(lambda op=op: forward_backward(op), args.number // 4)
        overheads.append(recorded - reference)
        print(f"{name:<16}{reference:8.2f}{plain:9.2f}{recorded:8.2f}{both:9.2f}"
              f"{recorded - reference:10.2f}")
    print(f"\nmedian overhead of a recorded forward: {np.median(overheads):.2f} µs per op")


if __name__ == "__main__":
    main()
