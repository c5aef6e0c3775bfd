"""GPU training throughput: one training step of the medium benchmark model on CuPy, and on
PyTorch eager CUDA where torch with CUDA is installed; prints tokens/s and their ratio.

    python benchmarks/gpu.py --config medium --steps 30

Synchronisation happens only around the timed region (and every step for the timing itself).
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from configs import CONFIGS, build_model  # noqa: E402


def time_ours(config, steps, warmup=3):
    import cupy

    import minitransformer as mt
    import minitransformer.functional as F

    mt.set_backend("cupy")
    mt.manual_seed(0)
    model = build_model(config)
    optimizer = mt.optim.Adam(model.parameters(), lr=1e-4)
    rng = cupy.random.default_rng(0)
    ids = mt.Tensor._from_array(rng.integers(0, config["vocab"],
                                             (config["batch"], config["seq_len"] + 1)))
    inputs, targets = ids[:, :-1], ids[:, 1:]
    times = []
    for step in range(warmup + steps):
        cupy.cuda.Device().synchronize()
        start = time.perf_counter()
        loss = F.cross_entropy(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        cupy.cuda.Device().synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def time_torch(config, steps, warmup=3):
    import torch

    if not torch.cuda.is_available():
        return None
    layer = torch.nn.TransformerEncoderLayer(config["d_model"], config["n_heads"], config["d_ff"],
                                             dropout=0.0, batch_first=True)
    body = torch.nn.TransformerEncoder(layer, config["n_layers"], enable_nested_tensor=False)
    embed = torch.nn.Embedding(config["vocab"], config["d_model"])
    positions = torch.nn.Parameter(torch.zeros(config["seq_len"], config["d_model"]))
    head = torch.nn.Linear(config["d_model"], config["vocab"])
    modules = torch.nn.ModuleList([body, embed, head]).cuda()
    positions = positions.cuda()
    optimizer = torch.optim.Adam(list(modules.parameters()) + [positions], lr=1e-4)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(config["seq_len"]).cuda()
    ids = torch.randint(0, config["vocab"], (config["batch"], config["seq_len"] + 1)).cuda()
    times = []
    for step in range(warmup + steps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        hidden = body(embed(ids[:, :-1]) + positions, mask=mask, is_causal=True)
        logits = head(hidden)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, config["vocab"]),
                                                 ids[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="medium")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    config = CONFIGS[args.config]
    tokens = config["batch"] * config["seq_len"]
    ours = time_ours(config, args.steps)
    try:
        theirs = time_torch(config, args.steps)
    except ImportError:
        theirs = None
    result = {"config": args.config, "ours_ms": ours * 1e3, "ours_tokens_per_s": tokens / ours}
    print(f"{args.config}: minitransformer on CuPy {ours * 1e3:.1f} ms/step, "
          f"{tokens / ours:,.0f} tokens/s")
    if theirs is not None:
        result.update(torch_ms=theirs * 1e3, torch_tokens_per_s=tokens / theirs,
                      throughput_ratio=theirs / ours)
        print(f"{args.config}: PyTorch eager CUDA {theirs * 1e3:.1f} ms/step, "
              f"{tokens / theirs:,.0f} tokens/s; ours / theirs throughput {theirs / ours:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
