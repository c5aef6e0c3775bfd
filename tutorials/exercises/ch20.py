# %% setup
# Chapter 20's exercises, graded: write each answer in its cell; the check cell after it says
# what is wrong, if anything. `minitransformer grade` gives each exercise its points.
# Ranks are simulated in one process, as in sections 1 to 3: no mpiexec needed.
import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn
from minitransformer.distributed import Buckets, World


def ring_allreduce(buffers):
    """Section 2's ring: replace every rank's buffer by the sum of all of them; returns how many
    numbers each rank sent."""
    n = len(buffers)
    chunks = [np.array_split(buffer, n) for buffer in buffers]  # views into each rank's buffer
    sent = 0
    for step in range(n - 1):  # reduce-scatter
        messages = [(r, (r - step) % n) for r in range(n)]
        payloads = [chunks[r][c].copy() for r, c in messages]
        for (r, c), payload in zip(messages, payloads):
            chunks[(r + 1) % n][c] += payload
        sent += len(payloads[0])
    for step in range(n - 1):  # allgather
        messages = [(r, (r + 1 - step) % n) for r in range(n)]
        payloads = [chunks[r][c].copy() for r, c in messages]
        for (r, c), payload in zip(messages, payloads):
            chunks[(r + 1) % n][c][...] = payload
        sent += len(payloads[0])
    return sent


def make_model():
    """Section 1's network in float64, with the same initial weights at every call (one
    replica per simulated rank)."""
    mt.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Linear(32, 3)).double()


def batch():
    """Section 1's batch: x (12, 8) floats and y (12,) classes."""
    rng = np.random.default_rng(0)
    return rng.standard_normal((12, 8)), rng.integers(0, 3, 12)


def backward_on(model, rows):
    """Backpropagate the mean cross-entropy over the batch rows `rows` (a list of row indices)
    into model's .grad, replacing what was there; returns the loss as a float."""
    x, y = batch()
    model.zero_grad()
    loss = F.cross_entropy(model(mt.tensor(x[rows])), mt.tensor(y[rows]))
    loss.backward()
    return loss.item()


def grads(model):
    """Copies of model's gradients, in parameter order (None where a parameter has none)."""
    return [None if p.grad is None else p.grad.copy() for p in model.parameters()]


# %% exercise ch20-ring-cost (2 points)
# ring_sent: dict {N: numbers each rank sends} measured with ring_allreduce (from the setup) for
# N = 2, 3 and 8 ranks with buffers of M = 10**6 numbers.
# star_allreduce(buffers) -> (received, sent): the naive scheme. Every rank r > 0 sends its
# whole buffer to rank 0, rank 0 adds them all up and sends the sum back to every other rank;
# afterwards every buffer holds the sum (in place). Returns how many numbers rank 0 received and
# how many it sent.
# star_over_ring: at N = 8 and M = 10**6, the numbers rank 0 sends in the star divided by the
# numbers one rank sends in the ring.
# BEGIN SOLUTION
M = 10**6
ring_sent = {}
for N in (2, 3, 8):
    buffers = [np.full(M, float(r + 1)) for r in range(N)]
    ring_sent[N] = ring_allreduce(buffers)


def star_allreduce(buffers):
    received = sum(buffer.size for buffer in buffers[1:])  # every other rank -> rank 0
    total = sum(buffers)
    sent = 0
    for buffer in buffers[1:]:  # rank 0 -> every other rank
        buffer[...] = total
        sent += total.size
    buffers[0][...] = total
    return received, sent


star_over_ring = star_allreduce([np.zeros(M) for _ in range(8)])[1] / ring_sent[8]
# END SOLUTION

# %% check ch20-ring-cost
assert sorted(ring_sent) == [2, 3, 8], (
    f"ring_sent has the keys {sorted(ring_sent)}: one entry per N = 2, 3 and 8")
for N in (2, 3, 8):
    measured = ring_allreduce([np.zeros(10**6) for _ in range(N)])
    assert ring_sent[N] == measured, (
        f"ring_sent[{N}] is {ring_sent[N]!r}: measure it with ring_allreduce on {N} buffers of "
        "10**6 numbers (np.array_split makes some chunks one number longer, so the count can "
        "differ from the formula 2(N − 1)/N · M)")
rng = np.random.default_rng(0)
for N, size in ((2, 5), (4, 10)):
    buffers = [rng.standard_normal(size) for _ in range(N)]
    total = sum(buffers)
    received, sent = star_allreduce(buffers)
    wrong = [r for r, buffer in enumerate(buffers) if not np.allclose(buffer, total)]
    assert not wrong, (f"after star_allreduce the buffers of ranks {wrong} (of {N}) do not hold "
                       "the sum of all buffers: write it into every buffer, rank 0's too")
    assert received == (N - 1) * size and sent == (N - 1) * size, (
        f"with {N} buffers of {size} numbers star_allreduce says rank 0 received {received} and "
        f"sent {sent}: rank 0 receives one whole buffer from each other rank and sends the whole "
        "sum to each other rank")
assert abs(star_over_ring - 7 * 10**6 / ring_sent[8]) < 1e-9, (
    f"star_over_ring is {star_over_ring!r}: divide what rank 0 sends in the star at N = 8, "
    "M = 10**6 by ring_sent[8]")

# %% wrong ch20-ring-cost
def star_allreduce(buffers):  # noqa: F811  (the sum sent back counted as one message)
    total = sum(buffers)
    for buffer in buffers:
        buffer[...] = total
    return sum(buffer.size for buffer in buffers[1:]), total.size

# %% wrong ch20-ring-cost
ring_sent = {N: 2 * (N - 1) * M / N for N in (2, 3, 8)}  # the formula, not the measurement

# %% exercise ch20-unequal-shards (3 points)
# The batch of B = 7 rows (rows 0 to 6 of batch()) on N = 2 ranks, rank r taking
# World(r, 2).shard(list(range(7))).
# plain_error: float, the largest relative error of the plain mean (g_0 + g_1) / 2 against the
# 7-row gradient: over the parameter tensors, the largest max|plain − whole| / max|whole|.
# Weighting inside the buckets, each rank with its own replica (make_model()) and its own
# Buckets(replica.parameters(), bucket_bytes=2048, extras=2):
# pack_weighted(replica, buckets, rows): backpropagate the rank's rows (backward_on), then pack
#   n_r · gradient, with the extras (n_r · loss, n_r), n_r = len(rows);
# unpack_weighted(replica, buckets) -> float: after the allreduce has SUMMED every rank's
#   buffers into each (no division), unpack and divide every gradient by the summed row count;
#   returns the whole batch's loss (summed n_r · loss / summed row count).
# BEGIN SOLUTION
shards7 = [World(rank, 2).shard(list(range(7))) for rank in range(2)]
model = make_model()
per_rank7 = []
for rows in shards7:
    backward_on(model, rows)
    per_rank7.append(grads(model))
backward_on(model, list(range(7)))
whole7 = grads(model)
plain = [(a + b) / 2 for a, b in zip(*per_rank7)]
plain_error = max(float(np.abs(p - w).max() / np.abs(w).max()) for p, w in zip(plain, whole7))


def pack_weighted(replica, buckets, rows):
    loss = backward_on(replica, rows)
    for p in replica.parameters():
        p.grad *= len(rows)  # n_r · gradient
    buckets.pack_grads(extras=(loss * len(rows), len(rows)))


def unpack_weighted(replica, buckets):
    loss_sum, rows_total = buckets.unpack_grads()
    for p in replica.parameters():
        p.grad /= rows_total
    return loss_sum / rows_total
# END SOLUTION

# %% check ch20-unequal-shards
def whole_batch(rows):
    """The gradients and the loss of one process on all of `rows`."""
    model = make_model()
    loss = backward_on(model, rows)
    return grads(model), loss


def weighted_run(rows, n_ranks):
    """Simulate n_ranks ranks with the answer's pack_weighted / unpack_weighted and a summing
    allreduce; returns each rank's (gradients, loss)."""
    replicas = [make_model() for _ in range(n_ranks)]
    buckets = [Buckets(r.parameters(), bucket_bytes=2048, extras=2) for r in replicas]
    for rank in range(n_ranks):
        pack_weighted(replicas[rank], buckets[rank], World(rank, n_ranks).shard(rows))
    for b in range(len(buckets[0].buffers)):  # the allreduce: the plain sum
        summed = sum(rank_buckets.buffers[b] for rank_buckets in buckets)
        for rank_buckets in buckets:
            rank_buckets.buffers[b][...] = summed
    losses = [unpack_weighted(replicas[rank], buckets[rank]) for rank in range(n_ranks)]
    return [(grads(replica), loss) for replica, loss in zip(replicas, losses)]


shards = [World(rank, 2).shard(list(range(7))) for rank in range(2)]
per_rank = []
for rows in shards:
    per_rank.append(whole_batch(rows)[0])
whole, _ = whole_batch(list(range(7)))
measured = max(float(np.abs((a + b) / 2 - w).max() / np.abs(w).max())
               for a, b, w in zip(*per_rank, whole))
assert abs(plain_error - measured) < 1e-6 * measured, (
    f"plain_error is {plain_error:.4g}: per parameter tensor divide the largest |plain − whole| "
    "by the largest |whole| (not element by element), and take the worst tensor; the plain "
    "mean is (g_0 + g_1) / 2 of the shards' gradients")
for rows, n_ranks in ((list(range(7)), 2), (list(range(8)), 3)):
    want_grads, want_loss = whole_batch(rows)
    sizes = [len(World(rank, n_ranks).shard(rows)) for rank in range(n_ranks)]
    for rank, (got_grads, got_loss) in enumerate(weighted_run(rows, n_ranks)):
        worst = max(float(np.abs(g - w).max()) for g, w in zip(got_grads, want_grads))
        assert worst < 1e-12, (
            f"{len(rows)} rows on {n_ranks} ranks (shards of {sizes} rows): rank {rank}'s "
            f"gradients differ from the whole batch's by up to {worst:.2e}; pack n_r · gradient "
            "and n_r, and after the summing allreduce divide by the summed n_r (not by N)")
        assert abs(got_loss - want_loss) < 1e-12, (
            f"{len(rows)} rows on {n_ranks} ranks: unpack_weighted returns the loss "
            f"{got_loss:.6f} on rank {rank}, not the whole batch's mean loss: send n_r · loss "
            "as the first extra and divide its sum by the summed row count")

# %% wrong ch20-unequal-shards
def unpack_weighted(replica, buckets):  # noqa: F811  (divided by the number of ranks)
    loss_sum, rows_total = buckets.unpack_grads()
    for p in replica.parameters():
        p.grad /= 2
    return loss_sum / rows_total

# %% wrong ch20-unequal-shards
def pack_weighted(replica, buckets, rows):  # noqa: F811  (the loss sent without its weight)
    loss = backward_on(replica, rows)
    for p in replica.parameters():
        p.grad *= len(rows)
    buckets.pack_grads(extras=(loss, len(rows)))

# %% wrong ch20-unequal-shards
plain_error = max(float((np.abs(p - w) / np.abs(w)).max())  # element by element
                  for p, w in zip(plain, whole7))

# %% exercise ch20-one-rank-grad (2 points)
# simulate_allreduce(no_grad_on) -> list of 3 replicas: section 3's simulation with 3 ranks,
# rank r with its own replica (make_model()), rows World(r, 3).shard(list(range(12))) and
# Buckets(replica.parameters(), bucket_bytes=2048, extras=2). Each rank backpropagates its
# rows (backward_on); on the ranks in `no_grad_on` the FIRST parameter's grad is then set to
# None; each packs (loss, number of rows); the allreduce sums the ranks' buffers and divides by
# 3, in every rank's buffers; each rank unpacks.
# first_grad_factor: float, after simulate_allreduce((1, 2)) every rank's first-parameter
# gradient is first_grad_factor times g0, rank 0's own gradient of that parameter.
# BEGIN SOLUTION
def simulate_allreduce(no_grad_on):
    replicas = [make_model() for _ in range(3)]
    buckets = [Buckets(r.parameters(), bucket_bytes=2048, extras=2) for r in replicas]
    for rank, replica in enumerate(replicas):
        rows = World(rank, 3).shard(list(range(12)))
        loss = backward_on(replica, rows)
        if rank in no_grad_on:
            list(replica.parameters())[0].grad = None
        buckets[rank].pack_grads(extras=(loss, len(rows)))
    for b in range(len(buckets[0].buffers)):  # the allreduce, one bucket at a time
        summed = sum(rank_buckets.buffers[b] for rank_buckets in buckets)
        for rank_buckets in buckets:
            rank_buckets.buffers[b][...] = summed / 3  # the sum -> the mean
    for rank_buckets in buckets:
        rank_buckets.unpack_grads()
    return replicas


first_grad_factor = 1 / 3  # (g0 + 0 + 0) / 3: the ranks without a gradient had a zero one
# END SOLUTION

# %% check ch20-one-rank-grad
model = make_model()
backward_on(model, World(0, 3).shard(list(range(12))))
g0 = grads(model)[0]
backward_on(model, list(range(12)))
whole = grads(model)
replicas = simulate_allreduce((1, 2))
assert len(replicas) == 3, f"simulate_allreduce should return the 3 replicas, not {len(replicas)}"
for rank, replica in enumerate(replicas):
    got = grads(replica)
    assert got[0] is not None, (
        f"rank {rank}'s first parameter has no gradient after unpack_grads: its flag, summed "
        "over the ranks, is positive, so unpack_grads gives it one on every rank")
    factor = float(np.sum(got[0] * g0) / np.sum(g0 * g0))
    assert np.allclose(got[0], factor * g0, rtol=1e-10, atol=1e-14), (
        f"rank {rank}'s first-parameter gradient is not a multiple of g0, rank 0's own: set "
        "grad = None on ranks 1 and 2 before pack_grads, so they pack zeros")
    assert abs(factor - first_grad_factor) < 1e-9, (
        f"rank {rank}'s first-parameter gradient is {factor:.4f} · g0, but first_grad_factor is "
        f"{first_grad_factor!r}")
    rest = max(float(np.abs(g - w).max()) for g, w in zip(got[1:], whole[1:]))
    assert rest < 1e-12, (
        f"rank {rank}'s other gradients differ from the whole batch's by up to {rest:.2e}: "
        "pack (loss, rows) after backward_on, and divide the summed buffers by 3")
assert abs(first_grad_factor - 1 / 3) < 1e-9, (
    f"first_grad_factor is {first_grad_factor!r}, and so is what your simulation gives: the "
    "whole batch's gradient is the mean over all 3 shards, and a shard whose loss does not "
    "depend on the parameter has gradient 0 there, not an unknown one")
left = [rank for rank, replica in enumerate(simulate_allreduce((0, 1, 2)))
        if grads(replica)[0] is not None]
assert not left, (f"with no rank holding the first parameter's gradient, ranks {left} still got "
                  "one: pack_grads with grad = None packs a flag 0, and unpack_grads then keeps "
                  "None")

# %% wrong ch20-one-rank-grad
def simulate_allreduce(no_grad_on):  # noqa: F811  (divided by the ranks that had a gradient)
    replicas = [make_model() for _ in range(3)]
    buckets = [Buckets(r.parameters(), bucket_bytes=2048, extras=2) for r in replicas]
    for rank, replica in enumerate(replicas):
        rows = World(rank, 3).shard(list(range(12)))
        loss = backward_on(replica, rows)
        if rank in no_grad_on:
            list(replica.parameters())[0].grad = None
        buckets[rank].pack_grads(extras=(loss, len(rows)))
    for b in range(len(buckets[0].buffers)):
        summed = sum(rank_buckets.buffers[b] for rank_buckets in buckets)
        for rank_buckets in buckets:
            rank_buckets.buffers[b][...] = summed / 3
    for replica, rank_buckets in zip(replicas, buckets):
        rank_buckets.unpack_grads()
        first = list(replica.parameters())[0]
        if first.grad is not None:  # "corrected" for the ranks that had none
            first.grad *= 3 / (3 - len(no_grad_on))
    return replicas


first_grad_factor = 1.0

# %% wrong ch20-one-rank-grad
def simulate_allreduce(no_grad_on):  # noqa: F811  (grad = None set after packing)
    replicas = [make_model() for _ in range(3)]
    buckets = [Buckets(r.parameters(), bucket_bytes=2048, extras=2) for r in replicas]
    for rank, replica in enumerate(replicas):
        rows = World(rank, 3).shard(list(range(12)))
        loss = backward_on(replica, rows)
        buckets[rank].pack_grads(extras=(loss, len(rows)))
        if rank in no_grad_on:
            list(replica.parameters())[0].grad = None
    for b in range(len(buckets[0].buffers)):
        summed = sum(rank_buckets.buffers[b] for rank_buckets in buckets)
        for rank_buckets in buckets:
            rank_buckets.buffers[b][...] = summed / 3
    for rank_buckets in buckets:
        rank_buckets.unpack_grads()
    return replicas

# %% exercise ch20-speedup (2 points)
# The timed runs need mpiexec and idle cores; graded here is the arithmetic behind them.
# steps_per_second(rows, skip=10) -> float: for the rows of a metrics.jsonl (dicts; only some
# have a "seconds" key, the wall time of one step), leave out the first `skip` rows that have
# one and return how many steps the rest are per second of their total time.
# step_ms(matmul_ms, per_parameter_ms, fixed_ms, n_ranks) -> float: one rank's step time under
# the cost model of the exercise's solution: the matmul part is divided among the ranks, the
# per-parameter part (allreduce, optimizer) and the fixed part are not.
# speedups: dict {64: s, 128: s}, the two-rank speed-up (one rank's step time over two ranks')
# when one process spends, at d_model = 64, 4 ms in the matmuls, 1 ms per-parameter and 5 ms
# fixed, and at d_model = 128 the matmul and per-parameter parts are 4 times as large.
# BEGIN SOLUTION
def steps_per_second(rows, skip=10):
    seconds = [row["seconds"] for row in rows if "seconds" in row][skip:]
    return len(seconds) / sum(seconds)


def step_ms(matmul_ms, per_parameter_ms, fixed_ms, n_ranks):
    return matmul_ms / n_ranks + per_parameter_ms + fixed_ms


speedups = {64: step_ms(4, 1, 5, 1) / step_ms(4, 1, 5, 2),
            128: step_ms(16, 4, 5, 1) / step_ms(16, 4, 5, 2)}
# END SOLUTION

# %% check ch20-speedup
rows = [{"step": 1, "seconds": 1.0}, {"step": 2, "seconds": 0.5}, {"eval_loss": 2.0},
        {"step": 3, "seconds": 0.1}, {"step": 4, "seconds": 0.3}]
got = steps_per_second(rows, skip=2)
assert abs(got - 2 / 0.4) < 1e-9, (
    f"steps_per_second(rows, skip=2) is {got!r} for the seconds 1.0, 0.5, (a row without "
    "seconds), 0.1, 0.3: skip the first 2 timed rows, then divide the number of steps left by "
    "their total time (not the mean of 1 / seconds)")
got = steps_per_second(rows, skip=0)
assert abs(got - 4 / 1.9) < 1e-9, (
    f"steps_per_second(rows, skip=0) is {got!r}: rows without 'seconds' (evaluations) are "
    "not steps")
for args, want in (((8, 2, 3, 1), 13.0), ((8, 2, 3, 4), 7.0), ((0, 1, 1, 2), 2.0)):
    got = step_ms(*args)
    assert abs(got - want) < 1e-9, (
        f"step_ms{args} is {got!r}: only the matmuls are split among the ranks; the "
        "per-parameter and fixed parts stay the same on every rank")
want = {d: step_ms(m, p, 5, 1) / step_ms(m, p, 5, 2) for d, (m, p) in ((64, (4, 1)),
                                                                         (128, (16, 4)))}
assert sorted(speedups) == [64, 128] and all(abs(speedups[d] - want[d]) < 1e-9 for d in want), (
    f"speedups is {speedups}: for each d_model divide step_ms(..., 1) by step_ms(..., 2), the "
    "matmul and per-parameter parts 4 times as large at d_model = 128, the fixed part the same")
assert speedups[128] > speedups[64], (
    f"speedups is {speedups}: the wider model should gain more from a second rank, since a "
    "larger share of its step is split")

# %% wrong ch20-speedup
def steps_per_second(rows, skip=10):  # noqa: F811  (the mean of the rates)
    return float(np.mean([1 / row["seconds"] for row in rows if "seconds" in row][skip:]))

# %% wrong ch20-speedup
def step_ms(matmul_ms, per_parameter_ms, fixed_ms, n_ranks):  # noqa: F811  (all of it split)
    return (matmul_ms + per_parameter_ms + fixed_ms) / n_ranks
