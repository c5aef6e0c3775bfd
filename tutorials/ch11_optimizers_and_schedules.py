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
# # Chapter 11 — Optimizers and learning-rate schedules
#
# Backpropagation gives a gradient; an **optimizer** decides what to do with it. The paper trained
# the Transformer with Adam and a learning rate that first rises, then decays ("Noam"). This
# chapter writes each update rule from its formula, checks it against `mt.optim`, and then meets
# the tools every training loop uses around the optimizer: parameter groups, schedules, gradient
# clipping and gradient accumulation.
#
# **Learning objectives.** After this chapter you can
#
# 1. write the SGD, momentum, Adam and AdamW updates and say how AdamW's decay differs from Adam's;
# 2. reproduce one `mt.optim.Adam` step by hand, bias correction included;
# 3. build parameter groups: a smaller `lr_scale` for some layers, no weight decay on biases and
#    LayerNorm weights;
# 4. evaluate `warmup_linear`, `warmup_cosine` and `noam`, and derive the Noam peak;
# 5. clip the global gradient norm, and show that gradient accumulation equals one large batch.

# %%
import importlib.util
import math
import os

import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn

FAST = os.environ.get("MINITRANSFORMER_FAST") == "1"  # fewer steps when set
STEPS = 40 if FAST else 200
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

# %% [markdown]
# ## 1. SGD and momentum
#
# Plain gradient descent moves against the gradient g: p ← p − lr · g. **Momentum** keeps a
# running velocity, v ← μ v + g, and steps along it, p ← p − lr · v; directions that agree from
# step to step build up speed, directions that flip cancel. We minimise the badly scaled bowl
# f(p) = ½ (p₀² + 25 p₁²) both ways.

# %%
def bowl(p):
    return 0.5 * (p[0] * p[0] + 25.0 * p[1] * p[1])


def descend(optimizer_factory, steps=STEPS):
    """f(p) before every step and after the last one."""
    p = nn.Parameter(mt.tensor([3.0, 1.0]))
    optimizer = optimizer_factory([p])
    curve = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = bowl(p)
        curve.append(loss.item())
        loss.backward()
        optimizer.step()
    return curve + [bowl(p).item()]


plain_curve = descend(lambda ps: mt.optim.SGD(ps, lr=0.03))
heavy_curve = descend(lambda ps: mt.optim.SGD(ps, lr=0.03, momentum=0.9))
plain, heavy = plain_curve[-1], heavy_curve[-1]
print(f"f after {STEPS} steps: SGD {plain:.2e}, SGD + momentum {heavy:.2e}")
assert heavy < plain

# %% [markdown]
# On a log scale: plain SGD's f falls fast at first (the steep p₁ direction) and then crawls
# along the shallow p₀ direction; momentum's curve is bumpy (it overshoots and swings back) but
# keeps falling much faster.

# %%
if HAS_MATPLOTLIB:
    mt.viz.show(mt.viz.plot_curves({"SGD": plain_curve, "SGD + momentum 0.9": heavy_curve},
                                   "ch11_momentum.png", ylabel="f(p)", logy=True))
else:
    print("matplotlib is not installed: no plot (pip install 'minitransformer[plot]')")

# %% [markdown]
# One momentum step by hand: at the first step v = g, at the second v = μ g₁ + g₂.

# %%
p = nn.Parameter(mt.tensor([3.0, 1.0]))
sgd = mt.optim.SGD([p], lr=0.1, momentum=0.9)
expected, velocity = np.array([3.0, 1.0], dtype=np.float32), None
for _ in range(2):
    sgd.zero_grad()
    bowl(p).backward()
    g = p.grad.copy()
    # BEGIN SOLUTION
    velocity = g if velocity is None else 0.9 * velocity + g
    expected = expected - 0.1 * velocity
    # END SOLUTION
    sgd.step()
assert np.allclose(p.numpy(), expected, atol=1e-6), (
    f"after two steps SGD with momentum gives {p.numpy()}, your expected is {expected}: "
    "velocity = g at the first step, then 0.9 · velocity + g; expected -= 0.1 · velocity"
)

# %% [markdown]
# ## 2. Adam, by hand
#
# Adam keeps two running averages per parameter, of the gradient and of its square, and divides
# one by the root of the other, so every coordinate moves by roughly lr whatever its scale:
#
#     m ← β₁ m + (1 − β₁) g              v ← β₂ v + (1 − β₂) g²
#     m̂ = m / (1 − β₁ᵗ)                  v̂ = v / (1 − β₂ᵗ)          (bias correction)
#     p ← p − lr · m̂ / (√v̂ + ε)
#
# m and v start at zero, so without the correction the first steps would be far too small. We run
# three steps by hand on NumPy arrays and compare with `mt.optim.Adam`.

# %%
lr, (beta1, beta2), eps = 0.01, (0.9, 0.999), 1e-8
rng = np.random.default_rng(0)
start = rng.standard_normal((3, 4)).astype(np.float32)
targets = rng.standard_normal((3, 4)).astype(np.float32)

w = nn.Parameter(mt.tensor(start))
adam = mt.optim.Adam([w], lr=lr, betas=(beta1, beta2), eps=eps)
p_hand, m, v = start.astype(np.float64), np.zeros((3, 4)), np.zeros((3, 4))
for t in range(1, 4):
    adam.zero_grad()
    ((w - mt.tensor(targets)) ** 2).sum().backward()  # gradient 2 (w - target)
    g = 2 * (p_hand - targets)
    # BEGIN SOLUTION
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    p_hand = p_hand - lr * m_hat / (np.sqrt(v_hat) + eps)
    # END SOLUTION
    adam.step()
print("largest difference from the hand-written Adam:", np.abs(w.numpy() - p_hand).max())
assert np.allclose(w.numpy(), p_hand, atol=1e-6), (
    f"your Adam differs from mt.optim.Adam by up to {np.abs(w.numpy() - p_hand).max():.2e}: "
    "m = β₁m + (1 − β₁)g, v = β₂v + (1 − β₂)g², m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ), "
    "p -= lr · m̂ / (√v̂ + ε)"
)
# At step 1, m̂ = g and v̂ = g², so every coordinate moved by lr · sign(g) (up to ε):
assert np.allclose(np.abs(p_hand - start).max(), 3 * lr, atol=1e-3), (
    f"after 3 steps the largest move should be about 3 · lr = {3 * lr}, got "
    f"{np.abs(p_hand - start).max():.4f}: check the bias correction (m / (1 − β₁ᵗ), "
    "v / (1 − β₂ᵗ)) and the step lr · m̂ / (√v̂ + ε)"
)

# %% [markdown]
# ## 3. Adam's L2 decay versus AdamW's decoupled decay
#
# `Adam(weight_decay=λ)` adds λ p to the gradient, which then goes through the division by √v̂:
# weights with large gradients are barely decayed. **AdamW** (Loshchilov & Hutter) shrinks the
# weights directly, p ← p · (1 − lr · λ), and then takes a plain Adam step. With a zero gradient
# the difference is plain to see: AdamW shrinks by exactly (1 − lr · λ), while Adam's decayed
# "gradient" λp is normalised into a step of size lr.

# %%
def one_step(optimizer_class, decay):
    p = nn.Parameter(mt.tensor([2.0, -4.0]))
    optimizer = optimizer_class([p], lr=0.1, weight_decay=decay)
    p.grad = np.zeros(2, dtype=np.float32)  # no loss at all: only the decay acts
    optimizer.step()
    return p.numpy()


print("AdamW:", one_step(mt.optim.AdamW, 0.5), " Adam:", one_step(mt.optim.Adam, 0.5))
assert np.allclose(one_step(mt.optim.AdamW, 0.5), [2.0 * 0.95, -4.0 * 0.95])
assert np.allclose(one_step(mt.optim.Adam, 0.5), [2.0 - 0.1, -4.0 + 0.1], atol=1e-5)

# %% [markdown]
# ## 4. Parameter groups
#
# An optimizer takes a list of **groups**, each a dict with `"params"` and the settings in which
# it differs. Two uses are common: no weight decay on biases and LayerNorm parameters (decaying a
# scale towards 0 or a shift towards 0 is not a sensible prior), and a smaller learning rate for
# pretrained layers while fine-tuning (`lr_scale`; a schedule's `set_lr(lr)` gives every group
# `lr · lr_scale`). A simple rule finds the no-decay parameters: they are one-dimensional.

# %%
model = nn.Sequential(nn.Linear(8, 16), nn.LayerNorm(16), nn.Linear(16, 2))
decay = [p for name, p in model.named_parameters() if p.ndim >= 2]
no_decay = [p for name, p in model.named_parameters() if p.ndim < 2]
print("no decay:", [name for name, p in model.named_parameters() if p.ndim < 2])
optimizer = mt.optim.AdamW([{"params": decay},
                            {"params": no_decay, "weight_decay": 0.0, "lr_scale": 0.5}],
                           lr=1e-3, weight_decay=0.01)
optimizer.set_lr(2e-3)
assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0]
assert [g["lr"] for g in optimizer.param_groups] == [2e-3, 1e-3]
assert len(optimizer.parameters()) == len(list(model.parameters()))

# %% [markdown]
# ## 5. Learning-rate schedules
#
# A schedule is a function of the step (counted from 1). `warmup_linear` and `warmup_cosine` rise
# linearly to `lr` over `warmup` steps, then fall linearly or along a half cosine. The paper's
# schedule (section 5.3) is
#
#     lr(step) = d_model^-0.5 · min(step^-0.5, step · warmup^-1.5)
#
# The two terms are equal when step = warmup: before, the second (linear) one is smaller; after,
# the first (1/√step). So the peak is d_model^-0.5 · warmup^-0.5 = (d_model · warmup)^-0.5,
# about 7.0e-4 for the base model (d_model 512, warmup 4000).

# %%
noam = mt.optim.noam(d_model=512, warmup=4000)
peak = (512 * 4000) ** -0.5
print(f"Noam: step 1 {noam(1):.2e}, step 4000 {noam(4000):.2e}, step 100000 {noam(100000):.2e}")
assert math.isclose(noam(4000), peak, rel_tol=1e-12)
assert max(noam(s) for s in range(1, 20001, 7)) <= peak
assert math.isclose(noam(16000), peak / 2, rel_tol=1e-12)  # 1/√step: 4× the steps, half the rate

linear = mt.optim.warmup_linear(1e-3, warmup=100, total=1000)
cosine = mt.optim.warmup_cosine(1e-3, warmup=100, total=1000, min_lr=1e-5)
for step in (1, 50, 100, 550, 1000):
    print(f"step {step:>4}: linear {linear(step):.2e}  cosine {cosine(step):.2e}")
assert linear(50) == cosine(50) == 5e-4  # the same warm-up
assert math.isclose(linear(550), 5e-4) and math.isclose(cosine(550), 1e-5 + (1e-3 - 1e-5) / 2)
assert linear(1000) == 0.0 and math.isclose(cosine(1000), 1e-5)

# %% [markdown]
# Drawn over a whole run: look at the shared warm-up ramp, then the straight fall of
# `warmup_linear` against the cosine's slow start, steep middle and flat landing on `min_lr`.

# %%
if HAS_MATPLOTLIB:
    steps = range(1, 1001)
    mt.viz.show(mt.viz.plot_curves(
        {"warmup_linear": (steps, [linear(s) for s in steps]),
         "warmup_cosine": (steps, [cosine(s) for s in steps])},
        "ch11_schedules.png", ylabel="learning rate", title="warm-up 100, total 1000"))
else:
    print("matplotlib is not installed: no plot (pip install 'minitransformer[plot]')")

# %% [markdown]
# ## 6. Clipping the gradient norm
#
# One bad batch can produce a huge gradient. `clip_grad_norm(parameters, max_norm)` computes the
# global norm √(Σ‖g‖²) over all parameters and, when it exceeds `max_norm`, scales every gradient
# by the same factor: the direction is kept, only the length shrinks.

# %%
a, b = nn.Parameter(mt.zeros(2)), nn.Parameter(mt.zeros(1))
a.grad, b.grad = np.array([3.0, 0.0], np.float32), np.array([4.0], np.float32)
norm = mt.optim.clip_grad_norm([a, b], max_norm=1.0)
assert norm == 5.0
assert np.allclose(np.concatenate([a.grad, b.grad]), [0.6, 0.0, 0.8], atol=1e-6)

# %% [markdown]
# ## 7. Gradient accumulation equals one large batch
#
# Gradients *add up* across `backward` calls until `zero_grad`. With a mean loss, the gradient of
# a batch of 8 equals the average of the gradients of its two halves. So we can run micro-batches
# of 4, scale each loss by ½, and step once: the same update as a batch of 8 that might not have
# fit in memory. (`TrainConfig(accumulate=k)` does exactly this.)

# %%
mt.manual_seed(0)
x, y = mt.randn(8, 8), mt.tensor(np.arange(8) % 2)
net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))

net.zero_grad()
F.cross_entropy(net(x), y).backward()
full = [p.grad.copy() for p in net.parameters()]

net.zero_grad()
for half in (slice(0, 4), slice(4, 8)):
    (F.cross_entropy(net(x[half]), y[half]) * 0.5).backward()  # accumulates into p.grad
accumulated = [p.grad for p in net.parameters()]
assert all(np.allclose(f, g, atol=1e-6) for f, g in zip(full, accumulated))

# %% [markdown]
# ## Summary
#
# - SGD steps against the gradient; momentum steps along a running sum of gradients.
# - Adam divides a bias-corrected mean of gradients by the root of a bias-corrected mean of their
#   squares; its first step moves every coordinate by about lr.
# - Adam's `weight_decay` is an L2 term that passes through the normalisation; AdamW shrinks the
#   weights directly by (1 − lr · λ).
# - Parameter groups give some parameters other settings: no decay on biases and LayerNorm,
#   `lr_scale` for a slower pretrained body.
# - Noam warms up linearly and decays as 1/√step, peaking at (d_model · warmup)^-0.5.
# - `clip_grad_norm` rescales all gradients together; accumulating scaled micro-batch gradients
#   gives the large batch's gradient.
#
# ## Exercises
#
# ```{exercise} Nesterov momentum on the bowl
# :label: ch11-nesterov
#
# Run `descend` with Nesterov momentum (`nesterov=True`). Is it faster on the bowl?
# ```
#
# ````{solution} ch11-nesterov
# :class: dropdown
#
# ```python
# for steps in (40, 200):
#     print(steps,
#           descend(lambda ps: mt.optim.SGD(ps, lr=0.03), steps)[-1],
#           descend(lambda ps: mt.optim.SGD(ps, lr=0.03, momentum=0.9), steps)[-1],
#           descend(lambda ps: mt.optim.SGD(ps, lr=0.03, momentum=0.9, nesterov=True), steps)[-1])
# ```
#
# | steps | SGD | momentum 0.9 | Nesterov |
# |---|---|---|---|
# | 40 | 0.39 | 0.23 | 0.019 |
# | 200 | 2.3e-5 | 4.6e-9 | 4.2e-14 |
#
# Yes, clearly: counting the steps until f < 1e-6 gives 252 for SGD, 138 for momentum and 67
# for Nesterov. Nesterov evaluates the gradient, in effect, at the point momentum is about to
# carry the parameters to, so it brakes *before* overshooting. On the steep p₁ axis
# (curvature 25, lr · 25 = 0.75) heavy-ball momentum oscillates and its oscillations decay
# slowly; the look-ahead damps them.
# ````
#
# ```{exercise} Adam without the first moment
# :label: ch11-adam-beta1-zero
#
# Set β₁ = 0 in the hand-written Adam. Which well-known optimizer is left (RMSProp)?
# ```
#
# ````{solution} ch11-adam-beta1-zero
# :class: dropdown
#
# With β₁ = 0: m = g and 1 − β₁ᵗ = 1, so m̂ = g and the update is
#
#     v ← β₂ v + (1 − β₂) g²,    p ← p − lr · g / (√(v / (1 − β₂ᵗ)) + ε)
#
# which is **RMSProp** (Hinton's lecture notes): divide the raw gradient by a running RMS of past
# gradients, with no momentum. The only difference from textbook RMSProp is the bias correction
# of v, which makes the first steps larger. `mt.optim.Adam(betas=(0.0, 0.999))` follows
# this formula: three steps on the problem of section 2 agree with it to 9e-8.
#
# ```python
# w = nn.Parameter(mt.tensor(start))
# rmsprop = mt.optim.Adam([w], lr=lr, betas=(0.0, beta2), eps=eps)
# p_hand, v = start.astype(np.float64), np.zeros((3, 4))
# for t in range(1, 4):
#     rmsprop.zero_grad()
#     ((w - mt.tensor(targets)) ** 2).sum().backward()
#     rmsprop.step()
#     g = 2 * (p_hand - targets)
#     v = beta2 * v + (1 - beta2) * g * g
#     p_hand = p_hand - lr * g / (np.sqrt(v / (1 - beta2**t)) + eps)
# print(np.abs(w.numpy() - p_hand).max())  # 9.2e-08
# ```
# ````
#
# ```{exercise} The Noam schedule for several widths
# :label: ch11-noam-widths
#
# Plot `noam(d_model, 4000)` for d_model 128, 512 and 1024. What does `factor` change?
# ```
#
# ````{solution} ch11-noam-widths
# :class: dropdown
#
# ```python
# steps = range(1, 20001, 10)
# curves = {f"d_model {d_model}": (steps, [mt.optim.noam(d_model, 4000)(s) for s in steps])
#           for d_model in (128, 512, 1024)}
# mt.viz.show(mt.viz.plot_curves(curves, "noam.png", ylabel="learning rate"))
# ```
#
# All three curves have the same shape, a linear rise to step 4000 and then a 1/√step decay;
# d_model only scales them by d_model^-0.5. The peaks are (d_model · 4000)^-0.5 = 1.40e-3,
# 6.99e-4 and 4.94e-4: a wider model gets a smaller learning rate. `factor` multiplies the
# whole curve (`noam(512, 4000, factor=2.0)(s) == 2 * noam(512, 4000)(s)` at every step): it
# changes the height, not the position of the peak, which only `warmup` moves.
# ````
#
# ```{exercise} Micro-batches of different sizes
# :label: ch11-uneven-accumulation
#
# Accumulate over micro-batches of *different* sizes (3 and 5). Which weights give the full
# batch's gradient now?
# ```
#
# ````{solution} ch11-uneven-accumulation
# :class: dropdown
#
# The full batch's mean loss is (1/8) Σ over 8 rows = (3/8) · mean of the first 3 +
# (5/8) · mean of the last 5. So each micro-batch's mean loss must be weighted by its share of
# the rows, nᵢ / N: 3/8 and 5/8, not ½ each.
#
# ```python
# net.zero_grad()
# for part in (slice(0, 3), slice(3, 8)):
#     rows = part.stop - part.start
#     (F.cross_entropy(net(x[part]), y[part]) * (rows / 8)).backward()
# print(all(np.allclose(f, p.grad, atol=1e-6) for f, p in zip(full, net.parameters())))  # True
# ```
#
# With ½ each the accumulated gradient differs from the full batch's by up to 0.034 in some
# entry: the 3 rows of the first micro-batch would count as much as the 5 of the second.
# ````
