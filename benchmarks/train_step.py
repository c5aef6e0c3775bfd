"""One training step (forward, loss, backward, Adam) of the benchmark LM: our framework against a
hand-written NumPy step and PyTorch eager CPU, interleaved in one process on the same weights and
the same batch.

    python benchmarks/train_step.py --config small --threads 1 --rounds 30
    python benchmarks/train_step.py --config tiny,small --threads 2
    python benchmarks/train_step.py --kv-cache                # generation with / without KV cache
    python benchmarks/train_step.py --config small --profile  # cProfile of our step
    python benchmarks/train_step.py --config small --op-times # time in each Function

Each round times one step of each implementation (the order rotates round by round) and one 2-D
float32 GEMM of shape (B·T, D) @ (D, 4D), the matmul ceiling under the same load. The gate numbers
are the medians of the per-round ratios ours/numpy and ours/torch: a burst of load from another
process slows one round of all three alike, which a ratio of medians would not cancel.

Peak RSS is the process maximum, so each implementation's is measured in a fresh subprocess
(``--rss-of``) running a few steps of that implementation alone; "growth" is the peak minus the
maximum reached before the first step (imports, model, batch).

Threads: ``--threads`` sets OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS before NumPy
is imported (below, at module level, when run as a script), and torch.set_num_threads.
PyTorch is optional: it is timed only when importable (``pip install torch==2.13.0``).
"""

import argparse
import os
import sys

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
IMPLEMENTATIONS = ("ours", "numpy", "torch")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="small",
                        help="tiny, small or medium, or a comma-separated list (default small)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP/torch threads")
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds (>= 30 to quote)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocesses")
    parser.add_argument("--kv-cache", action="store_true",
                        help="instead: tokens/s generating 256 tokens with and without KV cache")
    parser.add_argument("--profile", action="store_true",
                        help="instead: cProfile our step at --config (top 15 by cumulative)")
    parser.add_argument("--malloc-no-trim", action="store_true",
                        help="diagnosis (glibc): keep freed memory in the process (no mmap, no "
                             "trim), so no step pays page faults for fresh memory")
    parser.add_argument("--no-hugepage-advice", action="store_true",
                        help="diagnosis (Linux): NUMPY_MADVISE_HUGEPAGE=0, so NumPy does not "
                             "ask for transparent huge pages for its large arrays")
    parser.add_argument("--op-times", action="store_true",
                        help="instead: time every Function's forward and backward inside our "
                             "steps, interleaved with the NumPy reference (and torch)")
    parser.add_argument("--rss-of", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()
    for variable in THREAD_VARIABLES:  # before NumPy (and its BLAS) is first imported
        os.environ[variable] = str(ARGS.threads)
    if ARGS.no_hugepage_advice:  # read by NumPy at import
        os.environ["NUMPY_MADVISE_HUGEPAGE"] = "0"

import cProfile  # noqa: E402
import json  # noqa: E402
import pstats  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_numpy import ReferenceAdam, ReferenceLM, parameters_of  # noqa: E402

import minitransformer as mt  # noqa: E402
import minitransformer.functional as F  # noqa: E402
from configs import CONFIGS, build_model, matmul_flops  # noqa: E402
from minitransformer.decoding import generate  # noqa: E402


def import_torch():
    """torch, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


# ------------------------------------------------------------------------------ machine


def load_average():
    """The 1, 5 and 15 minute load averages, as `uptime` prints them."""
    return "load average {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


def blas_summary():
    """Which BLAS NumPy runs, with its core type and thread count when they can be read."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        summary = "; ".join(f"{i['internal_api']} {i.get('version')} "
                            f"{i.get('architecture', '')} threads={i['num_threads']}"
                            for i in threadpool_info())
    else:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        summary = f"{blas['name']} {blas['version']}"
        core, threads = _openblas_runtime()
        if core:
            summary += f", core {core}, threads={threads}"
    variables = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                 if k in os.environ}
    return summary + (f" ({variables})" if variables else "")


def _openblas_runtime():
    """(core name, threads) from the OpenBLAS that NumPy loaded (scipy-openblas wheels), or
    (None, None). Read with ctypes, for machines without threadpoolctl."""
    import ctypes
    import glob

    libraries = glob.glob(str(Path(np.__file__).parent.parent / "numpy.libs" / "*openblas*"))
    for path in libraries:
        library = ctypes.CDLL(path)
        for suffix in ("64_", ""):
            corename = getattr(library, f"scipy_openblas_get_corename{suffix}", None)
            threads = getattr(library, f"scipy_openblas_get_num_threads{suffix}", None)
            if corename is not None and threads is not None:
                corename.restype = ctypes.c_char_p
                return corename().decode(), threads()
    return None, None


def keep_freed_memory():
    """glibc only: serve every allocation from the heap (M_MMAP_MAX = 0) and never give freed
    heap back to the OS (M_TRIM_THRESHOLD = 1 GiB). By default each large NumPy array is a fresh
    mmap whose pages fault in on first touch (a few µs each on this VM); a framework that
    allocates a new array per op pays that every step, the in-place reference almost never.
    Returns whether both settings were accepted."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # from glibc's malloc.h
    return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**30))


def minor_faults():
    """Minor page faults of this process so far (fresh memory touched for the first time)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def peak_rss_mib():
    """The process's peak resident set so far, MiB.

    Linux's VmHWM (the high-water mark of this process's memory map), where there is one:
    getrusage's ru_maxrss survives fork + exec, so a child started by a large parent would report
    the parent's peak. Elsewhere ru_maxrss (KiB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


# ------------------------------------------------------------------------------ the three steps


def make_batch(config, seed=0):
    """Token ids (B, T + 1) -> inputs (B, T) and targets (B, T), shifted by one position."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, config["vocab"], (config["batch"], config["seq_len"] + 1))
    return np.ascontiguousarray(ids[:, :-1]), np.ascontiguousarray(ids[:, 1:])


class OurStep:
    """Our framework: model(inputs), cross_entropy, zero_grad, backward, Adam.step.

    The loss is called as the package's own training loops call it (``reuse_logits=True``: the
    logits are read by nothing but the loss), which is also what the NumPy reference does.
    """

    def __init__(self, model, inputs, targets):
        self.model = model
        self.optimizer = mt.optim.Adam(model.parameters())
        self.inputs, self.targets = mt.tensor(inputs), mt.tensor(targets)

    def __call__(self):
        loss = F.cross_entropy(self.model(self.inputs), self.targets, reuse_logits=True)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.item()


class NumpyStep:
    """The hand-written NumPy reference (reference_numpy.py) from a copy of our weights."""

    def __init__(self, config, params, inputs, targets, adam):
        self.reference = ReferenceLM(config, params)
        self.optimizer = ReferenceAdam(self.reference.params, **adam)
        self.inputs, self.targets = inputs, targets

    def __call__(self):
        loss, grads = self.reference.loss_and_grads(self.inputs, self.targets)
        self.optimizer.step(grads)
        return loss


def torch_model(torch, config):
    """PyTorch's equivalent: embedding + learned positions, post-LN TransformerEncoderLayers
    (ReLU, dropout 0, batch_first, causal), an untied linear head."""
    nn = torch.nn

    class TorchLM(nn.Module):
        def __init__(self):
            super().__init__()
            d_model, length = config["d_model"], config["seq_len"]
            self.embed = nn.Embedding(config["vocab"], d_model)
            self.positions = nn.Parameter(torch.zeros(length, d_model))
            self.layers = nn.ModuleList(
                nn.TransformerEncoderLayer(d_model, config["n_heads"], config["d_ff"],
                                           dropout=0.0, activation="relu", batch_first=True,
                                           norm_first=False)
                for _ in range(config["n_layers"])
            )
            self.head = nn.Linear(d_model, config["vocab"])
            self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(length))

        def forward(self, ids):
            length = ids.shape[1]
            x = self.embed(ids) + self.positions[:length]  # (B, T, D)
            for layer in self.layers:
                x = layer(x, src_mask=self.mask[:length, :length], is_causal=True)
            return self.head(x)  # (B, T, V)

    return TorchLM()


def torch_links(config):
    """(torch parameter name, our name(s), how): "copy", "transpose" (our (in, out) Linear to
    torch's (out, in)), or "pack" (w_q, w_k, w_v stacked as torch's in_proj rows)."""
    links = [("embed.weight", "encoder.embed.weight", "copy"),
             ("positions", "encoder.positional.weight", "copy"),
             ("head.weight", "output.linear.weight", "transpose"),
             ("head.bias", "output.linear.bias", "copy")]
    for i in range(config["n_layers"]):
        ours, theirs = f"encoder.encoder.layers.{i}.", f"layers.{i}."
        projections = [ours + f"self_attn.w_{name}" for name in "qkv"]
        links += [(theirs + "self_attn.in_proj_weight", [p + ".weight" for p in projections],
                   "pack"),
                  (theirs + "self_attn.in_proj_bias", [p + ".bias" for p in projections], "pack"),
                  (theirs + "self_attn.out_proj.weight", ours + "self_attn.w_o.weight",
                   "transpose"),
                  (theirs + "self_attn.out_proj.bias", ours + "self_attn.w_o.bias", "copy")]
        for part in ("linear1", "linear2"):
            links += [(theirs + f"{part}.weight", ours + f"ff.{part}.weight", "transpose"),
                      (theirs + f"{part}.bias", ours + f"ff.{part}.bias", "copy")]
        for norm in ("norm1", "norm2"):
            links += [(theirs + f"{norm}.{kind}", ours + f"{norm}.{kind}", "copy")
                      for kind in ("weight", "bias")]
    return links


def copy_into_torch(torch, model, params, config):
    """Load our parameters (name -> array) into the torch model, converting layouts."""
    theirs = dict(model.named_parameters())
    with torch.no_grad():
        for name, source, how in torch_links(config):
            if how == "pack":
                value = np.concatenate([params[s].T if params[s].ndim == 2 else params[s]
                                        for s in source])
            else:
                value = params[source].T if how == "transpose" else params[source]
                value = value[: theirs[name].shape[0]] if name == "positions" else value
            theirs[name].copy_(torch.from_numpy(np.ascontiguousarray(value)))


class TorchStep:
    """PyTorch eager CPU from a copy of our weights; Adam(foreach=False), our hyper-parameters."""

    def __init__(self, torch, config, params, inputs, targets, adam, threads):
        torch.set_num_threads(threads)
        self.torch = torch
        self.model = torch_model(torch, config)
        copy_into_torch(torch, self.model, params, config)
        self.optimizer = torch.optim.Adam(self.model.parameters(), foreach=False, **adam)
        self.inputs = torch.from_numpy(inputs)
        self.targets = torch.from_numpy(targets).reshape(-1)

    def __call__(self):
        logits = self.model(self.inputs)
        loss = self.torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                      self.targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.item()


def make_steps(config, threads, names=IMPLEMENTATIONS):
    """The implementations in ``names`` (torch only when importable), on the same weights (our
    model's fresh initialisation) and the same batch."""
    mt.manual_seed(0)
    model = build_model(config)
    inputs, targets = make_batch(config)
    steps = {}
    adam = {k: mt.optim.Adam(model.parameters()).defaults[k] for k in ("lr", "betas", "eps")}
    params = parameters_of(model)  # copied before our own step changes the model
    if "ours" in names:
        steps["ours"] = OurStep(model, inputs, targets)
    if "numpy" in names:
        steps["numpy"] = NumpyStep(config, parameters_of(model), inputs, targets, adam)
    torch = import_torch() if "torch" in names else None
    if torch is not None:
        steps["torch"] = TorchStep(torch, config, params, inputs, targets, adam, threads)
    return steps


# ------------------------------------------------------------------------------ measurements


def gemm_gflops(config, repeats=3):
    """GFLOP/s of the best of ``repeats`` float32 GEMMs (B·T, D) @ (D, 4D)."""
    rng = np.random.default_rng(1)
    rows, d_model = config["batch"] * config["seq_len"], config["d_model"]
    x = rng.standard_normal((rows, d_model), dtype=np.float32)
    w = rng.standard_normal((d_model, 4 * d_model), dtype=np.float32)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        x @ w
        best = min(best, time.perf_counter() - start)
    return 2 * rows * d_model * 4 * d_model / best / 1e9


def interleaved(config, threads, rounds, warmup, names):
    """Per-round step times (s) of each implementation, the GEMM ceilings, the first losses."""
    steps = make_steps(config, threads, names)
    first_losses = {name: step() for name, step in steps.items()}
    for _ in range(warmup - 1):
        for step in steps.values():
            step()
    order = list(steps)
    times = {name: [] for name in order}
    faults = {name: 0 for name in order}
    ceilings = []
    for round_index in range(rounds):
        shift = round_index % len(order)  # rotate who goes first
        for name in order[shift:] + order[:shift]:
            faults_before = minor_faults()
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
            faults[name] += minor_faults() - faults_before
        ceilings.append(gemm_gflops(config))
    faults = {name: count / rounds for name, count in faults.items()}
    return times, ceilings, first_losses, faults


def rss_in_subprocess(config_name, name, threads, malloc_no_trim=False):
    """Peak and growth of RSS (MiB) of ``name``'s steps alone, in a fresh process."""
    command = [sys.executable, __file__, "--config", config_name, "--threads", str(threads),
               "--rss-of", name] + (["--malloc-no-trim"] if malloc_no_trim else [])
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def rss_of(config, name, threads, steps=5):
    """Runs in the --rss-of subprocess: prints {"peak": MiB, "growth": MiB} as JSON."""
    step = make_steps(config, threads, (name,)).get(name)
    if step is None:
        print(json.dumps(None))
        return
    before = peak_rss_mib()
    for _ in range(steps):
        step()
    print(json.dumps({"peak": peak_rss_mib(), "growth": peak_rss_mib() - before}))


def measure(config_name, args):
    config = CONFIGS[config_name]
    names = IMPLEMENTATIONS if not args.no_torch else ("ours", "numpy")
    times, ceilings, first_losses, faults = interleaved(config, args.threads, args.rounds,
                                                        args.warmup, names)
    losses = list(first_losses.values())
    if not np.allclose(losses, losses[0], rtol=1e-4):
        raise RuntimeError(f"{config_name}: the implementations disagree on the first loss "
                           f"{first_losses}: they would not be doing the same work")
    row = {"config": config_name, "threads": args.threads, "first_loss": losses[0]}
    for name, values in times.items():
        row[f"{name}_ms"] = 1e3 * float(np.median(values))
        row[f"{name}_faults"] = faults[name]
    row["ours/numpy"] = float(np.median(np.divide(times["ours"], times["numpy"])))
    if "torch" in times:
        row["ours/torch"] = float(np.median(np.divide(times["ours"], times["torch"])))
        row["numpy/torch"] = float(np.median(np.divide(times["numpy"], times["torch"])))
    row["ceiling_gflops"] = float(np.median(ceilings))
    for name in times:
        row[f"{name}_gflops"] = matmul_flops(config) / (row[f"{name}_ms"] / 1e3) / 1e9
    if not args.no_rss:
        for name in times:
            row[f"{name}_rss"] = rss_in_subprocess(config_name, name, args.threads,
                                                   args.malloc_no_trim)
    return row


def _cell(row, key, pattern):
    return pattern.format(row[key]) if row.get(key) is not None else "–"


def print_table(rows):
    """The results as a Markdown table (medians; ratios are medians of per-round ratios)."""
    has_torch = any("torch_ms" in row for row in rows)
    names = IMPLEMENTATIONS if has_torch else IMPLEMENTATIONS[:2]
    header = (["config", "thr"] + [f"{n} ms" for n in names] + ["ours/numpy"]
              + (["ours/torch", "numpy/torch"] if has_torch else [])
              + [f"{n} GFLOP/s (% ceil.)" for n in names] + ["GEMM ceil. GFLOP/s"]
              + [f"{n} RSS MiB peak (+growth)" for n in names]
              + [f"{n} faults/step" for n in names])
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        cells = [row["config"], str(row["threads"])]
        cells += [_cell(row, f"{n}_ms", "{:.2f}") for n in names]
        cells += [_cell(row, "ours/numpy", "{:.2f}")]
        if has_torch:
            cells += [_cell(row, "ours/torch", "{:.2f}"), _cell(row, "numpy/torch", "{:.2f}")]
        for n in names:
            gflops = row.get(f"{n}_gflops")
            cells.append("–" if gflops is None else
                         f"{gflops:.1f} ({100 * gflops / row['ceiling_gflops']:.0f}%)")
        cells.append(f"{row['ceiling_gflops']:.0f}")
        for n in names:
            rss = row.get(f"{n}_rss")
            cells.append("–" if not rss else f"{rss['peak']:.0f} (+{rss['growth']:.0f})")
        cells += [_cell(row, f"{n}_faults", "{:.0f}") for n in names]
        print("| " + " | ".join(cells) + " |")


# ------------------------------------------------------------------------------ KV cache, profile


def kv_cache(config_name, new_tokens=256, prompt_length=16, repeats=3):
    """Tokens/s of greedy generation of ``new_tokens`` after a random prompt (batch 1), with and
    without the KV cache: medians of ``repeats`` interleaved pairs, and the median of the pairs'
    ratios. Both must choose the same tokens. Returns a table row."""
    config = dict(CONFIGS[config_name], seq_len=prompt_length + new_tokens + 1)  # max_len
    mt.manual_seed(0)
    model = build_model(config)
    prompt = np.random.default_rng(0).integers(0, config["vocab"], (1, prompt_length))
    times, outputs = {True: [], False: []}, {}
    for _ in range(repeats):  # interleaved pairs: a burst of load hits both alike
        for use_cache in (True, False):
            start = time.perf_counter()
            outputs[use_cache] = generate(model, prompt, new_tokens, temperature=0,
                                          use_cache=use_cache)
            times[use_cache].append(time.perf_counter() - start)
    if outputs[True] != outputs[False]:
        raise RuntimeError("kv-cache: cached and uncached generation chose different tokens")
    cached, uncached = (new_tokens / np.median(times[c]) for c in (True, False))
    speed_up = np.median(np.divide(times[False], times[True]))
    return (f"| {config_name} (max_len {config['seq_len']}) | {prompt_length} | {new_tokens} | "
            f"{cached:.0f} | {uncached:.0f} | {speed_up:.1f}x |")


def profile(config_name, threads, steps=20, top=15):
    """cProfile of our step: the top functions by cumulative and by own time."""
    step = make_steps(CONFIGS[config_name], threads, ("ours",))["ours"]
    for _ in range(3):
        step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    print(f"cProfile of {steps} steps of ours at {config_name}, {threads} thread(s)")
    for key in ("cumulative", "tottime"):
        pstats.Stats(profiler, stream=sys.stdout).sort_stats(key).print_stats(top)


def op_times(config_name, threads, steps=10):
    """Seconds per step spent in each Function's forward and backward during our steps, each
    step followed by one of the reference (and torch, when installed), as in the benchmark;
    minor page faults counted the same way. Prints a Markdown table."""
    from collections import Counter

    from minitransformer.gradcheck_cases import function_classes

    seconds, calls, faults = Counter(), Counter(), Counter()

    def timed(cls, method):
        original = cls.__dict__[method].__func__

        def run(*args, **kwargs):
            faults_before, start = minor_faults(), time.perf_counter()
            result = original(*args, **kwargs)
            key = f"{cls.__name__}.{method}"
            seconds[key] += time.perf_counter() - start
            calls[key] += 1
            faults[key] += minor_faults() - faults_before
            return result

        return original, run

    originals = []
    for cls in function_classes():
        for method in ("forward", "backward"):
            if method in cls.__dict__:
                original, run = timed(cls, method)
                originals.append((cls, method, original))
                setattr(cls, method, staticmethod(run))
    try:
        all_steps = make_steps(CONFIGS[config_name], threads)
        for _ in range(3):
            for step in all_steps.values():
                step()
        seconds.clear(), calls.clear(), faults.clear()
        totals = {name: [] for name in all_steps}
        for _ in range(steps):
            for name, step in all_steps.items():
                start = time.perf_counter()
                step()
                totals[name].append(time.perf_counter() - start)
    finally:
        for cls, method, original in originals:
            setattr(cls, method, staticmethod(original))
    medians = ", ".join(f"{name} {1e3 * np.median(values):.1f} ms" for name, values in
                        totals.items())
    print(f"{config_name}: median step {medians}; {steps} steps each")
    print("| Function | ms per step | share of our step | calls per step | faults per step |")
    print("|---|---|---|---|---|")
    ours = np.median(totals["ours"])
    for key, value in seconds.most_common():
        print(f"| {key} | {1e3 * value / steps:.2f} | {100 * value / steps / ours:.1f}% | "
              f"{calls[key] // steps} | {faults[key] / steps:.0f} |")
    inside = sum(seconds.values()) / steps
    print(f"| (outside Functions: engine, modules, Adam) | {1e3 * (ours - inside):.2f} | "
          f"{100 * (ours - inside) / ours:.1f}% | | |")


def main(args):
    kept = keep_freed_memory() if args.malloc_no_trim else None
    if args.rss_of:
        rss_of(CONFIGS[args.config], args.rss_of, args.threads)
        return
    print(f"# {load_average()} before; {os.cpu_count()} CPUs; BLAS: {blas_summary()}")
    if args.malloc_no_trim:
        effect = "glibc keeps freed memory" if kept else "not glibc: no effect"
        print(f"# --malloc-no-trim: {effect}")
    torch = None if args.no_torch else import_torch()
    print(f"# numpy {np.__version__}, torch "
          f"{torch.__version__ + f' ({torch.get_num_threads()} threads)' if torch else 'absent'}"
          f", {args.threads} thread(s)")
    configs = args.config.split(",")
    if args.kv_cache:
        print("| config | prompt | new tokens | cached tok/s | uncached tok/s | speed-up |")
        print("|---|---|---|---|---|---|")
        for name in configs:
            print(kv_cache(name))
    elif args.profile:
        for name in configs:
            profile(name, args.threads)
    elif args.op_times:
        for name in configs:
            op_times(name, args.threads)
    else:
        rows = [measure(name, args) for name in configs]
        print(f"# {args.rounds} interleaved rounds after {args.warmup} warm-up")
        print_table(rows)
    print(f"# {load_average()} after")


if __name__ == "__main__":
    main(ARGS)
