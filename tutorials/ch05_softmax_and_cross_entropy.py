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
# # Chapter 5 — Softmax and cross-entropy
#
# A language model ends in a vector of *logits*, one real number per word of the vocabulary.
# Softmax turns them into a probability distribution, and cross-entropy scores that distribution
# against the word that actually came next. The same softmax also sits at the heart of attention
# (Chapter 7), where it turns similarity scores into weights. This chapter builds both, shows why a
# careful implementation subtracts the maximum first, and derives the famous gradient p − q.
#
# **Learning objectives.** After this chapter you can
#
# 1. compute softmax and explain why it is unchanged by adding a constant to every logit;
# 2. show how a naive softmax overflows in float32, and why subtracting the max fixes it;
# 3. relate log-softmax, log-sum-exp and cross-entropy, and say why the log-space forms are used;
# 4. compute cross-entropy for (N, C) and (B, T, C) logits, leave padding out with
#    `ignore_index`, and smooth labels with `label_smoothing`;
# 5. derive the gradient ∂loss/∂z = p − q and verify it numerically;
# 6. turn a cross-entropy into a perplexity.

# %%
import importlib.util
import math
import os

import numpy as np

import minitransformer as mt
import minitransformer.functional as F

FAST = os.environ.get("MINITRANSFORMER_FAST") == "1"  # smaller gradient-check inputs when set
N, C = (4, 5) if FAST else (8, 10)  # rows, classes
B, T = (2, 3) if FAST else (3, 6)  # batch, sequence
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

# %% [markdown]
# ## 1. Softmax
#
# For logits z = (z₁, …, z_C),
#
#     softmax(z)ᵢ = e^{zᵢ} / Σⱼ e^{zⱼ}
#
# Every output is positive and they sum to 1: a probability distribution whose largest entry sits
# where the largest logit is. The exponential makes differences matter, not levels:
#
#     softmax(z + c)ᵢ = e^{zᵢ} e^c / Σⱼ e^{zⱼ} e^c = softmax(z)ᵢ      for any constant c.

# %%
z = mt.tensor([2.0, 1.0, 0.1])
p = F.softmax(z)
print("softmax", p)
assert np.isclose(p.sum().item(), 1.0) and (p.numpy() > 0).all()
assert np.allclose(p.numpy(), np.exp(z.numpy()) / np.exp(z.numpy()).sum())
assert np.allclose(F.softmax(z + 100.0).numpy(), p.numpy())  # shifting changes nothing

# %% [markdown]
# Shifting changes nothing, but *scaling* does: softmax(z / τ) with a **temperature** τ < 1
# stretches the differences, τ > 1 shrinks them (Chapter 16 samples this way). In the bars, look
# at τ = 0.25 heading for one-hot on the largest logit and τ = 4 heading for uniform.

# %%
temperatures = (0.25, 1.0, 4.0)
by_temperature = {tau: F.softmax(z / tau).numpy() for tau in temperatures}
assert by_temperature[0.25].max() > p.numpy().max() > by_temperature[4.0].max() > 1 / 3
if HAS_MATPLOTLIB:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 3), layout="constrained")
    for k, tau in enumerate(temperatures):
        axis.bar(np.arange(3) + 0.27 * (k - 1), by_temperature[tau], 0.27, label=f"τ = {tau}")
    axis.set(xticks=range(3), xticklabels=["z = 2.0", "z = 1.0", "z = 0.1"], ylabel="softmax")
    axis.legend()
    figure.savefig("ch05_temperature.png", dpi=110)
    plt.close(figure)
    mt.viz.show("ch05_temperature.png")
else:
    print("matplotlib is not installed: no plot (pip install 'minitransformer[plot]')")

# %% [markdown]
# `axis` says which axis holds the classes (by default the last). Softmax over axis −1 of a (B, T,
# C) tensor normalises each of the B·T rows on its own; the method form `z.softmax(axis=-1)` is
# the same op.

# %%
mt.manual_seed(0)
logits = mt.randn(B, T, C)
probs = logits.softmax(axis=-1)
assert probs.shape == (B, T, C)
assert np.allclose(probs.sum(axis=-1).numpy(), 1.0, atol=1e-6)
assert np.allclose(F.softmax(logits, axis=1).sum(axis=1).numpy(), 1.0, atol=1e-6)

# %% [markdown]
# ## 2. Why subtract the max
#
# float32 can hold numbers up to about 3.4·10³⁸, and e^{88.8} already exceeds that. Logits of a
# few hundred are not exotic (a confident classifier, or an attention score before scaling), and
# masked attention deliberately uses −∞. A naive softmax of ±10⁴ computes e^{10⁴} = inf and then
# inf / inf = NaN.
#
# The shift invariance of section 1 is the cure: with m = max z,
#
#     softmax(z)ᵢ = e^{zᵢ − m} / Σⱼ e^{zⱼ − m}
#
# Now the largest exponent is e⁰ = 1, nothing overflows, and the sum is at least 1, so nothing is
# divided by zero either. minitransformer's `softmax` is one fused op that does exactly this.

# %%
big = mt.tensor([1e4, 0.0, -1e4])  # float32
with np.errstate(over="ignore", invalid="ignore"):  # we *expect* overflow here
    naive = mt.exp(big) / mt.exp(big).sum()
    print("largest float32:", np.finfo(np.float32).max, "  e^88.8 in float32:",
          mt.exp(mt.tensor(88.8)).item())
stable = F.softmax(big)
print("naive :", naive)
print("stable:", stable)
assert np.isnan(naive.numpy()[0])
assert stable.tolist() == [1.0, 0.0, 0.0]

# %% [markdown]
# The shift is two lines on a raw array; written by hand it must agree with the fused op:

# %%
# BEGIN SOLUTION
shifted = np.exp(big.numpy() - big.numpy().max())  # every exponent ≤ 0: no overflow
softmax_by_hand = shifted / shifted.sum()
# END SOLUTION
assert np.array_equal(softmax_by_hand, stable.numpy()), (
    f"softmax_by_hand should equal F.softmax's {stable.tolist()}, got {softmax_by_hand}: "
    "subtract the largest logit before np.exp (e^10000 overflows: inf/inf = nan), then "
    "divide by the sum of the shifted exponentials"
)

# %% [markdown]
# The stable version also survives −∞, which is how attention masks work (Chapter 7): a masked
# entry becomes e^{−∞} = 0. A row that is *entirely* −∞ has no maximum to subtract; softmax then
# returns zeros, not NaN.

# %%
masked = mt.tensor([[0.5, float("-inf"), 1.5], [float("-inf")] * 3])
print(F.softmax(masked))
assert F.softmax(masked).numpy()[0, 1] == 0.0
assert F.softmax(masked).tolist()[1] == [0.0, 0.0, 0.0]

# %% [markdown]
# ## 3. Log-softmax and log-sum-exp
#
# Cross-entropy needs log p, not p. Taking the log of a softmax loses everything below float32's
# smallest number (about 10⁻⁴⁵): log 0 = −∞. Working in log space avoids forming p at all:
#
#     log softmax(z)ᵢ = zᵢ − log Σⱼ e^{zⱼ} = zᵢ − LSE(z)
#     LSE(z) = m + log Σⱼ e^{zⱼ − m}           (log-sum-exp, computed with the same max shift)
#
# LSE is a smooth maximum: it lies between max z and max z + log C.

# %%
z = mt.tensor([0.0, -200.0, 5.0])
with np.errstate(divide="ignore"):
    naive_log = F.softmax(z).log()  # e^-205 underflows to 0 in float32: log 0 = -inf
print("log(softmax):", naive_log)
print("log_softmax :", F.log_softmax(z))
assert np.isinf(naive_log.numpy()[1]) and np.isfinite(F.log_softmax(z).numpy()).all()
assert np.isclose(F.log_softmax(z).numpy()[1], -205.0 - math.log1p(math.exp(-5.0)), atol=1e-3)

lse = mt.logsumexp(z).item()
assert np.allclose(F.log_softmax(z).numpy(), z.numpy() - lse)
assert z.max().item() <= lse <= z.max().item() + math.log(3)
print(f"LSE = {lse:.4f}, max = {z.max().item()}")

# %% [markdown]
# ## 4. Cross-entropy
#
# For one row of logits z and its target class t, the cross-entropy is the negative log of the
# probability the model gave to the right answer:
#
#     loss = −log softmax(z)_t = LSE(z) − z_t
#
# It is 0 when the model is sure and right, and grows without bound when it is sure and wrong.
# `F.cross_entropy(logits, targets)` takes logits (N, C) and integer targets (N,) and averages over
# the rows. We recompute it by picking each row's target entry out of the log-softmax.

# %%
mt.manual_seed(1)
logits = mt.randn(N, C)
targets = mt.tensor(np.random.default_rng(1).integers(0, C, N))  # int64 class ids
loss = F.cross_entropy(logits, targets)
picked = F.log_softmax(logits)[mt.arange(N), targets]  # (N,): log p of each row's target
print(f"cross-entropy {loss.item():.5f}   by hand {-picked.mean().item():.5f}")
assert np.isclose(loss.item(), -picked.mean().item(), atol=1e-6)
per_row = F.cross_entropy(logits, targets, reduction="none")  # (N,), no averaging
assert per_row.shape == (N,) and np.isclose(per_row.sum().item(),
                                            F.cross_entropy(logits, targets,
                                                            reduction="sum").item(), atol=1e-5)

# %% [markdown]
# A language model predicts a token at every position, so its logits are (B, T, C) and its targets
# (B, T). The loss treats the B·T positions as rows: the same as flattening to (B·T, C).

# %%
seq_logits = mt.randn(B, T, C)
seq_targets = mt.tensor(np.random.default_rng(2).integers(0, C, (B, T)))
loss_3d = F.cross_entropy(seq_logits, seq_targets)
loss_flat = F.cross_entropy(seq_logits.reshape(B * T, C), seq_targets.reshape(B * T))
assert np.isclose(loss_3d.item(), loss_flat.item())
assert F.cross_entropy(seq_logits, seq_targets, reduction="none").shape == (B, T)

try:  # the targets must have the logits' shape without the class axis
    F.cross_entropy(seq_logits, seq_targets.reshape(B * T))
except mt.ShapeError as error:
    print("ShapeError:", error)
else:
    raise AssertionError("(B, T, C) logits with (B*T,) targets must be refused")

# %% [markdown]
# ## 5. `ignore_index`: padding is not a prediction
#
# Sentences in a batch have different lengths, so the short ones are padded with a pad id to the
# longest. The model's outputs at padded positions mean nothing and must not count: targets equal
# to `ignore_index` contribute zero loss and zero gradient, and the mean divides by the number of
# *real* targets only.

# %%
PAD = 0
padded_targets = np.full((B, T), PAD)
padded_targets[:, : T - 1] = np.random.default_rng(3).integers(1, C, (B, T - 1))
padded_targets[0, -1] = 1  # the first sequence is full length; the others end in padding
padded_targets = mt.tensor(padded_targets)
real = padded_targets.numpy() != PAD

loss = F.cross_entropy(seq_logits, padded_targets, ignore_index=PAD)
rows = F.cross_entropy(seq_logits, padded_targets, reduction="none").numpy()
print(f"{real.sum()} real targets of {real.size}: loss {loss.item():.5f}")
assert np.isclose(loss.item(), rows[real].mean(), atol=1e-6)

x = seq_logits.detach()
x.requires_grad = True
F.cross_entropy(x, padded_targets, ignore_index=PAD).backward()
assert np.all(x.grad[~real] == 0)  # padded positions get no gradient at all

# %% [markdown]
# ## 6. Label smoothing: a softer target distribution
#
# Cross-entropy is really a comparison of two distributions: the model's p and a *target*
# distribution q,
#
#     loss = −Σ_c q_c log p_c
#
# With a one-hot q (all mass on t) this is −log p_t, as before. The Transformer paper trains with
# **label smoothing** ε = 0.1: q puts 1 − ε on the target and spreads ε evenly over all C classes,
#
#     q = (1 − ε) · onehot(t) + ε / C
#
# so the model is never pushed towards infinite confidence. We build q ourselves and compare.

# %%
eps = 0.1
# BEGIN SOLUTION
q = np.full((N, C), eps / C)
q[np.arange(N), targets.numpy()] += 1 - eps
# END SOLUTION
assert np.allclose(q.sum(axis=1), 1.0), (
    f"every row of q should sum to 1, the sums range from {q.sum(axis=1).min():.4f} to "
    f"{q.sum(axis=1).max():.4f}: put eps / C on every class, then add 1 − eps at the target"
)
by_hand = -(q * F.log_softmax(logits).numpy()).sum(axis=1).mean()
smoothed = F.cross_entropy(logits, targets, label_smoothing=eps)
print(f"smoothed loss {smoothed.item():.5f}   by hand {by_hand:.5f}")
assert np.isclose(smoothed.item(), by_hand, atol=1e-5), (
    f"−Σ q·log p = {by_hand:.5f} differs from F.cross_entropy(label_smoothing={eps}) = "
    f"{smoothed.item():.5f}: q should be eps / C everywhere plus 1 − eps at each row's target "
    "(q[np.arange(N), targets.numpy()])"
)

# %% [markdown]
# A consequence worth seeing: with smoothing, even a perfect prediction has a positive loss. The
# smallest possible loss is reached at p = q, and equals the entropy of q.

# %%
perfect = mt.tensor(np.log(q))  # logits whose softmax is exactly q
entropy_q = -(q * np.log(q)).sum(axis=1).mean()
assert np.isclose(F.cross_entropy(perfect, targets, label_smoothing=eps).item(), entropy_q,
                  atol=1e-5), (
    f"with logits log q the smoothed loss should be the entropy of q, {entropy_q:.4f}: q is "
    "not the smoothed target, eps / C everywhere plus 1 − eps at each row's target"
)
print(f"minimum smoothed loss = entropy of q = {entropy_q:.4f} > 0")

# %% [markdown]
# ## 7. The gradient: p − q
#
# For one row, loss = −Σ_c q_c log p_c with log p_c = z_c − LSE(z), and ∂LSE/∂z_i = p_i.
# Since Σ_c q_c = 1:
#
#     ∂loss/∂z_i = −q_i + Σ_c q_c · p_i = p_i − q_i
#
# The gradient is the model's distribution minus the target's: push down what was over-predicted,
# push up what was under-predicted. No exponentials or logs survive, which is why fusing
# log-softmax and cross-entropy into one op is both fast and stable. With `reduction="mean"` each
# row's gradient is divided by the number of real rows.

# %%
z = logits.detach()
z.requires_grad = True
F.cross_entropy(z, targets, label_smoothing=eps).backward()
p = F.softmax(z).numpy()
print("analytic backward, row 0:", np.array2string(z.grad[0, :5], precision=4), "...")
print("(p - q) / N,       row 0:", np.array2string((p - q)[0, :5] / N, precision=4), "...")
assert np.allclose(z.grad, (p - q) / N, atol=1e-6), (
    f"z.grad should be (p − q) / N, largest difference {np.abs(z.grad - (p - q) / N).max():.2e}: "
    "q is not the smoothed target, eps / C everywhere plus 1 − eps at each row's target"
)

# %% [markdown]
# And numerically, in float64 against central differences, with each option. The integer targets
# are passed through the closure; `mt.gradcheck` only perturbs floating inputs.

# %%
z64 = logits.double()
for options in [{}, {"label_smoothing": 0.1}, {"reduction": "sum"}, {"reduction": "none"}]:
    assert mt.gradcheck(lambda zz, opts=options: F.cross_entropy(zz, targets, **opts), z64)
assert mt.gradcheck(lambda zz: F.cross_entropy(zz, padded_targets, ignore_index=PAD,
                                               label_smoothing=0.1), seq_logits.double())
assert mt.gradcheck(lambda zz: F.softmax(zz, axis=-1), z64)
assert mt.gradcheck(lambda zz: F.log_softmax(zz, axis=0), z64)
assert mt.gradcheck(lambda zz: mt.logsumexp(zz, axis=-1), z64)
print("cross_entropy, softmax, log_softmax and logsumexp pass gradcheck")

# %% [markdown]
# ## 8. Perplexity
#
# A cross-entropy of L nats per token means the model is, on average, as uncertain as if it chose
# uniformly among
#
#     perplexity = e^L
#
# tokens. A model that knows nothing (all logits equal) spreads probability 1/C over C classes: its
# loss is log C, its perplexity exactly C. A perfect model has perplexity 1. Language-model papers
# report perplexity because "as unsure as picking among 20 words" reads better than "3.0 nats".

# %%
uniform = mt.zeros(N, C)
ppl = math.exp(F.cross_entropy(uniform, targets).item())
print(f"uniform model over {C} classes: loss {math.log(C):.4f} nats, perplexity {ppl:.2f}")
assert np.isclose(ppl, C, rtol=1e-5)

confident = mt.tensor(np.where(np.eye(C)[targets.numpy()] > 0, 20.0, 0.0))  # right, sure
ppl_confident = math.exp(F.cross_entropy(confident, targets).item())
print(f"confident, correct model: perplexity {ppl_confident:.6f}")
assert 1.0 <= ppl_confident < 1.0 + 1e-6 * C

# %% [markdown]
# ## Summary
#
# - softmax(z) = e^z / Σ e^z is a probability distribution, unchanged by adding a constant.
# - Subtracting the max first keeps every exponent ≤ 0: no overflow at ±10⁴ in float32, and an
#   all −∞ row gives zeros, not NaN.
# - log-softmax = z − LSE(z) works in log space and never takes log 0; LSE is a smooth max.
# - Cross-entropy = −Σ q log p; with one-hot q it is −log p_target. It accepts (N, C) or (B, T, C)
#   logits; `ignore_index` drops padding from the loss, the mean and the gradient;
#   `label_smoothing` ε uses q = (1 − ε) onehot + ε/C.
# - Its gradient with respect to the logits is p − q (divided by the number of real rows for the
#   mean), checked here against the library's backward and against finite differences.
# - Perplexity = e^{loss}: C for a model that knows nothing, 1 for a perfect one.
#
# ## Exercises
#
# ```{exercise} Where float32 gives up
# :label: ch05-float32-limits
#
# Find the smallest float32 logit x for which `mt.exp(mt.tensor([x, 0.0]))` overflows. Then
# find how negative the other logit must be before `F.softmax(...).log()` returns −∞, and check
# that `F.log_softmax` is still finite there.
# ```
#
# ````{solution} ch05-float32-limits
# :class: dropdown
#
# Walk float32 values upwards with `np.nextafter` until the exponential is infinite:
#
# ```python
# x = np.float32(88.0)
# while not np.isinf(mt.exp(mt.tensor([x, 0.0])).numpy()[0]):
#     x = np.nextafter(x, np.float32(100))
# print(x)  # 88.72284 (88.72283 is still finite)
# ```
#
# That is ln(3.4·10³⁸) = 88.7228, the log of the largest float32. At the other end, softmax of
# `[0, y]` gives p₁ = e^y / (1 + e^y) ≈ e^y, which becomes 0 once e^y is below half the smallest
# float32 subnormal, 1.4·10⁻⁴⁵. The same search downwards from −90 (by bisection: a walk one
# float32 at a time would take about 1.8 million steps) finds y = −103.972084 as
# the first value where `F.softmax(mt.tensor([0.0, y])).log()` is −∞ (one step above, p₁ is
# still 1e−45). There `F.log_softmax(mt.tensor([0.0, y]))` is `[0, -103.972084]`: finite
# and exact, because it computes y − LSE without ever forming e^y as a probability.
# ````
#
# ```{exercise} The Jacobian of softmax
# :label: ch05-softmax-jacobian
#
# Derive the Jacobian of softmax, ∂pᵢ/∂zⱼ = pᵢ(δᵢⱼ − pⱼ), build it as a (C, C) array for one
# row, and check that multiplying it by a random g matches `F.softmax`'s backward.
# ```
#
# ````{solution} ch05-softmax-jacobian
# :class: dropdown
#
# With pᵢ = e^{zᵢ}/S and S = Σₖ e^{zₖ}: ∂pᵢ/∂zⱼ = δᵢⱼ e^{zᵢ}/S − e^{zᵢ} e^{zⱼ}/S²
# = pᵢ(δᵢⱼ − pⱼ). As a matrix, J = diag(p) − p pᵀ, which is symmetric. The backward is the
# vector-Jacobian product gᵀJ:
#
# ```python
# rng = np.random.default_rng(0)
# z = mt.tensor(rng.standard_normal(5), requires_grad=True)
# p = F.softmax(z)
# g = rng.standard_normal(5)
# p.backward(g.astype(np.float32))
# pn = p.numpy().astype(np.float64)
# J = np.diag(pn) - np.outer(pn, pn)
# print(np.abs(J.T @ g - z.grad).max())  # 3.7e-09
# ```
#
# gᵀJ = p ⊙ g − p (p·g) = p ⊙ (g − p·g): that one line is what a fused softmax backward computes,
# in O(C) instead of forming the O(C²) matrix.
# ````
#
# ```{exercise} Label smoothing keeps logits finite
# :label: ch05-smoothing-finite
#
# Show that with label smoothing the optimal logits are finite: minimise the smoothed loss of a
# single row by gradient descent from zero and watch the gap between the target logit and the
# others converge to log((1 − ε + ε/C) / (ε/C)).
# ```
#
# ````{solution} ch05-smoothing-finite
# :class: dropdown
#
# ```python
# C, eps = 5, 0.1
# z, target = mt.zeros(C, requires_grad=True), mt.tensor([2])
# for step in range(501):
#     z.zero_grad()
#     loss = F.cross_entropy(z.reshape(1, C), target, label_smoothing=eps)
#     loss.backward()
#     z.data -= 1.0 * z.grad
# zz = z.numpy()
# print(loss.item(), zz[2] - np.delete(zz, 2).mean())
# print(math.log((1 - eps + eps / C) / (eps / C)))
# ```
#
# The loss starts at log 5 = 1.6094 and settles at 0.38967, the entropy of q (section 6); the
# gap starts at 0.9 after the first step and is 3.82857 after 100 steps and 3.82864 after 500,
# equal to log(0.92/0.02) = log 46 = 3.82864. The non-target logits stay equal to each other.
# The stationary point is where the gradient p − q is zero, i.e. p = q; since every q_c > 0,
# every p_c > 0 and the logits are finite. Without smoothing q is one-hot, p − q = 0 has no
# solution, and the gap grows forever (like log of the step count).
# ````
#
# ```{exercise} The mean over real tokens
# :label: ch05-mean-real-tokens
#
# Take logits (B, T, C) where the last position of every sequence is padding. Compare
# `reduction="mean"` with and without `ignore_index`: which is larger when the padded
# predictions are bad, and why does the paper-style mean over *real tokens* matter when batches
# have very different amounts of padding?
# ```
#
# ````{solution} ch05-mean-real-tokens
# :class: dropdown
#
# ```python
# B, T, C = 4, 6, 5
# mt.manual_seed(0)
# lg = mt.randn(B, T, C).numpy()
# tg = np.random.default_rng(1).integers(1, C, (B, T))
# tg[:, -1] = 0                                      # pad id 0 at the last position
# lg[:, -1, :] = 0.0
# lg[:, -1, 0] = -5.0                                # the pad "target" gets a low probability
# logits, targets = mt.tensor(lg), mt.tensor(tg)
# print(F.cross_entropy(logits, targets, ignore_index=0).item())  # 2.0599
# print(F.cross_entropy(logits, targets).item())                  # 2.7812
# ```
#
# Without `ignore_index` the mean is larger here: each padded row adds its own loss
# (LSE − (−5) ≈ 6.39) and the mean is (20 · 2.06 + 4 · 6.39) / 24 = 2.78. (Had the padded
# predictions been good, it would be *smaller*: padding then dilutes the real loss.) Either way
# the number mixes in predictions that mean nothing, and the gradient trains the model to predict
# the pad token.
#
# Dividing by the number of *real* targets makes the loss, and so the gradient step, the average
# per real token, whatever the padding. Dividing by B·T instead (even with padded losses set to
# zero) would shrink a batch's step in proportion to its padding: a batch of short sentences in
# long padding would be learned from at a fraction of the learning rate, so the effective
# learning rate would depend on how the batch happened to be padded.
# ````
