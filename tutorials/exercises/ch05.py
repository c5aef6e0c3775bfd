# %% setup
# Chapter 5's exercises, graded: write each answer in its cell; the check cell after it says
# what is wrong, if anything. `minitransformer grade` gives each exercise its points.
import math

import numpy as np

import minitransformer as mt
import minitransformer.functional as F


def as_array(x):
    """A Tensor or array-like as a float64 NumPy array (answers may use either)."""
    return np.asarray(x.numpy() if isinstance(x, mt.Tensor) else x, dtype=np.float64)


# %% exercise ch05-float32-limits (2 points)
# overflow_x: np.float32, the smallest float32 x for which mt.exp(mt.tensor([x, 0.0])) has an
# infinite first entry.
# underflow_y: np.float32, the largest (least negative) float32 y for which
# F.softmax(mt.tensor([0.0, y])).log() has −∞ as its second entry.
# log_softmax_there: NumPy array (2,), F.log_softmax(mt.tensor([0.0, underflow_y])).numpy().
# (Stepping with np.nextafter from a round start works, but takes a while; a bisection over
# float32 values, as below, takes some fifty evaluations.)
# BEGIN SOLUTION
def first_float32_where(predicate, outside, inside):
    """The float32 next to the region where predicate holds: predicate(outside) is False,
    predicate(inside) True; bisect until the two are neighbouring float32 values."""
    outside, inside = np.float32(outside), np.float32(inside)
    while np.nextafter(outside, inside) != inside:
        middle = np.float32((float(outside) + float(inside)) / 2)
        if middle in (outside, inside):
            middle = np.nextafter(outside, inside)
        if predicate(middle):
            inside = middle
        else:
            outside = middle
    return inside


with np.errstate(over="ignore", divide="ignore"):
    overflow_x = first_float32_where(
        lambda x: np.isinf(mt.exp(mt.tensor([x, 0.0])).numpy()[0]), 88.0, 89.0)  # 88.72284
    underflow_y = first_float32_where(
        lambda y: np.isneginf(F.softmax(mt.tensor([0.0, y])).log().numpy()[1]), -90.0, -110.0)
log_softmax_there = F.log_softmax(mt.tensor([0.0, underflow_y])).numpy()  # [0, y]: finite
# END SOLUTION

# %% check ch05-float32-limits
for name, value in [("overflow_x", overflow_x), ("underflow_y", underflow_y)]:
    assert np.float32(value) == value, f"{name} = {value!r} is not a float32 value"
overflow_x, underflow_y = np.float32(overflow_x), np.float32(underflow_y)
below = np.nextafter(overflow_x, np.float32(-np.inf))
above = np.nextafter(underflow_y, np.float32(0))
with np.errstate(over="ignore", divide="ignore"):
    exp_at = mt.exp(mt.tensor([overflow_x, 0.0])).numpy()[0]
    exp_below = mt.exp(mt.tensor([below, 0.0])).numpy()[0]
    log_at = F.softmax(mt.tensor([0.0, underflow_y])).log().numpy()[1]
    log_above = F.softmax(mt.tensor([0.0, above])).log().numpy()[1]
assert np.isinf(exp_at), (
    f"e^x at overflow_x = {overflow_x!r} is {exp_at}, still finite: go higher")
assert np.isfinite(exp_below), (
    f"e^x already overflows at {below!r}, the float32 just below overflow_x = {overflow_x!r}: "
    "overflow_x should be the smallest x that overflows")
assert np.isneginf(log_at), (
    f"at underflow_y = {underflow_y!r} the log of the softmax is {log_at}, still finite: "
    "go more negative")
assert np.isfinite(log_above), (
    f"the log of the softmax is already −∞ at {above!r}, the float32 just above "
    f"underflow_y = {underflow_y!r}: underflow_y should be the least negative such y")
there = np.asarray(log_softmax_there, dtype=np.float64)
assert there.shape == (2,) and np.all(np.isfinite(there)), (
    f"log_softmax_there is {there}: compute F.log_softmax(mt.tensor([0.0, underflow_y]))")
assert np.allclose(there, [0.0, float(underflow_y)], atol=1e-4), (
    f"log_softmax_there is {there}; log_softmax(z) = z − LSE(z), and here LSE(z) is 0 to "
    "float32 precision")

# %% wrong ch05-float32-limits
overflow_x = np.float32(88.72283)  # the last float32 whose exponential is still finite

# %% wrong ch05-float32-limits
underflow_y = np.float32(np.log(np.finfo(np.float32).tiny))  # the smallest *normal* float32

# %% wrong ch05-float32-limits
with np.errstate(divide="ignore"):  # the log of the softmax, not log_softmax
    log_softmax_there = F.softmax(mt.tensor([0.0, underflow_y])).log().numpy()

# %% exercise ch05-softmax-jacobian (2 points)
# softmax_jacobian(p) -> NumPy array (C, C): J[i, j] = ∂p_i/∂z_j of softmax, for the 1-d
# NumPy array p = softmax(z) of one row.
# softmax_vjp(p, g) -> NumPy array (C,): the vector-Jacobian product gᵀJ that softmax's
# backward computes for the upstream gradient g, in O(C), without forming J.
# BEGIN SOLUTION
def softmax_jacobian(p):
    return np.diag(p) - np.outer(p, p)  # p_i (δ_ij − p_j)


def softmax_vjp(p, g):
    return p * (g - p @ g)  # p ⊙ g − p (p·g)
# END SOLUTION

# %% check ch05-softmax-jacobian
rng = np.random.default_rng(0)
for C in (3, 5):
    z = mt.tensor(rng.standard_normal(C), requires_grad=True)  # float64
    p = F.softmax(z)
    g = rng.standard_normal(C)
    p.backward(g)
    pn = p.numpy()
    J = np.asarray(softmax_jacobian(pn))
    assert J.shape == (C, C), f"softmax_jacobian of {C} probabilities has shape {J.shape}"
    eps = 1e-6
    numeric = np.stack([(F.softmax(mt.tensor(z.numpy() + eps * np.eye(C)[j])).numpy()
                         - F.softmax(mt.tensor(z.numpy() - eps * np.eye(C)[j])).numpy())
                        / (2 * eps) for j in range(C)], axis=1)  # column j: ∂p/∂z_j
    assert np.allclose(J, numeric, atol=1e-7), (
        f"softmax_jacobian differs from central differences of softmax by up to "
        f"{np.abs(J - numeric).max():.3g} (C = {C}): differentiate e^(z_i) / Σ_k e^(z_k) "
        "with respect to z_j, for j = i and for j ≠ i")
    assert np.allclose(J.T @ g, z.grad, atol=1e-10), (
        f"gᵀJ = {np.round(J.T @ g, 5)} does not match F.softmax's backward {np.round(z.grad, 5)}")
    vjp = np.asarray(softmax_vjp(pn, g))
    assert vjp.shape == (C,) and np.allclose(vjp, z.grad, atol=1e-10), (
        f"softmax_vjp(p, g) = {np.round(vjp, 5)} does not match F.softmax's backward "
        f"{np.round(z.grad, 5)}: write out (gᵀJ)_j = Σ_i g_i p_i (δ_ij − p_j)")

# %% wrong ch05-softmax-jacobian
def softmax_jacobian(p):  # noqa: F811  (only the diagonal, as for an elementwise sigmoid)
    return np.diag(p * (1 - p))

# %% wrong ch05-softmax-jacobian
def softmax_vjp(p, g):  # noqa: F811  (the sum of g, not its p-weighted mean, subtracted)
    return p * (g - g.sum())

# %% exercise ch05-smoothing-finite (2 points)
# train_row(n_classes, eps, target, steps) -> NumPy array (n_classes,): the logits z of ONE
# row after `steps` steps of gradient descent, learning rate 1.0, from
# z = mt.zeros(n_classes, requires_grad=True), on the loss
# F.cross_entropy(z.reshape(1, n_classes), mt.tensor([target]), label_smoothing=eps).
# optimal_gap(n_classes, eps) -> float: the gap z_target − z_other at the optimum, where p = q.
# (The chapter runs 500 steps; the check runs train_row for a few hundred, well under a second.)
# BEGIN SOLUTION
def train_row(n_classes, eps, target, steps):
    z, targets = mt.zeros(n_classes, requires_grad=True), mt.tensor([target])
    for _ in range(steps):
        z.zero_grad()
        F.cross_entropy(z.reshape(1, n_classes), targets, label_smoothing=eps).backward()
        z.data -= 1.0 * z.grad
    return z.numpy()


def optimal_gap(n_classes, eps):
    return math.log((1 - eps + eps / n_classes) / (eps / n_classes))  # log(q_target / q_other)
# END SOLUTION

# %% check ch05-smoothing-finite
for C, eps, target, steps in [(5, 0.1, 2, 500), (4, 0.2, 0, 300)]:
    z = np.asarray(train_row(C, eps, target, steps), dtype=np.float64)
    assert z.shape == (C,), f"train_row({C}, ...) should return {C} logits, not shape {z.shape}"
    others = np.delete(z, target)
    assert np.ptp(others) < 1e-4, (
        f"the non-target logits should stay equal to each other, but they are {others}")
    gap = z[target] - others.mean()
    q = np.full(C, eps / C)
    q[target] += 1 - eps
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert np.abs(p - q).max() < 1e-3, (
        f"after {steps} steps (C = {C}, eps = {eps}) softmax(z) is {np.round(p, 4)}, not the "
        f"smoothed target {np.round(q, 4)} (gap {gap:.4f}): train with label_smoothing=eps, "
        "learning rate 1.0, zeroing the gradient before every step")
    assert abs(optimal_gap(C, eps) - gap) < 1e-3, (
        f"optimal_gap({C}, {eps}) is {optimal_gap(C, eps):.5f}, but training converges to a gap "
        f"of {gap:.5f}: at p = q, z_target − z_other = log(p_target / p_other)")
no_smoothing = [train_row(5, 0.0, 2, steps) for steps in (100, 400)]
gaps = [z[2] - np.delete(z, 2).mean() for z in no_smoothing]
assert gaps[1] > gaps[0] + 0.5, (
    f"without smoothing the gap should keep growing, but it is {gaps[0]:.3f} after 100 steps "
    f"and {gaps[1]:.3f} after 400")

# %% wrong ch05-smoothing-finite
def optimal_gap(n_classes, eps):  # noqa: F811  (q_target taken as 1 − eps, without its share eps / C)
    return math.log((1 - eps) / (eps / n_classes))

# %% wrong ch05-smoothing-finite
def train_row(n_classes, eps, target, steps):  # noqa: F811  (trains without the label smoothing)
    z, targets = mt.zeros(n_classes, requires_grad=True), mt.tensor([target])
    for _ in range(steps):
        z.zero_grad()
        F.cross_entropy(z.reshape(1, n_classes), targets).backward()
        z.data -= 1.0 * z.grad
    return z.numpy()

# %% exercise ch05-mean-real-tokens (3 points)
# The chapter's batch: B, T, C = 4, 6, 5; mt.manual_seed(0); lg = mt.randn(B, T, C).numpy();
# tg = np.random.default_rng(1).integers(1, C, (B, T)); the last position of every sequence is
# padding, tg[:, -1] = 0, with a bad prediction: lg[:, -1, :] = 0.0 and lg[:, -1, 0] = -5.0.
# loss_with_ignore, loss_without_ignore: floats, F.cross_entropy of (lg, tg) as Tensors with
# reduction "mean", with ignore_index=0 and without it.
# bt_mean(logits, targets, pad) -> float: the other way to leave padding out: the real targets'
# losses summed (padded positions count 0) and divided by the number of positions B·T.
# padding_independent: "ignore_index" or "B*T": which of the two means gives the same loss for
# the same real tokens however much padding the batch has?
# BEGIN SOLUTION
B, T, C = 4, 6, 5
mt.manual_seed(0)
lg = mt.randn(B, T, C).numpy()
tg = np.random.default_rng(1).integers(1, C, (B, T))
tg[:, -1] = 0  # pad id 0 at the last position
lg[:, -1, :] = 0.0
lg[:, -1, 0] = -5.0  # the pad "target" gets a low probability
loss_with_ignore = F.cross_entropy(mt.tensor(lg), mt.tensor(tg), ignore_index=0).item()
loss_without_ignore = F.cross_entropy(mt.tensor(lg), mt.tensor(tg)).item()  # larger here


def bt_mean(logits, targets, pad):
    losses = F.cross_entropy(logits, targets, reduction="none").numpy()
    real = targets.numpy() != pad
    return float((losses * real).sum() / real.size)


padding_independent = "ignore_index"  # B·T shrinks the loss (and the step) as padding grows
# END SOLUTION

# %% check ch05-mean-real-tokens
mt.manual_seed(0)
lg = mt.randn(4, 6, 5).numpy()
tg = np.random.default_rng(1).integers(1, 5, (4, 6))
tg[:, -1] = 0
lg[:, -1, :] = 0.0
lg[:, -1, 0] = -5.0
with_ignore = F.cross_entropy(mt.tensor(lg), mt.tensor(tg), ignore_index=0).item()
without_ignore = F.cross_entropy(mt.tensor(lg), mt.tensor(tg)).item()
assert abs(loss_with_ignore - with_ignore) < 1e-4, (
    f"loss_with_ignore is {loss_with_ignore:.4f}, not the mean over the real targets of the "
    "chapter's batch: build lg and tg as described, then F.cross_entropy(..., ignore_index=0)")
assert abs(loss_without_ignore - without_ignore) < 1e-4, (
    f"loss_without_ignore is {loss_without_ignore:.4f}, not F.cross_entropy of the chapter's "
    "batch without ignore_index (every position counts, padding too)")
rng = np.random.default_rng(2)
logits = mt.tensor(rng.standard_normal((3, 4, 6)))
targets = rng.integers(1, 6, (3, 4))
targets[1, 2:] = 0
targets[2, 1:] = 0
real = targets != 0
per_position = F.cross_entropy(logits, mt.tensor(targets), reduction="none").numpy()
got = float(bt_mean(logits, mt.tensor(targets), 0))
assert abs(got - per_position[real].sum() / real.size) < 1e-6, (
    f"bt_mean gives {got:.5f} for a (3, 4) batch with {real.sum()} real targets: sum the "
    "losses of the real targets only, then divide by all 3·4 positions")
longer_logits = mt.tensor(np.concatenate([logits.numpy(), rng.standard_normal((3, 4, 6))], 1))
longer_targets = mt.tensor(np.concatenate([targets, np.zeros((3, 4), dtype=targets.dtype)], 1))
means = {"ignore_index": [F.cross_entropy(logits, mt.tensor(targets), ignore_index=0).item(),
                          F.cross_entropy(longer_logits, longer_targets, ignore_index=0).item()],
         "B*T": [got, float(bt_mean(longer_logits, longer_targets, 0))]}
unchanged = [name for name, (short, long) in means.items() if abs(short - long) < 1e-6]
assert padding_independent in means and [padding_independent] == unchanged, (
    f"padding_independent is {padding_independent!r}; with 4 more padded positions per "
    f"sequence (same real tokens) the two means go from {means['ignore_index'][0]:.4f} to "
    f"{means['ignore_index'][1]:.4f} (ignore_index) and from {means['B*T'][0]:.4f} to "
    f"{means['B*T'][1]:.4f} (B*T)")

# %% wrong ch05-mean-real-tokens
def bt_mean(logits, targets, pad):  # noqa: F811  (padded positions counted in the sum too)
    return F.cross_entropy(logits, targets).item()

# %% wrong ch05-mean-real-tokens
padding_independent = "B*T"  # a guess: "dividing by a fixed B·T is the steady one"
