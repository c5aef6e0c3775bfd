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
# # Chapter 6 — Modules and layers
#
# A Transformer has hundreds of weight tensors. Passing them around by hand would bury the model's
# idea under bookkeeping, so, as in PyTorch, weights live inside **modules**: objects that own
# their parameters, contain other modules, and compute something in `forward`. A module can list
# every parameter under its full dotted name, switch between training and evaluation, and save and
# load its weights. This chapter builds modules, then meets the layers the Transformer is made of:
# `Linear`, `LayerNorm`, `Dropout` and `FeedForward`.
#
# **Learning objectives.** After this chapter you can
#
# 1. write a `Module` whose `Parameter`s and sub-modules register themselves, and read their
#    dotted names from `named_parameters()`;
# 2. switch a model between `train()` and `eval()` and predict what dropout does in each;
# 3. save and restore weights with `state_dict()` / `load_state_dict()`;
# 4. explain `Linear`'s (in, out) weight layout and convert weights from PyTorch's (out, in);
# 5. state what `LayerNorm` and the position-wise `FeedForward` compute;
# 6. initialise weights (Xavier) and say why the scale matters;
# 7. check every gradient of a layer with `mt.gradcheck_module`, and train a small network with
#    `mt.optim.Adam`.

# %%
import importlib.util
import math
import os

import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn

FAST = os.environ.get("MINITRANSFORMER_FAST") == "1"  # fewer training steps when set
STEPS = 60 if FAST else 150
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

# %% [markdown]
# ## 1. A module of our own
#
# A module subclasses `nn.Module`, calls `super().__init__()` first, and then simply *assigns
# attributes*. Assigning a `Parameter` (a tensor that requires grad) registers it as a parameter;
# assigning another `Module` registers it as a sub-module. `forward` says what the module computes,
# and calling the module calls `forward`.
#
# Our first module scales and shifts each feature: y = x ⊙ w + b.

# %%
class Affine(nn.Module):
    """y = x * weight + bias, feature by feature.  Shapes: x (..., dim) -> (..., dim)"""

    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(mt.ones(dim))  # registered as "weight"
        self.bias = nn.Parameter(mt.zeros(dim))  # registered as "bias"
        self.dim = dim  # a plain attribute: not a parameter

    def forward(self, x):
        return x * self.weight + self.bias


affine = Affine(3)
print([name for name, _ in affine.named_parameters()])
assert [name for name, _ in affine.named_parameters()] == ["weight", "bias"]
assert affine(mt.ones(2, 3)).shape == (2, 3)
assert affine.weight.requires_grad and affine.weight.is_leaf

# %% [markdown]
# Modules nest, and names follow the attribute path: a parameter `weight` of the sub-module stored
# as `self.scale` is called `scale.weight`. A `ModuleList` registers its entries as `0`, `1`, …,
# which is why a Transformer's parameters have names like `encoder.layers.0.self_attn.w_q.weight`.

# %%
class Stack(nn.Module):
    """A few Affine layers and a final Linear, to show how names nest."""

    def __init__(self, dim, depth):
        super().__init__()
        self.layers = nn.ModuleList(Affine(dim) for _ in range(depth))
        self.head = nn.Linear(dim, 2)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


stack = Stack(3, depth=2)
for name, parameter in stack.named_parameters():
    print(f"{name:<16} {parameter.shape}")
names = [name for name, _ in stack.named_parameters()]
assert names == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
                 "head.weight", "head.bias"]
assert stack.num_parameters() == 2 * (3 + 3) + (3 * 2 + 2)
print(stack)

# %% [markdown]
# Because every parameter can be found from the top module, an optimizer needs only
# `model.parameters()`, and `model.zero_grad()` clears all gradients at once.

# %%
stack(mt.randn(4, 3)).sum().backward()
assert all(p.grad is not None for p in stack.parameters())
stack.zero_grad()
assert all(p.grad is None for p in stack.parameters())

# %% [markdown]
# ## 2. `train()` and `eval()`: dropout
#
# Dropout (Srivastava et al. 2014) zeroes each activation with probability p during training, so
# the network cannot rely on any single unit. minitransformer's dropout is *inverted*: it scales
# the survivors by 1/(1 − p) at training time, so the expected value of every element is unchanged
# and evaluation needs no rescaling: in evaluation mode dropout is the identity.
#
# The mode is a flag on each module; `train()` and `eval()` set it on a module *and every module
# below it*, and return the module.

# %%
mt.manual_seed(0)
drop = nn.Dropout(p=0.5)
x = mt.ones(10_000)
y = drop(x)  # a new module is in training mode
values = set(np.unique(y.numpy()).tolist())
print(f"training: values {values}, fraction zeroed {np.mean(y.numpy() == 0):.3f}, "
      f"mean {y.mean().item():.3f}")
assert values == {0.0, 2.0} and abs(np.mean(y.numpy() == 0) - 0.5) < 0.03

drop.eval()
assert drop(x) is x  # evaluation: the identity, not even a copy
ff = nn.FeedForward(4, 8, dropout=0.1).eval()
assert all(not module.training for module in ff.modules())  # the flag reached every sub-module
assert ff.train() is ff and ff.dropout.training

# %% [markdown]
# ## 3. `state_dict()`: saving and loading weights
#
# `state_dict()` maps every parameter's dotted name to a NumPy copy of its values.
# `load_state_dict()` copies such a dict back in place. Round trip: a second, differently
# initialised model becomes an exact copy of the first.

# %%
mt.manual_seed(1)
first, second = Stack(3, depth=2), Stack(3, depth=2)
x = mt.randn(5, 3)
assert not np.allclose(first(x).numpy(), second(x).numpy())

state = first.state_dict()
print({name: array.shape for name, array in state.items()})
second.load_state_dict(state)
assert np.array_equal(first(x).numpy(), second(x).numpy())

state["head.weight"][...] = 0.0  # the dict holds copies: the model is untouched
assert not np.all(first.head.weight.numpy() == 0.0)

# %% [markdown]
# A state that does not fit is refused as a whole, with a message that lists every problem:

# %%
try:
    second.load_state_dict({"head.weight": np.zeros((2, 3), dtype=np.float32)})
except nn.StateDictError as error:
    print("StateDictError:", error)
    assert "missing" in str(error) and "wrong shape" in str(error)
else:
    raise AssertionError("an incomplete, wrongly shaped state must be refused")

# %% [markdown]
# ## 4. `Linear`: y = x W + b, with W stored as (in, out)
#
# The paper writes its projections as X W^Q: a row of inputs times a matrix. minitransformer's
# `Linear(in_features, out_features)` stores its weight exactly that way, as an
# (in_features, out_features) matrix, and computes `x @ W + b`. It works on any number of leading
# axes: a (B, T, in) batch of sequences becomes (B, T, out).
#
# **Deviation from PyTorch:** `torch.nn.Linear` stores (out_features, in_features) and computes
# x Wᵀ + b. Transpose the weight when moving weights between the two.

# %%
linear = nn.Linear(4, 3)
print(linear, " weight", linear.weight.shape, " bias", linear.bias.shape)
assert linear.weight.shape == (4, 3) and linear.bias.shape == (3,)
x = mt.randn(2, 5, 4)  # (B, T, in)
y = linear(x)  # (B, T, out)
assert y.shape == (2, 5, 3)
assert np.allclose(y.numpy(), x.numpy() @ linear.weight.numpy() + linear.bias.numpy(), atol=1e-6)

# %% [markdown]
# Suppose a PyTorch model gave us a weight `w_torch` of shape (out, in) = (3, 4). We load its
# transpose, and both conventions compute the same function.

# %%
rng = np.random.default_rng(0)
w_torch = rng.standard_normal((3, 4)).astype(np.float32)  # PyTorch layout (out, in)
b_torch = rng.standard_normal(3).astype(np.float32)
linear.load_state_dict({"weight": w_torch.T.copy(), "bias": b_torch})  # ours: (in, out)
x_np = rng.standard_normal((6, 4)).astype(np.float32)
assert np.allclose(linear(mt.tensor(x_np)).numpy(), x_np @ w_torch.T + b_torch, atol=1e-6)
print("PyTorch's x Wᵀ + b == our x W + b after one transpose")

# %% [markdown]
# ## 5. `LayerNorm`
#
# Layer normalization (Ba et al. 2016) rescales every feature vector to mean 0 and variance 1,
# then applies a learned per-feature scale γ (`weight`, starting at 1) and shift β (`bias`,
# starting at 0):
#
#     μ = mean(x),  σ² = var(x)   (over the last axis, correction 0)
#     LayerNorm(x) = (x − μ) / √(σ² + ε) · γ + β
#
# Every position is normalised on its own, independent of the batch and of other positions. The
# Transformer applies it after (or before, Chapter 10) every sub-layer to keep activations in a
# steady range.

# %%
norm = nn.LayerNorm(6)
print(norm, [name for name, _ in norm.named_parameters()])
x = mt.randn(2, 3, 6) * 5.0 + 3.0  # far from mean 0, variance 1
y = norm(x)
print("mean per position:", np.round(y.numpy().mean(axis=-1), 6).ravel()[:3], "...")
print("var  per position:", np.round(y.numpy().var(axis=-1), 4).ravel()[:3], "...")
assert np.allclose(y.numpy().mean(axis=-1), 0.0, atol=1e-5)
assert np.allclose(y.numpy().var(axis=-1), 1.0, atol=1e-3)  # √(σ² + ε) is a hair above σ
# BEGIN SOLUTION
by_hand = (x - x.mean(axis=-1, keepdims=True)) / (x.var(axis=-1, keepdims=True) + norm.eps).sqrt()
# END SOLUTION
assert np.allclose(y.numpy(), by_hand.numpy(), atol=1e-5), (
    f"by_hand differs from LayerNorm's output by up to "
    f"{np.abs(y.numpy() - by_hand.numpy()).max():.2e}: normalise over the last axis, "
    "(x − mean) / √(var + norm.eps), both with keepdims=True and var without correction"
)

# %% [markdown]
# With trained γ and β the output can take any per-feature mean and scale again; normalisation only
# removes the scale the *previous* layers happened to produce.

# %%
norm.weight.data[...] = 2.0
norm.bias.data[...] = -1.0
assert np.allclose(norm(x).numpy(), 2.0 * y.numpy() - 1.0, atol=1e-5)

# %% [markdown]
# ## 6. `FeedForward`: the position-wise network
#
# Each Transformer layer ends in a two-layer network applied to every position separately and
# identically (the paper, section 3.3):
#
#     FFN(x) = max(0, x W₁ + b₁) W₂ + b₂          d_model → d_ff → d_model
#
# The paper uses d_model = 512 and d_ff = 2048. "Position-wise" means the result at one position
# depends on that position's vector only, which we check by running the positions one at a time.

# %%
mt.manual_seed(2)
ff = nn.FeedForward(d_model=4, d_ff=16)
print(ff)
x = mt.randn(2, 5, 4)  # (B, T, d_model)
y = ff(x)
assert y.shape == x.shape
for t in range(5):
    assert np.allclose(ff(x[:, t : t + 1]).numpy(), y[:, t : t + 1].numpy(), atol=1e-6)
hidden = F.relu(ff.linear1(x))  # (B, T, d_ff)
assert np.allclose(ff.linear2(hidden).numpy(), y.numpy(), atol=1e-6)
assert ff.num_parameters() == 4 * 16 + 16 + 16 * 4 + 4
print("FeedForward acts on each position on its own")

# %% [markdown]
# ## 7. Initialisation
#
# Weights start random, and their *scale* matters. If each layer multiplies the variance of its
# activations by a factor a, then after L layers it is a^L: vanishing for a < 1, exploding for
# a > 1. For y = x W with independent inputs of variance v and weights of variance s², each output
# sums `fan_in` products, so var(y) = fan_in · s² · v. Keeping both the forward signal and the
# backward gradient steady led Glorot and Bengio (2010) to
#
#     Var(W) = 2 / (fan_in + fan_out)
#     xavier_uniform:  W ~ U(−a, a),  a = √(6 / (fan_in + fan_out))
#
# (a uniform variable on (−a, a) has variance a²/3). `nn.init` fills a tensor in place from the
# shared generator. Note the fans follow our (in, out) layout: fan_in = shape[0].

# %%
mt.manual_seed(3)
fan_in, fan_out = 256, 256
weight = nn.init.xavier_uniform(mt.zeros(fan_in, fan_out))
bound = math.sqrt(6 / (fan_in + fan_out))
print(f"bound {bound:.4f}, max |w| {np.abs(weight.numpy()).max():.4f}, "
      f"var {weight.numpy().var():.5f} (target {2 / (fan_in + fan_out):.5f})")
assert np.abs(weight.numpy()).max() <= bound
assert abs(weight.numpy().var() / (2 / (fan_in + fan_out)) - 1) < 0.05

# %% [markdown]
# Push a signal through a stack of 20 square layers, with Xavier weights and with weights ten times
# smaller or three times larger: only the right scale keeps the variance in a usable range.
# (`mt.no_grad()`: we only look, so no graph is recorded.)

# %%
def variance_after(depth, scale, size=128):
    mt.manual_seed(4)
    x = mt.randn(64, size)
    with mt.no_grad():
        for _ in range(depth):
            x = x @ (nn.init.xavier_uniform(mt.zeros(size, size)) * scale)
    return x.var().item()


for scale in (0.1, 1.0, 3.0):
    print(f"scale {scale:>3} x Xavier: variance after 20 layers = {variance_after(20, scale):.3g}")
assert 0.3 < variance_after(20, 1.0) < 3.0
assert variance_after(20, 0.1) < 1e-30 and variance_after(20, 3.0) > 1e15

# %% [markdown]
# `Linear` itself starts from PyTorch's default, U(−1/√in, 1/√in); the Transformer of Chapter 10
# re-initialises its matrices with `xavier_uniform`, as common implementations of the paper do.

# %%
big_linear = nn.Linear(400, 300)
assert np.abs(big_linear.weight.numpy()).max() <= 1 / math.sqrt(400)

# %% [markdown]
# ## 8. Gradient-checking a whole layer: `mt.gradcheck_module`
#
# `mt.gradcheck_module(module, *inputs)` checks the gradient with respect to every input *and every
# parameter*, naming each by its dotted name if one fails. Gradient checks run in float64, so we
# convert the layer first with `.double()` (the float32 inputs are converted by the checker).

# %%
mt.manual_seed(5)
x = mt.randn(2, 3, 4)
for layer in [nn.Linear(4, 5), nn.LayerNorm(4), nn.FeedForward(4, 8), Stack(4, depth=2)]:
    layer.double()
    report = mt.gradcheck_module(layer, x, report=True)
    print(f"{type(layer).__name__:<12} checked {list(report.shapes)}")
    assert "input 0" in report.shapes

# %% [markdown]
# Dropout is random, yet its layer can be checked too: the checker re-seeds the shared generator
# before every forward pass, so each pass drops the same units.

# %%
ff = nn.FeedForward(4, 8, dropout=0.5).double().train()
assert mt.gradcheck_module(ff, x)
print("FeedForward with active dropout passes gradcheck_module")

# %% [markdown]
# ## 9. Training a small network with Adam
#
# Everything comes together in a training loop: a model (a module), a loss, and an optimizer that
# holds `model.parameters()` and updates them from their `.grad`:
#
#     optimizer.zero_grad()          clear last step's gradients (they accumulate, Chapter 3)
#     loss = loss_fn(model(x), y)    forward
#     loss.backward()                gradients of every parameter
#     optimizer.step()               update the parameters in place
#
# Our task: classify 2-d points by the quadrant they lie in, XOR-style (class 1 when x₁·x₂ > 0).
# No straight line separates the classes, so the network needs its hidden layer. We use Adam
# (the chapter on optimizers explains it); here it is just "a good step rule".

# %%
class MLP(nn.Module):
    """Two Linear layers with a ReLU between.  Shapes: x (N, 2) -> logits (N, 2)"""

    def __init__(self, hidden):
        super().__init__()
        self.linear1 = nn.Linear(2, hidden)
        self.linear2 = nn.Linear(hidden, 2)

    def forward(self, x):
        # BEGIN SOLUTION
        return self.linear2(F.relu(self.linear1(x)))  # (N, hidden) -> (N, 2)
        # END SOLUTION


mt.manual_seed(6)
rng = np.random.default_rng(6)
points = rng.uniform(-1, 1, (256, 2))
labels = mt.tensor((points[:, 0] * points[:, 1] > 0).astype(np.int64))
inputs = mt.tensor(points.astype(np.float32))

model = MLP(hidden=32)
optimizer = mt.optim.Adam(model.parameters(), lr=0.03)
losses = []
for step in range(STEPS):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(inputs), labels)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
    if step % (STEPS // 5) == 0 or step == STEPS - 1:
        print(f"step {step:>3}: loss {loss.item():.4f}")

with mt.no_grad():
    accuracy = (model(inputs).numpy().argmax(axis=1) == labels.numpy()).mean()
print(f"training accuracy {accuracy:.1%}")
assert losses[-1] < 0.5 * losses[0] and accuracy > 0.85, (
    f"the MLP should halve its loss and pass 85% accuracy, got loss {losses[0]:.3f} -> "
    f"{losses[-1]:.3f}, accuracy {accuracy:.1%}: forward should return "
    "linear2(F.relu(linear1(x))), with the ReLU between the two layers"
)

# %% [markdown]
# The loss at every step: look at it starting near ln 2 ≈ 0.69 (chance for two classes) and
# flattening out once the hidden units have carved out the quadrants.

# %%
if HAS_MATPLOTLIB:
    mt.viz.show(mt.viz.plot_curves({"training loss": losses}, "ch06_xor_loss.png",
                                   ylabel="cross-entropy", title="XOR quadrants, Adam"))
else:
    print("matplotlib is not installed: no plot (pip install 'minitransformer[plot]')")

# %% [markdown]
# ## Summary
#
# - A `Module` registers each `Parameter` and sub-module assigned to it; `named_parameters()` lists
#   them by dotted attribute path (`layers.0.weight`), `parameters()` feeds the optimizer.
# - `train()`/`eval()` set the mode of a module and everything below it; inverted dropout scales
#   by 1/(1 − p) while training and is the identity in evaluation.
# - `state_dict()` gives NumPy copies by name; `load_state_dict()` copies them back, refusing a
#   state that does not fit and saying why.
# - `Linear` stores W as (in, out) and computes x W + b, as the paper writes X W^Q; PyTorch's
#   weights are (out, in), so transpose when converting.
# - `LayerNorm` normalises each position's features to mean 0, variance 1, then scales and shifts;
#   `FeedForward` is relu(x W₁ + b₁) W₂ + b₂, applied to each position separately.
# - Xavier initialisation, Var(W) = 2/(fan_in + fan_out), keeps the signal's variance steady
#   through depth.
# - `mt.gradcheck_module` checks the gradients of a layer's inputs and of all its parameters.
#
# ## Exercises
#
# ```{exercise} A residual wrapper
# :label: ch06-residual
#
# Write a `Residual(nn.Module)` that wraps any module f and computes x + f(x). Wrap a
# `FeedForward` in it, print the parameter names, and pass it through `mt.gradcheck_module`.
# ```
#
# ````{solution} ch06-residual
# :class: dropdown
#
# ```python
# class Residual(nn.Module):
#     """x + sublayer(x).  Shapes: x (..., D) -> (..., D); the sublayer must keep the shape."""
#
#     def __init__(self, sublayer):
#         super().__init__()
#         self.sublayer = sublayer  # a Module attribute: registered as a sub-module
#
#     def forward(self, x):
#         return x + self.sublayer(x)
#
#
# mt.manual_seed(0)
# res = Residual(nn.FeedForward(4, 8)).double()
# print([name for name, _ in res.named_parameters()])
# # ['sublayer.linear1.weight', 'sublayer.linear1.bias',
# #  'sublayer.linear2.weight', 'sublayer.linear2.bias']
# assert mt.gradcheck_module(res, mt.randn(2, 3, 4))
# ```
#
# The names gain the prefix of the attribute the sub-module was assigned to, and the check
# passes for the input and all four parameters. The input's gradient is g + (the FeedForward's
# input gradient): the identity path is why residual connections keep gradients alive in deep
# stacks.
# ````
#
# ```{exercise} One Linear, two attributes
# :label: ch06-shared-linear
#
# Assign the *same* `nn.Linear` to two attributes of a module. How many times does it appear in
# `named_parameters()` and in `num_parameters()`? After one backward, what does its `.grad`
# hold?
# ```
#
# ````{solution} ch06-shared-linear
# :class: dropdown
#
# ```python
# class Twice(nn.Module):
#     def __init__(self):
#         super().__init__()
#         self.first = nn.Linear(3, 3)
#         self.second = self.first  # the same object
#
#     def forward(self, x):
#         return self.second(self.first(x))
#
#
# twice = Twice()
# print([name for name, _ in twice.named_parameters()], twice.num_parameters())
# # ['first.weight', 'first.bias'] 12
# ```
#
# Once: `named_parameters()` skips a parameter it has already listed, under the first name it
# was found, so `num_parameters()` is 3·3 + 3 = 12, not 24, and `state_dict()` has the two keys
# `first.*` only (the optimizer must not update one tensor twice). The `.grad` after backward is
# the **sum** of the gradients from both uses: with h = xW + b and y = hW + b,
# ∂L/∂W = xᵀ(g Wᵀ) + hᵀg; checking it against that formula agrees to 1e-5. This is exactly how
# weight tying works (Chapter 10's `tie_output`).
# ````
#
# ```{exercise} Variance through a layer
# :label: ch06-init-variance
#
# Measure the variance of `nn.Linear(512, 512)(x)` for x ~ N(0, 1) with the default
# initialisation and with `xavier_uniform`. Which is closer to preserving variance, and what
# does the ReLU in `FeedForward` do to it? (He et al. 2015 propose Var(W) = 2 / fan_in.)
# ```
#
# ````{solution} ch06-init-variance
# :class: dropdown
#
# ```python
# mt.manual_seed(1)
# x = mt.randn(4096, 512)
# with mt.no_grad():
#     default = nn.Linear(512, 512)
#     xavier = nn.Linear(512, 512)
#     nn.init.xavier_uniform(xavier.weight)
#     xavier.bias.data[...] = 0.0
#     print(default(x).var().item(), xavier(x).var().item())  # 0.334 1.000
#     h = F.relu(xavier(x))
#     print((h * h).mean().item())                            # 0.501
# ```
#
# The default U(−1/√512, 1/√512) has Var(W) = 1/(3·512), so var(y) = 512 · Var(W) = 1/3
# (measured 0.334): each layer shrinks the signal threefold. Xavier with fan_in = fan_out has
# Var(W) = 1/512 and keeps it at 1.000. A ReLU zeroes half of a symmetric input, so the second
# moment E[h²] that feeds the next layer halves (0.501). He initialisation doubles Var(W) to
# 2/fan_in to win that factor back. Over ten Linear+ReLU layers (same x, biases zero), the mean
# square of the output is 1.6e-8 with the default init, 6.8e-4 with Xavier (≈ 0.5¹⁰) and 0.74
# with He's normal N(0, 2/512). In the Transformer, LayerNorm after every sub-layer resets the
# scale, which is why Xavier is enough there.
# ````
#
# ```{exercise} Width and optimizer for XOR
# :label: ch06-xor-settings
#
# Train the MLP of section 9 with `hidden=2` and with `hidden=64`, and with `mt.optim.SGD`
# instead of Adam. Which settings fail to learn XOR, and why can a network with no hidden layer
# never do it?
# ```
#
# ````{solution} ch06-xor-settings
# :class: dropdown
#
# Training for the full-mode 150 steps (`STEPS`) from `mt.manual_seed(6)` on the same 256 points:
#
# | model | optimizer, lr | final loss | accuracy |
# |---|---|---|---|
# | no hidden layer (`nn.Linear(2, 2)`) | Adam 0.03 | 0.690 | 59.8% |
# | hidden = 2 | Adam 0.03 | 0.690 | 59.8% |
# | hidden = 32 | Adam 0.03 | 0.020 | 100% |
# | hidden = 64 | Adam 0.03 | 0.012 | 100% |
# | hidden = 64 | SGD 0.03 | 0.552 | 86.3% |
# | hidden = 64 | SGD 0.5 | 0.094 | 100% |
#
# `hidden=2` fails: with this seed it ends exactly where the linear model does, and with seeds
# 1, 2, 3 it reaches only 66–72% even after 1000 steps; two ReLU units can bend the boundary
# once or twice but cannot carve out two opposite quadrants reliably. Width 64 learns easily.
# Plain SGD at Adam's learning rate 0.03 is merely *slow* (86% after 150 steps, loss not yet
# halved); with lr 0.5 it learns too. Without a hidden layer the logits are linear in x, so the
# decision boundary is one straight line, and no line puts quadrants I and III on one side and II
# and IV on the other: XOR is not linearly separable, whatever the optimizer.
# ````
