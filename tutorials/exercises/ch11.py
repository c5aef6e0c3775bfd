# %% setup
# Chapter 11's exercises, graded: write each answer in its cell; the check cell after it says
# what is wrong, if anything. `minitransformer grade` gives each exercise its points.
import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn


def bowl(p):
    """Section 1's badly scaled bowl, f(p) = ½ (p₀² + 25 p₁²), of a Tensor p of shape (2,)."""
    return 0.5 * (p[0] * p[0] + 25.0 * p[1] * p[1])


def sgd(lr=0.03, **options):
    """An optimizer factory for descend: a function of the parameter list."""
    return lambda parameters: mt.optim.SGD(parameters, lr=lr, **options)


# %% exercise ch11-nesterov (2 points)
# descend(make_optimizer, steps): as in section 1: from p = nn.Parameter(mt.tensor([3.0, 1.0]))
#     and optimizer = make_optimizer([p]), `steps` times zero_grad, f = bowl(p), backward, step;
#     returns the list of f before every step and after the last one (steps + 1 floats).
# steps_until(make_optimizer, threshold=1e-6, max_steps=1000): the number of optimizer steps
#     taken before f first falls below threshold (0 if it starts below; max_steps if it never
#     does within max_steps steps).
# steps_to_reach: a dict with the steps_until counts of "sgd" (sgd()), "momentum"
#     (sgd(momentum=0.9)) and "nesterov" (sgd(momentum=0.9, nesterov=True)), lr 0.03 each.
# nesterov_faster: True or False: does Nesterov momentum reach 1e-6 in fewer steps than
#     heavy-ball momentum on the bowl?
# BEGIN SOLUTION
def descend(make_optimizer, steps):
    p = nn.Parameter(mt.tensor([3.0, 1.0]))
    optimizer = make_optimizer([p])
    curve = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = bowl(p)
        curve.append(loss.item())
        loss.backward()
        optimizer.step()
    return curve + [bowl(p).item()]


def steps_until(make_optimizer, threshold=1e-6, max_steps=1000):
    p = nn.Parameter(mt.tensor([3.0, 1.0]))
    optimizer = make_optimizer([p])
    for step in range(max_steps):
        optimizer.zero_grad()
        loss = bowl(p)
        if loss.item() < threshold:
            return step
        loss.backward()
        optimizer.step()
    return max_steps


steps_to_reach = {"sgd": steps_until(sgd()), "momentum": steps_until(sgd(momentum=0.9)),
                  "nesterov": steps_until(sgd(momentum=0.9, nesterov=True))}
nesterov_faster = steps_to_reach["nesterov"] < steps_to_reach["momentum"]
# END SOLUTION

# %% check ch11-nesterov
curve = [float(f) for f in descend(sgd(), 1)]
assert len(curve) == 2 and abs(curve[0] - 17.0) < 1e-5 and abs(curve[1] - 5.0153) < 1e-4, (
    f"descend(sgd(), 1) is {curve}: start at p = (3, 1), where f = 17, and take one SGD step "
    "of lr 0.03 (to p = (2.91, 0.25)); return f before the step and after it")
factories = {"sgd": sgd(), "momentum": sgd(momentum=0.9),
             "nesterov": sgd(momentum=0.9, nesterov=True)}
for name, make in factories.items():
    n = steps_until(make)
    curve = descend(make, n)
    assert curve[-1] < 1e-6 and all(f >= 1e-6 for f in curve[:-1]), (
        f"steps_until({name}) is {n}, but after {n} steps descend gives f = {curve[-1]:.3g}, "
        f"and f first falls below 1e-6 after "
        f"{next((i for i, f in enumerate(curve) if f < 1e-6), 'more than ' + str(n))} steps: "
        "count the steps taken before the first f below the threshold")
    assert steps_to_reach.get(name) == n, (
        f"steps_to_reach[{name!r}] is {steps_to_reach.get(name)!r}, but steps_until gives {n} "
        f"for {name} (check the optimizer: lr 0.03, momentum 0.9, nesterov=True for Nesterov)")
assert steps_until(sgd(), threshold=100.0) == 0 and steps_until(sgd(lr=0.0), max_steps=7) == 7, (
    "steps_until should return 0 when f starts below the threshold, and max_steps when it "
    "never gets there")
counts = steps_to_reach
assert nesterov_faster == (counts["nesterov"] < counts["momentum"]), (
    f"nesterov_faster is {nesterov_faster!r}, but your counts are {counts}")

# %% wrong ch11-nesterov
def steps_until(make_optimizer, threshold=1e-6, max_steps=1000):  # noqa: F811  (counts one late)
    p = nn.Parameter(mt.tensor([3.0, 1.0]))
    optimizer = make_optimizer([p])
    for step in range(1, max_steps + 1):
        optimizer.zero_grad()
        loss = bowl(p)
        loss.backward()
        optimizer.step()
        if loss.item() < threshold:
            return step
    return max_steps

# %% wrong ch11-nesterov
steps_to_reach = dict(steps_to_reach, nesterov=steps_until(sgd(momentum=0.9)))  # nesterov lost

# %% wrong ch11-nesterov
nesterov_faster = False

# %% exercise ch11-adam-beta1-zero (2 points)
# rmsprop_update(p, g, v, t, lr, beta2, eps): one step of the hand-written Adam of section 2
#     with β₁ = 0, on NumPy arrays: p (the parameters), g (their gradient), v (the running
#     average of g², zeros before the first step), t (the step, from 1); returns (new p, new v).
# optimizer_name: the name of the well-known optimizer that is left (a string).
# BEGIN SOLUTION
def rmsprop_update(p, g, v, t, lr, beta2, eps):
    # m = g and 1 - β₁ᵗ = 1: the first moment is the raw gradient
    v = beta2 * v + (1 - beta2) * g * g
    return p - lr * g / (np.sqrt(v / (1 - beta2**t)) + eps), v


optimizer_name = "RMSProp"
# END SOLUTION

# %% check ch11-adam-beta1-zero
rng = np.random.default_rng(0)
start = rng.standard_normal((3, 4)).astype(np.float32)
targets = rng.standard_normal((3, 4)).astype(np.float32)
for lr, beta2 in [(0.01, 0.999), (0.05, 0.9)]:
    w = nn.Parameter(mt.tensor(start))
    adam = mt.optim.Adam([w], lr=lr, betas=(0.0, beta2), eps=1e-8)
    p, v = start.astype(np.float64), np.zeros((3, 4))
    for t in range(1, 4):
        adam.zero_grad()
        ((w - mt.tensor(targets)) ** 2).sum().backward()
        adam.step()
        p, v = rmsprop_update(p, 2 * (p - targets), v, t, lr, beta2, 1e-8)
        gap = np.abs(np.asarray(p) - w.numpy()).max()
        assert gap < 1e-5, (
            f"after step {t} (lr {lr}, β₂ {beta2}) rmsprop_update differs from "
            f"mt.optim.Adam(betas=(0.0, {beta2})) by up to {gap:.3g}: set β₁ = 0 in section "
            "2's update and simplify m and m̂; v and its bias correction stay as they are")
name = "".join(c for c in str(optimizer_name).lower() if c.isalpha())
assert name == "rmsprop", (
    f"optimizer_name is {optimizer_name!r}: which optimizer divides the raw gradient by a "
    "running root mean square of past gradients, with no momentum?")

# %% wrong ch11-adam-beta1-zero
def rmsprop_update(p, g, v, t, lr, beta2, eps):  # noqa: F811  (textbook: no bias correction)
    v = beta2 * v + (1 - beta2) * g * g
    return p - lr * g / (np.sqrt(v) + eps), v

# %% wrong ch11-adam-beta1-zero
optimizer_name = "AdaGrad"  # a sum of squares, not a running average

# %% exercise ch11-noam-widths (1 point)
# noam_peak(d_model, warmup, factor=1.0): the largest value of
#     mt.optim.noam(d_model, warmup, factor=factor) over all steps, from its formula.
# peak_step(d_model, warmup, factor=1.0): the step at which that largest value is reached.
# factor_changes: "height" or "position": what does `factor` change in the curve?
# BEGIN SOLUTION
def noam_peak(d_model, warmup, factor=1.0):
    return factor * (d_model * warmup) ** -0.5  # both terms equal at step = warmup


def peak_step(d_model, warmup, factor=1.0):
    return warmup


factor_changes = "height"  # factor multiplies the whole curve
# END SOLUTION

# %% check ch11-noam-widths
for d_model, warmup, factor in [(128, 4000, 1.0), (512, 4000, 1.0), (1024, 4000, 1.0),
                                (512, 400, 2.0), (64, 50, 0.5)]:
    schedule = mt.optim.noam(d_model, warmup, factor=factor)
    steps = np.arange(1, 3 * warmup)
    values = np.array([schedule(int(s)) for s in steps])
    peak = noam_peak(d_model, warmup, factor)
    assert abs(peak - values.max()) <= 1e-9 * values.max(), (
        f"noam_peak({d_model}, {warmup}, factor={factor}) is {peak:.4g}, but the schedule's "
        f"largest value is {values.max():.4g}: the two terms of the min are equal at the peak; "
        "see where factor enters the schedule's formula")
    step = peak_step(d_model, warmup, factor)
    assert step == int(steps[values.argmax()]), (
        f"peak_step({d_model}, {warmup}, factor={factor}) is {step}, but the schedule peaks at "
        f"step {int(steps[values.argmax()])}: where do step^-0.5 and step · warmup^-1.5 meet?")
assert factor_changes == "height", (
    f"factor_changes is {factor_changes!r}: compare noam(512, 4000, factor=2.0) with "
    "noam(512, 4000) step by step (and where each peaks)")

# %% wrong ch11-noam-widths
def noam_peak(d_model, warmup, factor=1.0):  # noqa: F811  (factor forgotten)
    return (d_model * warmup) ** -0.5

# %% wrong ch11-noam-widths
factor_changes = "position"

# %% exercise ch11-uneven-accumulation (2 points)
# micro_batch_weights(sizes): the weight of each micro-batch's mean loss (a list of floats,
#     one per size) such that the accumulated gradient equals that of the whole batch of
#     sum(sizes) rows.
# accumulate(net, x, y, sizes): zero net's gradients, then for consecutive row blocks of x
#     and y of the given sizes, backward of F.cross_entropy(net(block), labels) times the
#     block's weight; the gradients are left in the parameters' .grad.
# BEGIN SOLUTION
def micro_batch_weights(sizes):
    total = sum(sizes)
    return [size / total for size in sizes]  # each block's share of the rows


def accumulate(net, x, y, sizes):
    net.zero_grad()
    start = 0
    for size, weight in zip(sizes, micro_batch_weights(sizes)):
        rows = slice(start, start + size)
        (F.cross_entropy(net(x[rows]), y[rows]) * weight).backward()
        start += size
# END SOLUTION

# %% check ch11-uneven-accumulation
weights = [float(w) for w in micro_batch_weights([3, 5])]
assert len(weights) == 2 and abs(sum(weights) - 1) < 1e-9, (
    f"micro_batch_weights([3, 5]) is {weights}: with mean losses, the weights of a batch split "
    "into micro-batches add up to 1")
mt.manual_seed(0)
x, y = mt.randn(8, 8), mt.tensor(np.arange(8) % 2)
net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
net.zero_grad()
F.cross_entropy(net(x), y).backward()
full = [p.grad.copy() for p in net.parameters()]
for sizes in ([3, 5], [1, 2, 5], [4, 4]):
    accumulate(net, x, y, sizes)
    gap = max(np.abs(f - p.grad).max() for f, p in zip(full, net.parameters()))
    assert gap < 1e-6, (
        f"accumulating micro-batches of {sizes} rows differs from the full batch's gradient by "
        f"up to {gap:.3g}: write the full batch's mean loss (a sum over N rows, divided by N) "
        "as a sum of the blocks' mean losses to find each block's weight (and zero the "
        "gradients first)")

# %% wrong ch11-uneven-accumulation
def micro_batch_weights(sizes):  # noqa: F811  (½ each, as for equal halves)
    return [1 / len(sizes)] * len(sizes)

# %% wrong ch11-uneven-accumulation
def accumulate(net, x, y, sizes):  # noqa: F811  (no zero_grad: last call's gradients kept)
    start = 0
    for size, weight in zip(sizes, micro_batch_weights(sizes)):
        rows = slice(start, start + size)
        (F.cross_entropy(net(x[rows]), y[rows]) * weight).backward()
        start += size
