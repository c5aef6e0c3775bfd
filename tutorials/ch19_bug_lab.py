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
# # Chapter 19 — The bug lab: which check catches which bug
#
# Every test in this project exists because some bug once looked harmless. A Transformer with a
# wrong line often still *trains*: the loss goes down, nothing crashes, and the model is quietly
# worse, or cheats. This chapter turns six classic bugs on one at a time with
# `minitransformer.bugs` and runs six checks against each. The result is a matrix of *which
# check catches which bug*, and the lesson behind it: no single check catches everything, and a
# falling loss curve proves very little.
#
# **Learning objectives.** After this chapter you can
#
# 1. switch a bug on and off with `bugs.inject(name)` and say which code it changes;
# 2. write the check that catches each bug: a statistics check, a numerics check, a
#    probability check, a gradient check, a causality check and a loss-by-hand check;
# 3. explain why `gradcheck` cannot catch a bug in a forward pass;
# 4. read a training run for what it can reveal (a model that cheats, a slower start) and what
#    it hides (a wrong gradient that training shrugs off);
# 5. name a bug nobody told you about from the checks it trips (`bugs.inject_mystery(seed)`,
#    then `bugs.reveal()` to see if you were right).

# %%
import importlib.util
import os
import time

import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import bugs, decoding, nn, train
from minitransformer.data import BOS_ID, EOS_ID, IGNORE_INDEX
from minitransformer.data import batches as batches_module
from minitransformer.nn import transformer as transformer_module

FAST = os.environ.get("MINITRANSFORMER_FAST") == "1"  # a shorter training run when set
STEPS = 150 if FAST else 400
CHAPTER_START = time.perf_counter()
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

# %% [markdown]
# ## 1. The lab
#
# `bugs.BUGS` maps each bug's name to a record: what goes wrong, which code it changes, and which
# check catches it. `bugs.inject(name)` is a context manager: inside the `with` block the
# package runs the wrong code, and on leaving it (even through an exception) every changed name
# is restored. `bugs.active()` says which bug is on.

# %%
for bug in bugs.BUGS.values():
    print(f"{bug.name:<30} {bug.description}")
assert len(bugs.BUGS) == 6 and bugs.active() is None

# %% [markdown]
# A bug has to reach every place the package calls the function from. `causal_mask` is defined
# in `functional.py`, but `nn/transformer.py` and `data/batches.py` each imported it with
# `from minitransformer.functional import causal_mask`, which binds the *same function object*
# under a second name. Python looks that name up in the caller's module at call time, so `inject`
# rebinds all of them, and restores all of them.

# %%
correct_mask = F.causal_mask
print("correct causal_mask(3):\n", F.causal_mask(3).numpy().astype(int))
with bugs.inject("causal_mask_off_by_one") as bug:
    print("inside the block:", bugs.active(), "\n", F.causal_mask(3).numpy().astype(int))
    assert transformer_module.causal_mask is F.causal_mask is not correct_mask
    assert batches_module.causal_mask is F.causal_mask
print("after it:", bugs.active())
assert F.causal_mask is transformer_module.causal_mask is batches_module.causal_mask
assert F.causal_mask is correct_mask and bugs.active() is None

# %% [markdown]
# One bug at a time: with two on, no table could say which check caught which. A second
# `inject` inside the block is refused.

# %%
with bugs.inject("no_sqrt_scaling"):
    try:
        with bugs.inject("softmax_no_max_shift"):
            pass
        raise AssertionError("nesting should have been refused")
    except RuntimeError as error:
        print("refused:", error)
assert bugs.active() is None

# %% [markdown]
# ## 2. Six checks
#
# Each check below returns a short piece of evidence when the code is right and raises
# `AssertionError` (or `GradcheckError`) with the evidence when it is not.
#
# **Statistics: the scores keep unit variance.** For q and k with independent unit-variance
# entries, the score $q \cdot k = \sum_{i=1}^{d_k} q_i k_i$ has variance $d_k$; dividing by
# $\sqrt{d_k}$ brings it back to 1 for every $d_k$ (the paper, section 3.2.1). The weights do not
# show the scores directly, but softmax ignores a shift of its row, so
# $\log w_{ij} - \operatorname{mean}_j \log w_{ij} = s_{ij} - \operatorname{mean}_j s_{ij}$: the
# scores, centred per row. Centring S values removes a fraction $1/S$ of their variance.

# %%
def check_score_variance(d_k=64, length=16):
    rng = np.random.default_rng(0)
    q = mt.tensor(rng.standard_normal((4, length, d_k)))  # float64: logs of tiny weights
    k = mt.tensor(rng.standard_normal((4, length, d_k)))
    v = mt.tensor(rng.standard_normal((4, length, 8)))
    _, weights = F.scaled_dot_product_attention(q, k, v)
    # BEGIN SOLUTION
    log_w = np.log(weights.numpy())
    centred = log_w - log_w.mean(axis=-1, keepdims=True)  # = scores - their row mean
    variance = centred.var() * length / (length - 1)  # undo what centring removed
    # END SOLUTION
    evidence = f"score variance {variance:.1f} at d_k = {d_k} (≈ 1 expected)"
    assert variance < 2.0, evidence
    return evidence


print(check_score_variance())

# %% [markdown]
# **Numerics: softmax of large logits.** $e^{x}$ overflows float32 once $x > 88.7$, so softmax
# subtracts the row maximum first, $\operatorname{softmax}(x) = \operatorname{softmax}(x - m)$.
# Small test inputs never reach 88; this check feeds logits near 1000.

# %%
def check_large_logits():
    logits = mt.tensor([[1000.0, 999.0, 990.0]])  # float32
    with np.errstate(over="ignore", invalid="ignore"):  # a bug shows up as inf / NaN values
        p = F.softmax(logits, axis=-1).numpy()
    evidence = f"softmax([1000, 999, 990]) = {np.array2string(p[0], precision=3)}"
    assert np.isfinite(p).all() and abs(p.sum() - 1) < 1e-5, evidence
    return evidence


print(check_large_logits())

# %% [markdown]
# **Probabilities: each row of attention weights sums to 1.** Under a causal mask the first
# query sees one key, the second two, and so on; its weights must still form a distribution.

# %%
def check_rows_sum_to_one():
    mt.manual_seed(0)
    q, k, v = mt.randn(2, 6, 8), mt.randn(2, 6, 8), mt.randn(2, 6, 8)
    _, weights = F.scaled_dot_product_attention(q, k, v, F.causal_mask(6))
    sums = weights.numpy().sum(axis=-1)
    evidence = f"row sums from {sums.min():.3f} to {sums.max():.3f} (1 expected)"
    assert np.allclose(sums, 1.0, atol=1e-5), evidence
    return evidence


print(check_rows_sum_to_one())

# %% [markdown]
# **Gradients: `gradcheck`.** Central differences against backpropagation (chapter 3), for a
# broadcast add (a bias (3,) added to every row of a (4, 3) input), for `nn.Linear` and for
# masked attention.

# %%
def check_gradients():
    mt.manual_seed(0)
    x, b = mt.randn(4, 3).double(), mt.randn(3).double()
    q, k, v = (mt.randn(2, 4, 8).double() for _ in range(3))
    try:
        mt.gradcheck(lambda x, b: x + b, x, b)
        mt.gradcheck_module(nn.Linear(3, 2).double(), mt.randn(2, 4, 3).double())
        mt.gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, F.causal_mask(4)),
                     q, k, v)
    except mt.GradcheckError as error:
        raise AssertionError(str(error).split(" (abs error")[0]) from None
    return "add, Linear and attention gradients match finite differences"


print(check_gradients())

# %% [markdown]
# **Causality: the decoder never reads the future.** Change target token $t$ and run the
# decoder again: the outputs at positions $< t$ must not move at all, because no query before
# $t$ may attend to it.

# %%
mt.manual_seed(0)
probe = nn.Transformer(12, 12, d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1,
                       d_ff=32, dropout=0.0).double()
probe.eval()


def check_causality(t=3):
    src = mt.tensor([[3, 4, 5, 6]])
    tgt = np.array([[1, 7, 8, 9, 10]])
    # BEGIN SOLUTION
    changed = tgt.copy()
    changed[0, t] = 11  # another token at position t only
    with mt.no_grad():
        before = probe(src, mt.tensor(tgt)).numpy()  # (1, T, V) logits
        after = probe(src, mt.tensor(changed)).numpy()
    moved = np.abs(before[:, :t] - after[:, :t]).max()  # positions 0 .. t-1
    # END SOLUTION
    evidence = f"logits before position {t} moved by {moved:.1e} when token {t} changed"
    assert moved < 1e-10, evidence
    return evidence


print(check_causality())

# %% [markdown]
# **The loss by hand.** With label smoothing ε the target distribution puts $1 - ε$ on the target
# and $ε / C$ on every class, so one position's loss is
# $-(1 - ε) \log p_t - ε \cdot \frac{1}{C} \sum_c \log p_c$, and the mean runs over the real
# (non-padding) positions only. Computed in NumPy from that definition, it must equal
# `F.cross_entropy`.

# %%
def check_loss_by_hand(epsilon=0.1):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 4, 5))
    targets = np.array([[1, 2, 3, IGNORE_INDEX], [4, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]])
    ours = F.cross_entropy(mt.tensor(logits), mt.tensor(targets), ignore_index=IGNORE_INDEX,
                           label_smoothing=epsilon).item()
    # BEGIN SOLUTION
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))  # (2, 4, 5)
    real = targets != IGNORE_INDEX
    nll = -np.take_along_axis(log_p, np.where(real, targets, 0)[..., None], axis=-1)[..., 0]
    per_position = (1 - epsilon) * nll - epsilon * log_p.mean(axis=-1)  # (2, 4)
    by_hand = per_position[real].mean()
    # END SOLUTION
    evidence = f"loss {ours:.4f}, by hand {by_hand:.4f}"
    assert abs(ours - by_hand) < 1e-9, evidence
    return evidence


print(check_loss_by_hand())

# %% [markdown]
# ## 3. The matrix: every check against every bug
#
# Now run all six checks on the correct code and under each bug. A check that raises has
# *caught* the bug; its message is the evidence.

# %%
CHECKS = {
    "score variance": check_score_variance,
    "large logits": check_large_logits,
    "rows sum to 1": check_rows_sum_to_one,
    "gradcheck": check_gradients,
    "causality": check_causality,
    "loss by hand": check_loss_by_hand,
}


def run_checks():
    """{check name: (caught, evidence)} for the code as it is now."""
    results = {}
    for name, check in CHECKS.items():
        try:
            results[name] = (False, check())
        except AssertionError as error:
            results[name] = (True, str(error))
    return results


start = time.perf_counter()
matrix = {"(correct code)": run_checks()}
for name in bugs.BUGS:
    with bugs.inject(name):
        matrix[name] = run_checks()
print(f"{len(CHECKS)} checks x {len(matrix)} conditions in {time.perf_counter() - start:.1f} s\n")
print(f"{'':<30}" + "".join(f"{check:>15}" for check in CHECKS))
for condition, results in matrix.items():
    print(f"{condition:<30}" + "".join(f"{'CAUGHT' if results[c][0] else '.':>15}"
                                       for c in CHECKS))

# %% [markdown]
# Reading the matrix:
#
# - The correct code passes every check: a check that fires on correct code would be useless.
# - Every bug is caught by at least one check, and each check catches at least one bug: none of
#   the six is redundant.
# - `gradcheck` catches only the gradient bug. It compares backpropagation with finite
#   differences *of the same forward*; an off-by-one mask or a missing √d_k makes a different
#   function, but one whose gradient is computed correctly, so gradcheck passes. Forward bugs
#   need checks of what the forward should compute.
# - Two bugs leak the future, and the causality check catches both: the off-by-one mask
#   obviously, the mask applied after softmax subtly (the hidden keys still sit in softmax's
#   denominator, so a future token changes every weight of an earlier row).

# %%
EXPECTED = {
    "no_sqrt_scaling": {"score variance"},
    "softmax_no_max_shift": {"large logits"},
    "mask_after_softmax": {"rows sum to 1", "causality"},
    "missing_broadcast_reduction": {"gradcheck"},
    "causal_mask_off_by_one": {"causality"},
    "label_smoothing_over_padding": {"loss by hand"},
}
assert not any(caught for caught, _ in matrix["(correct code)"].values()), (
    f"on the correct code no check may fire, but "
    f"{sorted(c for c, (hit, _) in matrix['(correct code)'].items() if hit)} did: that check "
    "measures the wrong quantity, compare it with its definition in section 2"
)
for name, expected in EXPECTED.items():
    caught_by = {check for check, (caught, _) in matrix[name].items() if caught}
    assert caught_by == expected, (
        f"{name} should be caught by {sorted(expected)}, was caught by {sorted(caught_by)}: "
        f"{sorted(caught_by ^ expected)} measure the wrong quantity, compare them with their "
        "definitions in section 2"
    )
assert bugs.active() is None

# %% [markdown]
# ## 4. Find the mystery bug
#
# In class the bug has no name. `bugs.inject_mystery(seed)` switches on one bug chosen from an
# integer seed and keeps quiet about which: `bugs.active()` says only `"mystery"`, and the
# changed functions keep the names and docstrings of the correct ones. A seed means the same bug
# on every machine, and seeds 0 to 5 give six different bugs, so a lecturer hands each group its
# own seed. Called as a plain statement, as at the top of a student's notebook, it leaves the bug
# on until `bugs.reveal()` (or `bugs.clear()`); `with bugs.inject_mystery(seed):` limits it to a
# block.
#
# Your seed is 11. Switch the bug on and run the six checks.

# %%
mystery = bugs.inject_mystery(11)
print(mystery, "| bugs.active() says:", bugs.active())
findings = run_checks()
caught = {check for check, (hit, _) in findings.items() if hit}
for check, (hit, evidence) in findings.items():
    if hit:
        print(f"caught by {check}: {evidence}")
assert bugs.active() == "mystery" and caught

# %% [markdown]
# The set of checks that fire is the bug's fingerprint: the matrix above gave every bug a
# different one. One check alone would not do: causality fires for two bugs, and only the
# rows-sum-to-1 check tells them apart. Look the fingerprint up, *then* ask `bugs.reveal()`,
# which names the bug and switches it off.

# %%
def infer_bug(caught):
    """The bug whose row of the matrix fired exactly the checks in ``caught``."""
    # BEGIN SOLUTION
    suspects = [name for name in bugs.BUGS
                if {check for check, (hit, _) in matrix[name].items() if hit} == caught]
    # END SOLUTION
    assert len(suspects) == 1, (
        f"the checks {sorted(caught)} fit {suspects}, exactly one bug expected: keep the bugs "
        "whose row of the matrix fired exactly these checks (a set equal to caught)"
    )
    return suspects[0]


guess = infer_bug(caught)
print("our guess:", guess)
revealed = bugs.reveal()
print("revealed: ", revealed)
assert revealed.name == guess and bugs.active() is None and not mystery.is_on, (
    f"guessed {guess!r}, revealed {revealed.name!r} (bugs.active() now {bugs.active()!r}): "
    "infer_bug should return the bug whose row of the matrix fired exactly the checks in caught"
)
assert not any(caught for caught, _ in run_checks().values())  # the correct code is back

# %% [markdown]
# ## 5. What a training run shows
#
# Suppose the checks did not exist and we only trained. The copy task of chapter 12 (a small
# encoder-decoder, one layer each side, one head so $d_k = 32$, label smoothing 0.1) is trained
# under each bug for the same number of steps, and then asked to copy 100 held-out sequences
# with greedy decoding. The whole program runs buggy: batching, training and decoding.

# %%
VOCAB, MIN_LEN, MAX_LEN = 12, 3, 6
train_pairs = mt.data.copy_task(2000, vocab_size=VOCAB, min_len=MIN_LEN, max_len=MAX_LEN, seed=0)
test_pairs = mt.data.copy_task(100, vocab_size=VOCAB, min_len=MIN_LEN, max_len=MAX_LEN, seed=1)


def copy_loss(model, batch):
    logits = model(batch.src, batch.tgt_in, src_mask=batch.src_mask, tgt_mask=batch.tgt_mask)
    return F.cross_entropy(logits, batch.tgt_out, ignore_index=IGNORE_INDEX, label_smoothing=0.1)


def train_copy_model():
    """Train for STEPS steps; return the loss curve and the held-out exact-match accuracy."""
    mt.manual_seed(0)
    model = nn.Transformer(VOCAB, VOCAB, d_model=32, n_heads=1, n_encoder_layers=1,
                           n_decoder_layers=1, d_ff=64, dropout=0.0, max_len=16)
    loader = mt.data.DataLoader(train_pairs, batch_size=32, collate_fn=mt.data.collate_seq2seq,
                                shuffle=True, seed=0)

    def batches(epoch):
        loader.set_epoch(epoch)
        return loader

    optimizer = mt.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    schedule = mt.optim.warmup_cosine(3e-3, warmup=30, total=STEPS, min_lr=3e-4)
    config = train.TrainConfig(steps=STEPS, log_every=25, grad_clip=1.0, progress=False)
    history = train.Trainer(model, optimizer, copy_loss, batches, config, schedule).fit()
    test = mt.data.collate_seq2seq(test_pairs)
    outputs = decoding.greedy(model, test.src, max_len=MAX_LEN + 2, bos_id=BOS_ID, eos_id=EOS_ID)
    exact = np.mean([out == tgt + [EOS_ID] for out, (_, tgt) in zip(outputs, test_pairs)])
    return [row["loss"] for row in history], float(exact)


start = time.perf_counter()
runs = {"(correct code)": train_copy_model()}
for name in bugs.BUGS:
    with bugs.inject(name):
        runs[name] = train_copy_model()
print(f"{len(runs)} training runs of {STEPS} steps in {time.perf_counter() - start:.1f} s\n")
print(f"{'':<30}{'mean loss':>10}{'final loss':>11}{'exact match':>12}   loss every 25 steps")
for condition, (curve, exact) in runs.items():
    print(f"{condition:<30}{np.mean(curve):>10.3f}{curve[-1]:>11.3f}{exact:>12.0%}   "
          + " ".join(f"{value:.2f}" for value in curve))

# %% [markdown]
# The same runs as curves. The correct code's curve is hidden under the two bugs that training
# cannot see (they lie on top of it). Look for the curves that run *below* that bundle, the two
# leaks early on and the padding-counting loss throughout: none of them is a better model.

# %%
if HAS_MATPLOTLIB:
    logged = list(range(25, STEPS + 1, 25))  # the steps the Trainer logged (log_every=25)
    mt.viz.show(mt.viz.plot_curves({name: (logged, curve) for name, (curve, _) in runs.items()},
                                   "ch19_bug_curves.png", ylabel="training loss (smoothed)",
                                   title=f"copy task, {STEPS} steps under each bug"))
else:
    print("matplotlib is not installed: no plot (pip install 'minitransformer[plot]')")

# %% [markdown]
# What the curves say, and what they hide:
#
# - **The two leaks look like success.** With the off-by-one mask, position $i$ sees token
#   $i + 1$, the very token it must predict, so the training loss falls as fast as the correct
#   model's or faster. At decoding time that token does not exist yet, and the model that learned
#   to copy it copies almost nothing right. The mask applied after softmax leaks the same way,
#   through softmax's denominator. A loss that looks *too good* is a warning, not a success.
# - **A missing √d_k shows as a slower start.** With $d_k = 32$ the unscaled scores are about
#   $\sqrt{32} \approx 5.7$ times too large, softmax saturates, and its gradient is small.
# - **Two bugs are invisible to training.** A bias that gets only one row's gradient still moves
#   in a useful direction, and no logit in this model comes near 88, so the missing max-shift
#   never overflows. Only the gradient check and the numerics check find them.
# - **The wrong loss reads better than the right one.** Padding positions that pay only the
#   smoothing term are cheap, and counting them in the mean lowers the reported loss. The model
#   barely changes; the number does. Only the loss by hand catches it.

# %%
clean_curve, clean_exact = runs["(correct code)"]
assert clean_exact >= 0.8, clean_exact
for leak in ("causal_mask_off_by_one", "mask_after_softmax"):
    curve, exact = runs[leak]
    assert curve[-1] <= clean_curve[-1] + 0.05 and exact <= 0.3, (leak, curve[-1], exact)
curve, exact = runs["no_sqrt_scaling"]
assert np.mean(curve) > np.mean(clean_curve) + 0.05, (np.mean(curve), np.mean(clean_curve))
for invisible in ("missing_broadcast_reduction", "softmax_no_max_shift"):
    curve, exact = runs[invisible]
    assert abs(curve[-1] - clean_curve[-1]) < 0.05 and exact >= 0.8, (invisible, curve, exact)
curve, exact = runs["label_smoothing_over_padding"]
assert curve[-1] < clean_curve[-1] - 0.02, (curve[-1], clean_curve[-1])

# %% [markdown]
# ## 6. The table: bug → caught by → evidence
#
# Putting it together: for each bug the checks that caught it, the evidence the first of them
# gave, and what the training run showed.

# %%
def training_verdict(name):
    curve, exact = runs[name]
    if np.mean(curve) > np.mean(clean_curve) + 0.05:
        return (f"slower: mean loss {np.mean(curve):.2f} vs {np.mean(clean_curve):.2f}, "
                f"exact match {exact:.0%}")
    if exact < clean_exact - 0.3:
        return (f"a leak: final loss {curve[-1]:.2f} (correct: {clean_curve[-1]:.2f}) but "
                f"exact match {exact:.0%}")
    if abs(curve[-1] - clean_curve[-1]) >= 0.02:
        return f"reported loss {curve[-1]:.2f} vs {clean_curve[-1]:.2f}: another quantity"
    return f"indistinguishable from the correct run (exact match {exact:.0%})"


rows = []
for name in bugs.BUGS:
    caught = [check for check, (hit, _) in matrix[name].items() if hit]
    rows.append((name, " + ".join(caught), matrix[name][caught[0]][1], training_verdict(name)))
for name, caught, evidence, verdict in rows:
    print(f"{name}\n    caught by: {caught}\n    evidence:  {evidence}\n    training:  {verdict}")
assert all(caught for _, caught, _, _ in rows)
print(f"\nchapter ran in {time.perf_counter() - CHAPTER_START:.0f} s")

# %% [markdown]
# ## Summary
#
# - `bugs.inject(name)` switches on one classic bug for the length of a `with` block, everywhere
#   the package looks the changed function up, and restores everything on exit.
# - Six checks, six kinds of evidence: statistics (score variance), numerics (large logits),
#   probabilities (rows sum to 1), gradients (`gradcheck`), behaviour (causality) and a
#   definition computed by hand (the loss).
# - `gradcheck` only proves that backward matches forward. Bugs in the forward pass need checks
#   of what the forward should compute.
# - A training curve is a weak test: leaks make it look better, some bugs leave it unchanged.
#   Measure what the model does on held-out data (exact match after decoding), not only the loss.
# - A bug without a name is found by its fingerprint, the set of checks it trips:
#   `bugs.inject_mystery(seed)` hides which bug is on, and `bugs.reveal()` tells you afterwards.
#
# ## Exercises
#
# ```{exercise} Why gradcheck passes on a leaking mask
# :label: ch19-gradcheck-blind
#
# Under `causal_mask_off_by_one` the model cheats, yet `check_gradients` passes even on masked
# attention. Explain why, and say what a gradient check *can* promise.
# ```
#
# ```{solution} ch19-gradcheck-blind
# :class: dropdown
#
# `gradcheck` compares two ways of differentiating one function: backpropagation and central
# differences of the forward pass. With the off-by-one mask the forward pass is a different
# function (it lets each query see one more key), but every op in it still has a correct
# backward, so both ways agree on the gradient of that wrong function. A gradient check promises
# only that training follows the gradient of the function the forward computes; whether that
# function is the right one takes tests of the forward itself, such as the causality check.
# ```
#
# ```{exercise} The mask test, without a model
# :label: ch19-mask-unit-test
#
# The causality check builds a whole Transformer. Write a check of `F.causal_mask` alone that
# catches `causal_mask_off_by_one`, including the rectangular case used with a key/value cache
# (`causal_mask(2, 4)`: two new queries after two cached keys). Run it inside and outside
# `bugs.inject("causal_mask_off_by_one")`.
# ```
#
# ````{solution} ch19-mask-unit-test
# :class: dropdown
#
# Query $i$ of the last $T$ of $S$ positions may see keys $0 \ldots i + S - T$: NumPy's
# `tril` with `k = S - T`.
#
# ```python
# def check_mask_shape():
#     for size, key_size in ((4, 4), (2, 4), (1, 5)):
#         expected = np.tril(np.ones((size, key_size), bool), k=key_size - size)
#         assert (F.causal_mask(size, key_size).numpy() == expected).all(), (size, key_size)
#
#
# check_mask_shape()  # passes
# with bugs.inject("causal_mask_off_by_one"):
#     check_mask_shape()  # AssertionError: (4, 4)
# ```
#
# The case (1, 5), one query over five keys, passes even under the bug: the single query may
# see every key anyway, so there is no key "i + 1" to leak. That is why decoding with a cache
# works under the bug while teacher-forced training does not.
# ````
#
# ```{exercise} Could fewer checks do?
# :label: ch19-fewer-checks
#
# Section 4 named the mystery bug from the checks that fired. Could a lab with five checks
# instead of six still name every bug, and tell each from the correct code? Answer it with
# `matrix`, for every way of leaving one check out.
# ```
#
# ````{solution} ch19-fewer-checks
# :class: dropdown
#
# ```python
# for left_out in CHECKS:
#     fingerprints = [frozenset(c for c, (hit, _) in results.items() if hit and c != left_out)
#                     for results in matrix.values()]
#     print(f"without {left_out}: {len(set(fingerprints))} of {len(matrix)} told apart")
# ```
#
# No: without any one check, two of the seven conditions share a fingerprint. Four checks are
# the only ones to catch their bug, so without one of them that bug looks like correct code.
# Without causality the off-by-one mask does too; without rows-sum-to-1 the mask after softmax
# looks like the off-by-one mask (both trip causality only). Six bugs and the correct code need
# all six checks.
# ````
#
# ```{exercise} How large must d_k be?
# :label: ch19-variance-d-k
#
# Run `check_score_variance(d_k)` for d_k = 1, 4, 16, 64 with and without
# `no_sqrt_scaling`. How does the measured variance grow under the bug? For which d_k does the
# check (threshold 2) stop catching it, and why is that no comfort?
# ```
#
# ````{solution} ch19-variance-d-k
# :class: dropdown
#
# ```python
# for d_k in (1, 4, 16, 64):
#     with bugs.inject("no_sqrt_scaling"):
#         try:
#             print(d_k, "bug:", check_score_variance(d_k))
#         except AssertionError as error:
#             print(d_k, "bug:", error)
# ```
#
# Measured: without the bug the variance is 0.8, 1.0, 1.0, 1.0 for d_k = 1, 4, 16, 64; with it
# 0.8, 4.0, 15.8, 62.8, close to d_k itself. The check catches the bug from d_k = 4 on but not at
# d_k = 1, where dividing by √1 = 1 changes nothing: there the "bug" is not a bug at all. That
# is no comfort, because real models use d_k = 64 (the paper) or more, where the unscaled logits
# spread over tens of units and softmax saturates.
# ````
