# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 20 — Data-parallel training
#
# One process trains one batch at a time on one machine's cores. To train faster on more
# cores, machines or GPUs, the simplest and most common scheme is **data parallelism**: start N
# processes (*ranks*), give each a full copy of the model and 1/N of every batch, and before each
# update let them **average their gradients**. Every rank then holds the gradient of the whole
# batch, takes the same optimizer step, and the copies stay identical without ever being sent
# again. The averaging is one collective operation, **allreduce**, which MPI (and NCCL on GPUs)
# provides.
#
# This chapter simulates data parallelism inside one process, so every step can be printed and
# checked, and then runs the real thing: `mpiexec -n 2` with `minitransformer.distributed`.
#
# **Learning objectives.** After this chapter you can
#
# 1. show that the mean of the per-shard gradients equals the whole batch's gradient, and say
#    when it does not (shards of unequal size);
# 2. state what allreduce computes, simulate the ring algorithm, and give its cost per rank;
# 3. lay many gradients end to end in flat buckets, so one collective call moves them all;
# 4. explain why each rank needs its own random seed and why only rank 0 writes files;
# 5. launch training under `mpiexec` and check that 2 ranks train exactly like 1.

# %%
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn
from minitransformer.distributed import Buckets, World

FAST = os.environ.get("MINITRANSFORMER_FAST") == "1"  # fewer training steps when set
STEPS = 4 if FAST else 20
mt.set_default_dtype("float64")  # float64 makes "equal up to rounding" a tight check

# %% [markdown]
# ## 1. The gradient of a batch is the mean of its shards' gradients
#
# A batch of B rows has the loss L = (1/B) Σᵢ ℓᵢ, the mean of the rows' losses. Cut it into N
# shards of B/N rows each; shard r has the loss Lᵣ = (N/B) Σ_{i ∈ r} ℓᵢ, the mean over its own
# rows. Then
#
#     L = (1/N) Σᵣ Lᵣ      and, since the gradient is linear,      ∇L = (1/N) Σᵣ ∇Lᵣ.
#
# So N ranks can each backpropagate the loss of their shard, and the *mean* of their gradients is
# exactly the gradient one process would get from the whole batch. Let us check it with N = 3.

# %%
mt.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Linear(32, 3))
parameters = list(model.parameters())
rng = np.random.default_rng(0)
x_all, y_all = rng.standard_normal((12, 8)), rng.integers(0, 3, 12)  # a batch: B = 12 rows


def gradients(rows):
    """The gradients of the mean cross-entropy over ``rows`` of the batch (copies)."""
    model.zero_grad()
    F.cross_entropy(model(mt.tensor(x_all[rows])), mt.tensor(y_all[rows])).backward()
    return [p.grad.copy() for p in parameters]


whole = gradients(list(range(12)))
n_ranks = 3
shards = [World(rank, n_ranks).shard(list(range(12))) for rank in range(n_ranks)]
print("rows of each rank:", shards)
per_rank = [gradients(rows) for rows in shards]
# BEGIN SOLUTION
mean = [sum(grads) / n_ranks for grads in zip(*per_rank)]  # one mean per parameter
# END SOLUTION
for g_mean, g_whole in zip(mean, whole):
    assert np.allclose(g_mean, g_whole, rtol=1e-12, atol=1e-15), (
        f"the mean over ranks differs from the whole batch's gradient (a parameter of shape "
        f"{np.shape(g_whole)}): for each parameter (zip(*per_rank)) add the {n_ranks} ranks' "
        "gradients and divide by n_ranks"
    )
print("max difference:", max(float(np.abs(a - b).max()) for a, b in zip(mean, whole)))

# %% [markdown]
# `World(rank, size).shard(rows)` gives rank r the rows r, r + N, r + 2N, ... (a stride, not a
# contiguous slice: the DataLoader sorts each batch by length, and striding hands every rank a
# mix of short and long rows, hence similar padding and work). The difference is rounding only:
# the sums run in another order.
#
# **Unequal shards.** With 7 rows over 2 ranks the shards hold 4 and 3 rows, and the plain mean
# weighs the 3 rows of the smaller shard more than the 4 of the other. Weighting each shard by its
# share of the rows, nᵣ/B, restores the whole-batch gradient:

# %%
rows7 = list(range(7))
shards7 = [World(rank, 2).shard(rows7) for rank in range(2)]
per_rank7 = [gradients(rows) for rows in shards7]
whole7 = gradients(rows7)
plain = [(a + b) / 2 for a, b in zip(*per_rank7)]
# BEGIN SOLUTION
weighted = [sum(len(rows) / 7 * g for rows, g in zip(shards7, grads))
            for grads in zip(*per_rank7)]
# END SOLUTION
assert not all(np.allclose(p, w) for p, w in zip(plain, whole7))
assert all(np.allclose(p, w, rtol=1e-12) for p, w in zip(weighted, whole7)), (
    f"weighted should equal the 7-row batch's gradients: weight each rank's gradient by its "
    f"share of the rows, len(rows) / 7 (the shards have {[len(r) for r in shards7]} rows), "
    "then add the ranks up, parameter by parameter"
)

# %% [markdown]
# The Trainer uses the plain mean (as PyTorch's DistributedDataParallel does): with a
# `batch_size` divisible by the number of ranks every shard has the same size and the mean is
# exact; only an epoch's short last batch is weighted a little differently. (Losses averaged over
# *tokens*, with padding, have the same caveat: each rank's mean runs over its own token count.)
#
# ## 2. Allreduce
#
# **Allreduce** takes one buffer from every rank and leaves the elementwise **sum** (or another
# reduction) of all of them in every rank's buffer. It is reduce followed by broadcast, but done
# better: the **ring algorithm** arranges the ranks in a ring and cuts each buffer into N chunks.
#
# - *Reduce-scatter*, N − 1 steps: in each step every rank sends one chunk to its right-hand
#   neighbour, which adds it to its own copy. Afterwards rank q holds the complete sum of one
#   chunk.
# - *Allgather*, N − 1 steps: the complete chunks travel once more around the ring, copied.
#
# Every rank sends 2(N − 1) chunks of M/N numbers: 2(N − 1)/N · M in all, less than 2M however
# many ranks there are. With a latency α per message and a bandwidth β, the time is about
# 2(N − 1)·α + 2(N − 1)/N · M/β: for large buffers nearly independent of N.

# %%
def ring_allreduce(buffers):
    """Replace every rank's buffer by the sum of all of them, the way a ring does; returns how
    many numbers each rank sent."""
    n = len(buffers)
    chunks = [np.array_split(buffer, n) for buffer in buffers]  # views into each rank's buffer
    sent = 0
    for step in range(n - 1):  # reduce-scatter: rank r sends chunk (r - step) and its neighbour
        messages = [(r, (r - step) % n) for r in range(n)]  # adds it to its own copy
        payloads = [chunks[r][c].copy() for r, c in messages]  # all send at once, then receive
        for (r, c), payload in zip(messages, payloads):
            chunks[(r + 1) % n][c] += payload
        sent += len(payloads[0])
    for step in range(n - 1):  # allgather: rank r passes on its complete chunk (r + 1 - step)
        messages = [(r, (r + 1 - step) % n) for r in range(n)]
        payloads = [chunks[r][c].copy() for r, c in messages]
        for (r, c), payload in zip(messages, payloads):
            chunks[(r + 1) % n][c][...] = payload
        sent += len(payloads[0])
    return sent


size_m, n = 1200, 4
buffers = [rng.standard_normal(size_m) for _ in range(n)]
total = sum(buffers)
sent = ring_allreduce(buffers)
assert all(np.allclose(buffer, total) for buffer in buffers)
print(f"{n} ranks, {size_m} numbers each: every rank sent {sent} = 2(N-1)/N * M")
assert sent == 2 * (n - 1) * size_m // n

# %% [markdown]
# MPI's `Allreduce` picks ring, recursive doubling or other algorithms by message size and
# network; NCCL uses rings and trees over NVLink and InfiniBand. What it computes is always the
# same sum. Dividing by N afterwards turns the sum of gradients into their mean.
#
# ## 3. Flat buckets: one call for many gradients
#
# A Transformer has dozens of parameter tensors, and one collective call per tensor would pay the
# latency α dozens of times per step. `minitransformer.distributed.Buckets` lays the gradients
# end to end in a few flat buffers (buckets of about 4 MiB; here tiny ones, to see several), and
# one Allreduce per bucket moves them all. The last bucket ends with a **tail**: a flag per
# parameter (1 where this rank has a gradient) and two free slots for the loss and the token
# count, so those travel in the same call.
#
# Let us simulate 3 ranks again, each with its own copy of the model and its own buckets; the
# "allreduce" is a sum of the ranks' buffers.

# %%
replicas = []
for _ in range(n_ranks):
    mt.manual_seed(0)  # the same initial weights on every rank
    replicas.append(nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Linear(32, 3)))
buckets = [Buckets(replica.parameters(), bucket_bytes=2048, extras=2) for replica in replicas]
print(buckets[0])

losses = []
for rank, (replica, rows) in enumerate(zip(replicas, shards)):
    replica.zero_grad()
    loss = F.cross_entropy(replica(mt.tensor(x_all[rows])), mt.tensor(y_all[rows]))
    loss.backward()
    losses.append(loss.item())
    buckets[rank].pack_grads(extras=(loss.item(), len(rows)))

for b in range(len(buckets[0].buffers)):  # the allreduce, one bucket at a time
    summed = sum(rank_buckets.buffers[b] for rank_buckets in buckets)
    for rank_buckets in buckets:
        rank_buckets.buffers[b][...] = summed / n_ranks  # the sum -> the mean

for rank, replica in enumerate(replicas):
    mean_loss, mean_rows = buckets[rank].unpack_grads()
    assert np.isclose(mean_loss, np.mean(losses)) and mean_rows * n_ranks == 12
    for p, g_whole in zip(replica.parameters(), whole):
        assert np.allclose(p.grad, g_whole, rtol=1e-12, atol=1e-15)
print("every replica now holds the whole batch's gradient")

# %% [markdown]
# Why buckets rather than one buffer for everything? A bucket caps the size of one message
# (MPI counts elements in a C `int`), and it is the unit that could be sent *while backward is
# still running*: PyTorch's DistributedDataParallel starts a bucket's allreduce as soon as all its
# gradients are ready, hiding communication behind computation. minitransformer keeps it simple
# and sends the buckets after backward.
#
# ## 4. Seeds and files
#
# Every rank runs the same program. Two things must differ between the ranks, and one must not
# happen twice:
#
# - **Random numbers.** Dropout and the masked-LM collator draw random masks. With one seed on all
#   ranks, row i of rank 0 and row i of rank 1 would get the same mask, as if the batch were
#   half as big. Each rank therefore seeds its generator with `rank_seed(seed)`: the rank-th child
#   of NumPy's `SeedSequence(seed).spawn(N)`, independent streams that one seed reproduces. (In a
#   world of one, `rank_seed(seed)` is `seed` itself, so a single process runs as it always did.)
# - **Data.** Each rank collates only its own shard of each batch (`shard_collate`).
# - **Files.** Only rank 0 (`is_main`) writes metrics, checkpoints and the progress bar; it also
#   evaluates, and broadcasts the metrics so that every rank takes the same early-stopping
#   decision. A checkpoint stores every rank's generator state, so a resumed run continues each
#   rank's stream exactly.

# %%
seeds = [World(rank, 2).rank_seed(0) for rank in range(2)]
children = np.random.SeedSequence(0).spawn(2)
assert seeds == [int(child.generate_state(1)[0]) for child in children]
assert seeds[0] != seeds[1] and World(0, 1).rank_seed(0) == 0
print("rank seeds for seed 0:", seeds)

# %% [markdown]
# ## 5. For real: `mpiexec`
#
# `pip install "minitransformer[mpi]"` installs mpi4py and MPICH (with its `mpiexec`) from PyPI.
# Then any training command runs data-parallel:
#
# ```bash
# OMP_NUM_THREADS=1 mpiexec -n 2 minitransformer pretrain --set steps=200 --out runs/dp
# ```
#
# Inside, the Trainer does what we simulated above. `distributed.init()` reads `PMI_SIZE` (or
# Open MPI's `OMPI_COMM_WORLD_SIZE`) and only then imports mpi4py; a plain `python` run is a world
# of one that never touches MPI. At the start of `fit` rank 0's parameters are broadcast; each
# step then runs:
#
# ```python
# for _ in range(config.accumulate):            # this rank's shard of each micro-batch
#     loss = loss_fn(model, next_batch())
#     (loss / config.accumulate).backward()
# if world.size > 1:                             # one Allreduce per bucket: gradients,
#     total_loss, tokens = world.average_gradients(parameters, total_loss, tokens)  # loss, tokens
# clip_grad_norm(parameters, config.grad_clip)   # the same norm on every rank
# optimizer.step()                               # the same update on every rank
# ```
#
# and `average_gradients` is
#
# ```python
# buckets.pack_grads((loss, tokens))
# for buffer in buckets.buffers:
#     comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)   # the sum of every rank's buffer
#     buffer *= 1.0 / size                               # -> the mean
# mean_loss, mean_tokens = buckets.unpack_grads()
# ```
#
# The next cell trains a small network with Adam and gradient clipping for a few steps, once in
# one process on batches of 16 rows and once as 2 ranks on 8 rows each, and compares the final
# parameters. It needs `mpiexec` and mpi4py, and says so when they are missing.

# %%
TRAIN = textwrap.dedent('''
    import sys

    import numpy as np

    import minitransformer as mt
    import minitransformer.functional as F
    from minitransformer import distributed, nn, optim
    from minitransformer.data import DataLoader
    from minitransformer.train import TrainConfig, Trainer

    steps, result = int(sys.argv[1]), sys.argv[2]
    mt.set_default_dtype("float64")
    mt.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Linear(32, 3))
    rng = np.random.default_rng(0)
    examples = list(zip(rng.standard_normal((64, 8)), rng.integers(0, 3, 64)))


    def collate(rows):
        return mt.tensor(np.stack([x for x, _ in rows])), mt.tensor(np.array([y for _, y in rows]))


    def batches(epoch):  # 16 rows a batch in all; each rank collates its share
        loader = DataLoader(examples, 16, distributed.shard_collate(collate), shuffle=True)
        loader.set_epoch(epoch)
        return loader


    trainer = Trainer(model, optim.Adam(model.parameters(), lr=0.01),
                      lambda m, b: F.cross_entropy(m(b[0]), b[1]), batches,
                      TrainConfig(steps=steps, grad_clip=0.5, progress=False))
    trainer.fit()
    if distributed.is_main():
        np.savez(result, *[p.numpy() for p in model.parameters()])
''')


def find_mpiexec():
    beside = Path(sys.executable).parent / "mpiexec"  # where the mpich wheel puts it
    return str(beside) if beside.exists() else shutil.which("mpiexec")


mpiexec = find_mpiexec()
if mpiexec is None or importlib.util.find_spec("mpi4py") is None:
    print('skipped: no mpiexec or mpi4py here; pip install "minitransformer[mpi]" to run it')
else:
    folder = Path(tempfile.mkdtemp())
    (folder / "train.py").write_text(TRAIN)
    env = {k: v for k, v in os.environ.items() if k not in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    base = [sys.executable, str(folder / "train.py"), str(STEPS)]
    for command in ([*base, str(folder / "one.npz")],
                    [mpiexec, "-n", "2", *base, str(folder / "two.npz")]):
        subprocess.run(command, env=env, check=True, timeout=300)
    with np.load(folder / "one.npz") as one, np.load(folder / "two.npz") as two:
        worst = max(float(np.abs(one[k] - two[k]).max()) for k in one.files)
        for key in one.files:
            assert np.allclose(one[key], two[key], rtol=1e-10, atol=1e-13), key
    print(f"2 ranks on half-batches = 1 process on whole batches after {STEPS} steps "
          f"(largest difference {worst:.1e})")

# %% [markdown]
# ## 6. What changes on GPUs
#
# On GPUs the model's arrays live in device memory, and two things change:
#
# - **Where allreduce reads.** A *CUDA-aware* MPI (Open MPI or MVAPICH built with CUDA) accepts
#   device buffers directly (mpi4py passes CuPy arrays through `__cuda_array_interface__`).
#   The MPICH that pip installs is not CUDA-aware, so `distributed` copies each bucket to the host,
#   reduces it there and copies it back: correct, but two PCIe transfers per bucket.
# - **Who does the allreduce.** On NVIDIA GPUs, **NCCL** (`cupy.cuda.nccl`, or PyTorch's
#   `"nccl"` backend) runs the ring over NVLink/InfiniBand in GPU kernels, on a CUDA stream,
#   without the host; MPI then only starts the processes and hands out NCCL's unique id.
#
# The math of this chapter (mean of shard gradients, ring cost) is the same.
#
# ## Summary
#
# - Data parallelism: N ranks, one model copy each, 1/N of each batch each; averaging their
#   gradients gives the whole batch's gradient (exactly for equal shards), so every rank takes
#   the same step and the copies stay equal.
# - Allreduce leaves the sum of all ranks' buffers on every rank; the ring sends 2(N − 1)/N · M
#   numbers per rank, nearly independent of N.
# - Gradients travel in flat buckets: one Allreduce per bucket, with the loss and the
#   has-gradient flags riding along in the last one.
# - Each rank seeds its own generator (`SeedSequence.spawn`); rank 0 alone writes files and
#   decides from its evaluation for all.
# - `mpiexec -n 2 minitransformer pretrain ...` trains like one process on the whole batch, up to
#   float rounding.
#
# ## Exercises
#
# ```{exercise} Ring against a star
# :label: ch20-ring-cost
#
# Simulate `ring_allreduce` with N = 2, 3, 8 and a buffer of M = 10⁶ numbers and tabulate the
# numbers each rank sends. Compare with a naive scheme in which every rank sends its whole
# buffer to rank 0, which sends the sum back: how much does rank 0 send and receive?
# ```
#
# ````{solution} ch20-ring-cost
# :class: dropdown
#
# ```python
# M = 10**6
# for N in (2, 3, 8):
#     buffers = [np.full(M, float(r + 1)) for r in range(N)]
#     sent = ring_allreduce(buffers)
#     assert all(np.allclose(b, N * (N + 1) / 2) for b in buffers)
#     print(N, sent, 2 * (N - 1) / N * M, (N - 1) * M)
# ```
#
# | N | ring: sent per rank | 2(N − 1)/N · M | star: rank 0 receives | star: rank 0 sends |
# |---|---|---|---|---|
# | 2 | 1,000,000 | 1,000,000 | 1,000,000 | 1,000,000 |
# | 3 | 1,333,334 | 1,333,333.3 | 2,000,000 | 2,000,000 |
# | 8 | 1,750,000 | 1,750,000 | 7,000,000 | 7,000,000 |
#
# (1,333,334: `np.array_split` makes one chunk one number longer.) In the ring every rank sends,
# and receives, less than 2M whatever N is, and all links work at once. In the star, rank 0
# receives (N − 1)·M and sends (N − 1)·M: its link carries 4 times the ring's traffic at N = 8,
# and it grows linearly with the number of ranks while the others sit idle. (Rank 0 also does
# all N − 1 additions.) At N = 2 the two schemes coincide.
# ````
#
# ```{exercise} Unequal shards
# :label: ch20-unequal-shards
#
# In section 1 take B = 7 rows on N = 2 ranks and find the largest relative error of the plain
# mean. Then change the simulation in section 3 to weight each rank's gradient by its row count
# (hint: pack nᵣ · gradient and the row count, divide by the summed count).
# ```
#
# ````{solution} ch20-unequal-shards
# :class: dropdown
#
# The plain mean gives (g₁ + g₂)/2 instead of (4g₁ + 3g₂)/7, off by (g₂ − g₁)/14. Measured as
# max |plain − whole| / max |whole| per parameter tensor, the worst tensor is off by **39%**
# (elementwise relative errors are even larger where the whole gradient is near zero):
#
# ```python
# print(max(float(np.abs(p - w).max() / np.abs(w).max()) for p, w in zip(plain, whole7)))  # 0.387
# ```
#
# Weighting inside the buckets: each rank multiplies its gradient by its row count nᵣ and sends
# nᵣ as an extra; the allreduce *sums* (no division by N), and every rank divides by the summed
# count. The loss travels the same way, as nᵣ · loss.
#
# ```python
# replicas7 = []
# for _ in range(2):
#     mt.manual_seed(0)
#     replicas7.append(nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Linear(32, 3)))
# buckets7 = [Buckets(r.parameters(), bucket_bytes=2048, extras=2) for r in replicas7]
# for rank, (replica, rows) in enumerate(zip(replicas7, shards7)):
#     replica.zero_grad()
#     loss = F.cross_entropy(replica(mt.tensor(x_all[rows])), mt.tensor(y_all[rows]))
#     loss.backward()
#     for p in replica.parameters():
#         p.grad *= len(rows)                                   # n_r · gradient
#     buckets7[rank].pack_grads(extras=(loss.item() * len(rows), len(rows)))
# for b in range(len(buckets7[0].buffers)):                    # allreduce: the plain sum
#     summed = sum(rank_buckets.buffers[b] for rank_buckets in buckets7)
#     for rank_buckets in buckets7:
#         rank_buckets.buffers[b][...] = summed
# for rank, replica in enumerate(replicas7):
#     loss_sum, rows_total = buckets7[rank].unpack_grads()      # rows_total = 7
#     for p in replica.parameters():
#         p.grad /= rows_total
#     assert all(np.allclose(p.grad, g, rtol=1e-12, atol=1e-15)
#                for p, g in zip(replica.parameters(), whole7))
# ```
#
# Both ranks now hold the whole-batch gradient to rounding, and `loss_sum / rows_total` is the
# whole batch's loss (1.1421091967698396 against 1.1421091967698394). With a token-averaged loss
# the same trick uses the token count instead of the row count.
# ````
#
# ```{exercise} A gradient on one rank only
# :label: ch20-one-rank-grad
#
# Give one parameter a gradient on rank 0 only (set `p.grad = None` on the other copies before
# `pack_grads`). What does `unpack_grads` give each rank, and why is that the whole batch's
# gradient?
# ```
#
# ````{solution} ch20-one-rank-grad
# :class: dropdown
#
# In the loop of section 3, after `loss.backward()` add
# `if rank > 0: list(replica.parameters())[0].grad = None`. Ranks 1 and 2 then pack zeros for
# that parameter and a has-gradient flag of 0; rank 0 packs its gradient g₀ and a flag of 1.
# After the averaging allreduce the buffer holds (g₀ + 0 + 0)/3 and the flag 1/3 > 0, so
# `unpack_grads` gives **every** rank the same gradient g₀/3 (checked with `np.allclose`),
# including the ranks that had none; only a parameter whose flag is 0 everywhere keeps
# `grad = None` on every rank.
#
# That is the whole batch's gradient because a rank without a gradient is a rank whose shard's
# loss does not depend on the parameter (say, an embedding row of a word that occurs only in
# rank 0's rows): its gradient there is exactly 0. The whole batch's gradient is still the mean
# over all N shards, (g₀ + 0 + 0)/N; dividing by the number of ranks that had a gradient would
# over-weight rank 0's rows by a factor of 3. And every rank must get the same answer,
# including `None` or not, so that the optimizers, which skip parameters without a gradient,
# stay in step.
# ````
#
# ```{exercise} Measuring the speed-up
# :label: ch20-speedup
#
# Run `mpiexec -n 2 minitransformer pretrain --set steps=100 --set log_every=1` and
# `mpiexec -n 1 ...` with `OMP_NUM_THREADS=1`, and compute steps/s from the `seconds` column of
# `metrics.jsonl`. Then double `d_model`: why does the speed-up grow with the model?
# ```
#
# ````{solution} ch20-speedup
# :class: dropdown
#
# ```bash
# export OMP_NUM_THREADS=1
# for n in 1 2; do
#   mpiexec -n $n minitransformer pretrain --set steps=100 --set log_every=1 --no-progress \
#       --out runs/dp$n
#   mpiexec -n $n minitransformer pretrain --set steps=100 --set log_every=1 --no-progress \
#       --set d_model=128 --out runs/dp${n}_wide
# done
# ```
#
# ```python
# import json
#
# rows = [json.loads(line) for line in open("runs/dp2/metrics.jsonl")]
# seconds = [row["seconds"] for row in rows if "seconds" in row][10:]  # skip the first steps
# print(len(seconds) / sum(seconds), "steps/s")
# ```
#
# `seconds` is the wall time of one step; the speed-up is the ratio of the two runs' steps/s.
# It needs one free core per rank: on a 2-core machine busy with other work (load average
# about 4) two ranks ran at 0.6 to 1.0 times the speed of one in repeated runs, noise that hides
# everything. On idle cores the speed-up grows with the model because of what one step costs a
# rank:
#
# - the matmuls over its shard of the batch: about (B/N) · T · d_model² multiply-adds, the only
#   part that data parallelism divides by N;
# - the allreduce and the optimizer step, both proportional to the number of parameters, i.e.
#   to d_model², the same on every rank whatever N;
# - a fixed cost per step: Python and the autograd bookkeeping run once per op however small
#   the arrays, plus the latency of each Allreduce call.
#
# Doubling d_model multiplies the first two by about 4 and leaves the third unchanged. With the
# default d_model = 64 the fixed part is a large share of a step, and by Amdahl's law a part
# that does not shrink with N caps the speed-up; a wider model spends a larger share in the
# matmuls that are split, so two ranks come closer to 2×. (The allreduce grows with the model
# too, but so does the per-row work, at the same rate; more rows per rank improves that ratio.)
# ````
