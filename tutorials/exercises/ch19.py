# %% setup
# Chapter 19's exercises, graded: write each answer in its cell; the check cell after it says
# what is wrong, if anything. `minitransformer grade` gives each exercise its points.
# Every check switches its bugs on with `with bugs.inject(...)` and calls bugs.clear() at the end,
# so no bug stays on for the next exercise.
import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import bugs

bugs.clear()  # the exercises start from correct code, whatever bug the chapter left on

# The checks that fired under each condition in section 3's matrix (the evidence left out):
# MATRIX[condition][check] = (caught, evidence), as `matrix` in the chapter.
CHECK_NAMES = ("score variance", "large logits", "rows sum to 1", "gradcheck", "causality",
               "loss by hand")
CAUGHT = {
    "(correct code)": set(),
    "no_sqrt_scaling": {"score variance"},
    "softmax_no_max_shift": {"large logits"},
    "mask_after_softmax": {"rows sum to 1", "causality"},
    "missing_broadcast_reduction": {"gradcheck"},
    "causal_mask_off_by_one": {"causality"},
    "label_smoothing_over_padding": {"loss by hand"},
}
MATRIX = {condition: {check: (check in caught, "") for check in CHECK_NAMES}
          for condition, caught in CAUGHT.items()}


def masked_attention(q, k, v):
    """The output of causal attention over 4 positions (section 2's gradient check)."""
    output, _ = F.scaled_dot_product_attention(q, k, v, F.causal_mask(4))
    return output


# %% exercise ch19-gradcheck-blind (2 points)
# gradcheck_passes(function, inputs, bug) -> bool: True when mt.gradcheck(function, *inputs)
# passes with the bug named `bug` switched on (bugs.inject; None: the correct code), False
# when it raises mt.GradcheckError. No bug may stay on afterwards.
# forward_changes(function, inputs, bug) -> bool: True when function(*inputs) (a Tensor) with
# the bug on differs from function(*inputs) on the correct code.
# gradcheck_promises: what a passing gradient check promises, one of "the forward is right",
# "backward is the gradient of the forward" or "the model will train well".
# BEGIN SOLUTION
def gradcheck_passes(function, inputs, bug):
    def run():
        try:
            mt.gradcheck(function, *inputs)
            return True
        except mt.GradcheckError:
            return False

    if bug is None:
        return run()
    with bugs.inject(bug):
        return run()


def forward_changes(function, inputs, bug):
    correct = function(*inputs).numpy()
    with bugs.inject(bug):
        wrong = function(*inputs).numpy()
    return not np.array_equal(correct, wrong)


gradcheck_promises = "backward is the gradient of the forward"
# END SOLUTION

# %% check ch19-gradcheck-blind
mt.manual_seed(0)
attention_inputs = [mt.randn(2, 4, 8).double() for _ in range(3)]
add_inputs = [mt.randn(4, 3).double(), mt.randn(3).double()]  # a bias broadcast over rows
try:
    cases = [  # (what, function, inputs, bug, gradcheck passes, forward changes)
        ("masked attention, correct code", masked_attention, attention_inputs, None, True, None),
        ("masked attention", masked_attention, attention_inputs, "causal_mask_off_by_one",
         True, True),
        ("x + b", lambda x, b: x + b, add_inputs, "missing_broadcast_reduction", False, False),
    ]
    for what, function, inputs, bug, passes, changes in cases:
        try:
            got = gradcheck_passes(function, inputs, bug)
        except mt.GradcheckError as error:
            raise AssertionError(
                f"gradcheck_passes for {what} under {bug} let mt.GradcheckError out "
                f"({str(error)[:80]}...): catch it and return False") from None
        assert bugs.active() is None, (
            f"gradcheck_passes(..., {bug!r}) left the bug {bugs.active()!r} on: switch it on "
            "with `with bugs.inject(bug):`, which switches it off again")
        assert got is passes, (
            f"gradcheck_passes for {what} under {bug} returned {got!r}: run mt.gradcheck "
            "inside the `with bugs.inject(bug):` block, return False when it raises "
            "mt.GradcheckError")
        if changes is not None:
            got = forward_changes(function, inputs, bug)
            assert bugs.active() is None, (
                f"forward_changes(..., {bug!r}) left the bug {bugs.active()!r} on: use "
                "`with bugs.inject(bug):`, which switches it off again")
            assert got is changes, (
                f"forward_changes for {what} under {bug} returned {got!r}: compute the output "
                "once on the correct code and once inside `with bugs.inject(bug):`, and compare")
finally:
    bugs.clear()
assert gradcheck_promises == "backward is the gradient of the forward", (
    f"gradcheck_promises is {gradcheck_promises!r}, but gradcheck passed on the leaking mask "
    "(a forward that changed) and failed on the broadcast bug (a forward that did not): what "
    "does it compare with what?")

# %% wrong ch19-gradcheck-blind
def gradcheck_passes(function, inputs, bug):  # noqa: F811  (GradcheckError let out)
    if bug is None:
        return mt.gradcheck(function, *inputs)
    with bugs.inject(bug):
        return mt.gradcheck(function, *inputs)

# %% wrong ch19-gradcheck-blind
def forward_changes(function, inputs, bug):  # noqa: F811  (both outputs with the bug on)
    with bugs.inject(bug):
        correct = function(*inputs).numpy()
        wrong = function(*inputs).numpy()
    return not np.array_equal(correct, wrong)

# %% wrong ch19-gradcheck-blind
gradcheck_promises = "the forward is right"

# %% exercise ch19-mask-unit-test (2 points)
# mask_is_right(size, key_size) -> bool: F.causal_mask(size, key_size) (called through F, so
# that an injected bug shows) is the mask of the last `size` of `key_size` positions: query i
# may see keys 0 .. i + key_size − size, nothing after.
# check_mask_shape(): raises AssertionError (naming the shape) unless mask_is_right for
# (4, 4), (2, 4) and (1, 5).
# single_query_caught: bool, whether the shape (1, 5) alone reveals causal_mask_off_by_one.
# BEGIN SOLUTION
def mask_is_right(size, key_size):
    expected = np.tril(np.ones((size, key_size), dtype=bool), k=key_size - size)
    return bool((F.causal_mask(size, key_size).numpy() == expected).all())


def check_mask_shape():
    for size, key_size in ((4, 4), (2, 4), (1, 5)):
        assert mask_is_right(size, key_size), (size, key_size)


with bugs.inject("causal_mask_off_by_one"):
    single_query_caught = not mask_is_right(1, 5)  # one query sees every key anyway
# END SOLUTION

# %% check ch19-mask-unit-test
def raised(check):
    """The AssertionError check() raised, or None."""
    try:
        check()
    except AssertionError as error:
        return error
    return None


def square_only_mask(size, key_size=None):
    """A wrong mask: right for squares, but its rectangles ignore the cached keys."""
    return mt.tensor(np.tril(np.ones((size, size if key_size is None else key_size), bool)))


correct_mask = F.causal_mask
try:
    for shape in ((4, 4), (2, 4), (1, 5), (3, 7)):
        assert mask_is_right(*shape), (
            f"mask_is_right{shape} is False for the correct F.causal_mask{shape}: query i of "
            "the last `size` positions may see keys up to i + key_size − size")
    error = raised(check_mask_shape)
    assert error is None, (
        f"check_mask_shape fails on the correct code ({error!r}): query i of the last `size` "
        "of `key_size` positions may see keys 0 .. i + key_size − size")
    with bugs.inject("causal_mask_off_by_one"):
        verdicts = {shape: mask_is_right(*shape) for shape in ((4, 4), (2, 4), (1, 5))}
        error = raised(check_mask_shape)
    assert verdicts == {(4, 4): False, (2, 4): False, (1, 5): True}, (
        f"under causal_mask_off_by_one mask_is_right gives {verdicts}: (4, 4) and (2, 4) are "
        "wrong masks then; (1, 5) is all True either way")
    assert error is not None, (
        f"check_mask_shape passes under causal_mask_off_by_one, where mask_is_right gives "
        f"{verdicts}: raise an AssertionError when any of the shapes is wrong")
    F.causal_mask = square_only_mask
    error = raised(check_mask_shape)
    assert error is not None, (
        "check_mask_shape passes a causal_mask that is right for squares but gives "
        f"{square_only_mask(2, 4).numpy().astype(int).tolist()} for (2, 4): test the "
        "rectangular case (two new queries after two cached keys) too")
finally:
    F.causal_mask = correct_mask
    bugs.clear()
assert single_query_caught is False, (
    f"single_query_caught is {single_query_caught!r}, but mask_is_right(1, 5) is True under "
    "the bug: a single query may see all five keys, so there is nothing to leak")

# %% wrong ch19-mask-unit-test
def check_mask_shape():  # noqa: F811  (square masks only)
    for size in (1, 4, 6):
        assert mask_is_right(size, size), (size, size)

# %% wrong ch19-mask-unit-test
def mask_is_right(size, key_size):  # noqa: F811  (the queries taken as the FIRST positions)
    expected = np.tril(np.ones((size, key_size), dtype=bool))
    return bool((F.causal_mask(size, key_size).numpy() == expected).all())

# %% exercise ch19-fewer-checks (2 points)
# told_apart(matrix, left_out) -> int: how many different fingerprints the conditions of
# `matrix` ({condition: {check: (caught, evidence)}}, like MATRIX from the setup) have when
# check `left_out` is ignored; a fingerprint is the set of checks that fired.
# removable_checks: list of the checks of MATRIX (CHECK_NAMES) that a lab could leave out and
# still tell all of its conditions (six bugs and the correct code) apart.
# BEGIN SOLUTION
def told_apart(matrix, left_out):
    fingerprints = [frozenset(check for check, (hit, _) in results.items()
                              if hit and check != left_out)
                    for results in matrix.values()]
    return len(set(fingerprints))


removable_checks = [check for check in CHECK_NAMES if told_apart(MATRIX, check) == len(MATRIX)]
# END SOLUTION

# %% check ch19-fewer-checks
toy = {"fine": {"a": (False, ""), "b": (False, "")},
       "bug 1": {"a": (True, ""), "b": (True, "")},
       "bug 2": {"a": (False, ""), "b": (True, "")},
       "bug 3": {"a": (True, ""), "b": (False, "")}}
for left_out, want in (("a", 2), ("b", 2), ("c", 4)):
    got = told_apart(toy, left_out)
    assert got == want, (
        f"told_apart(toy, {left_out!r}) is {got}, not {want}, for toy = {toy}: drop "
        f"{left_out!r} from every condition's set of fired checks, then count the different sets")
for check in CHECK_NAMES:
    fired = [frozenset(c for c, (hit, _) in row.items() if hit and c != check)
             for row in MATRIX.values()]
    assert told_apart(MATRIX, check) == len(set(fired)), (
        f"told_apart(MATRIX, {check!r}) is {told_apart(MATRIX, check)}; count the different "
        "sets of fired checks once that check is dropped")
assert isinstance(removable_checks, list) and sorted(removable_checks) == sorted(
    c for c in CHECK_NAMES if told_apart(MATRIX, c) == len(MATRIX)), (
    f"removable_checks is {removable_checks}, but without them told_apart(MATRIX, ...) gives "
    f"{[told_apart(MATRIX, c) for c in removable_checks]} of {len(MATRIX)}: keep the checks "
    "whose removal still tells ALL the conditions apart, the correct code included")

# %% wrong ch19-fewer-checks
def told_apart(matrix, left_out):  # noqa: F811  (left_out never left out)
    return len({frozenset(c for c, (hit, _) in results.items() if hit)
                for results in matrix.values()})

# %% wrong ch19-fewer-checks
bugs_only = {name: row for name, row in MATRIX.items() if name != "(correct code)"}
removable_checks = [c for c in CHECK_NAMES if told_apart(bugs_only, c) == len(bugs_only)]

# %% exercise ch19-variance-d-k (2 points)
# score_variance(d_k, length=16) -> float: the measurement of check_score_variance, returned
# instead of asserted: rng = np.random.default_rng(0); q, k = (4, length, d_k) and v =
# (4, length, 8) standard normal Tensors (in that order); the weights of
# F.scaled_dot_product_attention(q, k, v); their logs centred per row; the variance of all of
# them times length / (length − 1).
# variances: dict {d_k: (without the bug, with no_sqrt_scaling)} for d_k = 1, 4, 16, 64.
# grows_like: how the variance grows with d_k under the bug: "sqrt(d_k)", "d_k" or "d_k**2".
# smallest_caught: the smallest of these d_k at which the check (variance < 2) catches the bug.
# BEGIN SOLUTION
def score_variance(d_k, length=16):
    rng = np.random.default_rng(0)
    q = mt.tensor(rng.standard_normal((4, length, d_k)))
    k = mt.tensor(rng.standard_normal((4, length, d_k)))
    v = mt.tensor(rng.standard_normal((4, length, 8)))
    _, weights = F.scaled_dot_product_attention(q, k, v)
    log_w = np.log(weights.numpy())
    centred = log_w - log_w.mean(axis=-1, keepdims=True)  # = scores - their row mean
    return float(centred.var() * length / (length - 1))  # undo what centring removed


variances = {}
for d_k in (1, 4, 16, 64):
    with bugs.inject("no_sqrt_scaling"):
        with_bug = score_variance(d_k)
    variances[d_k] = (score_variance(d_k), with_bug)
grows_like = "d_k"
smallest_caught = min(d_k for d_k, (_, with_bug) in variances.items() if with_bug >= 2)
# END SOLUTION

# %% check ch19-variance-d-k
def reference_variance(d_k, length=16):
    rng = np.random.default_rng(0)
    q, k = rng.standard_normal((4, length, d_k)), rng.standard_normal((4, length, d_k))
    scores = q @ k.swapaxes(-1, -2)  # (4, length, length), not scaled yet
    centred = scores - scores.mean(axis=-1, keepdims=True)
    return float(centred.var() * length / (length - 1))


try:
    for d_k in (1, 16, 64):
        want = reference_variance(d_k)
        got = score_variance(d_k)
        assert abs(got - want / d_k) < 0.03 * want / d_k, (
            f"score_variance({d_k}) is {got:.3f} on the correct code; centre the log-weights "
            "per row, take the variance of all of them and multiply it by "
            "length / (length − 1) (centring removes 1/length of it)")
        with bugs.inject("no_sqrt_scaling"):
            got = score_variance(d_k)
        assert abs(got - want) < 0.03 * want, (
            f"score_variance({d_k}) is {got:.3f} under no_sqrt_scaling, as if the bug were "
            "off: measure through F.scaled_dot_product_attention's weights, which the bug "
            "changes (scores computed by hand do not see it)")
finally:
    bugs.clear()
assert sorted(variances) == [1, 4, 16, 64], (
    f"variances has the keys {sorted(variances)}: one entry per d_k = 1, 4, 16 and 64")
for d_k, (without, with_bug) in variances.items():
    assert abs(without - score_variance(d_k)) < 1e-9, (
        f"variances[{d_k}][0] is {without:.3f}, but score_variance({d_k}) is "
        f"{score_variance(d_k):.3f}: the first value is measured without the bug")
    assert abs(with_bug - reference_variance(d_k)) < 0.03 * reference_variance(d_k), (
        f"variances[{d_k}][1] is {with_bug:.3f}: measure it with score_variance({d_k}) inside "
        "`with bugs.inject('no_sqrt_scaling'):`")
ratio = variances[64][1] / variances[16][1]
assert grows_like == "d_k", (
    f"grows_like is {grows_like!r}, but under the bug the variance grows {ratio:.1f} times "
    "while d_k grows 4 times (from 16 to 64)")
caught = [d_k for d_k, (_, with_bug) in sorted(variances.items()) if with_bug >= 2]
assert smallest_caught == caught[0], (
    f"smallest_caught is {smallest_caught!r}; your variances under the bug are "
    f"{ {d_k: round(v[1], 2) for d_k, v in variances.items()} } and the check catches a "
    "variance of 2 or more")

# %% wrong ch19-variance-d-k
def score_variance(d_k, length=16):  # noqa: F811  (the scores by hand: blind to the bug)
    rng = np.random.default_rng(0)
    q, k = rng.standard_normal((4, length, d_k)), rng.standard_normal((4, length, d_k))
    scores = q @ k.swapaxes(-1, -2) / np.sqrt(d_k)
    centred = scores - scores.mean(axis=-1, keepdims=True)
    return float(centred.var() * length / (length - 1))

# %% wrong ch19-variance-d-k
def score_variance(d_k, length=16):  # noqa: F811  (centring's lost 1/length not put back)
    rng = np.random.default_rng(0)
    q = mt.tensor(rng.standard_normal((4, length, d_k)))
    k = mt.tensor(rng.standard_normal((4, length, d_k)))
    v = mt.tensor(rng.standard_normal((4, length, 8)))
    _, weights = F.scaled_dot_product_attention(q, k, v)
    log_w = np.log(weights.numpy())
    return float((log_w - log_w.mean(axis=-1, keepdims=True)).var())
