"""The bug lab: each injected bug is caught by its check, the check passes on the correct code,
and every changed binding comes back exactly, after a normal exit and after an exception."""

import importlib
import inspect
import math
import sys
import types

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import bugs, nn
from minitransformer.data import batches
from minitransformer.nn import models, transformer
from minitransformer.ops import linear as linear_ops

REQUIRED = {
    "no_sqrt_scaling",
    "softmax_no_max_shift",
    "mask_after_softmax",
    "missing_broadcast_reduction",
    "causal_mask_off_by_one",
    "label_smoothing_over_padding",
}


def _snapshot():
    """What every name of every loaded package module (and the fused Linear's backward) is
    bound to, by identity."""
    bindings = {
        (module_name, attribute): id(value)
        for module_name, module in list(sys.modules.items())
        if module is not None and module_name.split(".")[0] == "minitransformer"
        for attribute, value in list(vars(module).items())
    }
    bindings["Linear.backward"] = id(vars(linear_ops.Linear)["backward"])
    return bindings


def _changed(reference):
    """The bindings of ``reference`` that differ now."""
    now = _snapshot()
    return [key for key, value in reference.items() if now.get(key, value) != value]


@pytest.fixture(autouse=True)
def no_bug_survives_a_test():
    """No test here starts or ends with a bug on, or leaves any package binding changed."""
    assert bugs.active() is None
    before = _snapshot()
    yield
    assert bugs.active() is None
    changed = _changed(before)
    assert not changed, f"bindings left changed: {changed}"


# --------------------------------------------------------------------------- the detectors
# Each returns True when its check passes (the code is right) and False when it catches a bug.


def centered_logit_variance(d_k, seed=0):
    """The variance of the attention logits recovered from the weights: log w_ij minus its row
    mean equals s_ij minus its row mean (softmax ignores a shift), for unit-variance q and k."""
    rng = np.random.default_rng(seed)
    q = mt.tensor(rng.standard_normal((4, 16, d_k)))
    k = mt.tensor(rng.standard_normal((4, 16, d_k)))
    v = mt.tensor(rng.standard_normal((4, 16, 8)))
    _, weights = F.scaled_dot_product_attention(q, k, v)
    log_w = np.log(weights.numpy())
    centered = log_w - log_w.mean(axis=-1, keepdims=True)
    return centered.var() * 16 / 15  # undo the (1 - 1/S) that centering costs


def scores_keep_unit_variance():
    return all(centered_logit_variance(d_k) < 2.0 for d_k in (4, 64))


def softmax_is_finite_for_large_logits():
    logits = mt.tensor([[1000.0, 999.0, 990.0], [-5.0, 0.0, 95.0]])
    with np.errstate(over="ignore", invalid="ignore"):  # the bug overflows; say so by the result
        probabilities = F.softmax(logits, axis=-1).numpy()
        log_probabilities = logits.log_softmax(axis=-1).numpy()
    return bool(np.isfinite(probabilities).all() and np.isfinite(log_probabilities).all()
                and np.allclose(probabilities.sum(axis=-1), 1.0))


def attention_rows_sum_to_one():
    mt.manual_seed(0)
    q, k, v = mt.randn(2, 5, 8), mt.randn(2, 5, 8), mt.randn(2, 5, 8)
    _, weights = F.scaled_dot_product_attention(q, k, v, F.causal_mask(5))
    return bool(np.allclose(weights.numpy().sum(axis=-1), 1.0, atol=1e-5))


def decoder_is_causal():
    """Changing target token t must leave the decoder's outputs at positions < t unchanged."""
    mt.manual_seed(0)
    model = nn.Transformer(12, 12, d_model=16, n_heads=2, n_encoder_layers=1,
                           n_decoder_layers=1, d_ff=32, dropout=0.0).double()
    model.eval()
    src = mt.tensor([[3, 4, 5, 6]])
    tgt = np.array([[1, 7, 8, 9, 10]])
    changed = tgt.copy()
    changed[0, 3] = 11
    with mt.no_grad():
        before = model(src, mt.tensor(tgt)).numpy()
        after = model(src, mt.tensor(changed)).numpy()
    return bool(np.allclose(before[:, :3], after[:, :3], atol=1e-10))


def causal_mask_is_the_lower_triangle():
    return bool((F.causal_mask(4).numpy() == np.tril(np.ones((4, 4), bool))).all()
                and (F.causal_mask(2, 4).numpy() == np.tril(np.ones((2, 4), bool), k=2)).all())


def gradcheck_passes(fn, *inputs):
    try:
        return mt.gradcheck(fn, *inputs)
    except mt.GradcheckError:
        return False


def broadcast_add_gradcheck_passes():
    mt.manual_seed(0)
    x, b = mt.randn(4, 3).double(), mt.randn(3).double()
    return gradcheck_passes(lambda x, b: x + b, x, b)


def linear_gradcheck_passes():
    mt.manual_seed(0)
    layer = nn.Linear(3, 2).double()
    try:
        return mt.gradcheck_module(layer, mt.randn(2, 4, 3).double())
    except mt.GradcheckError:
        return False


def smoothed_loss_matches_a_hand_computation():
    """Label-smoothed cross-entropy, padding skipped, computed with NumPy from its definition."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 4, 5))
    targets = np.array([[1, 2, 3, -100], [4, -100, -100, -100]])
    epsilon = 0.1
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    losses = [-(1 - epsilon) * log_p[b, t, targets[b, t]] - epsilon * log_p[b, t].mean()
              for b in range(2) for t in range(4) if targets[b, t] != -100]
    ours = F.cross_entropy(mt.tensor(logits), mt.tensor(targets), ignore_index=-100,
                           label_smoothing=epsilon).item()
    return math.isclose(ours, float(np.mean(losses)), rel_tol=1e-9)


DETECTORS = {
    "no_sqrt_scaling": [scores_keep_unit_variance],
    "softmax_no_max_shift": [softmax_is_finite_for_large_logits],
    "mask_after_softmax": [attention_rows_sum_to_one, decoder_is_causal],
    "missing_broadcast_reduction": [broadcast_add_gradcheck_passes, linear_gradcheck_passes],
    "causal_mask_off_by_one": [causal_mask_is_the_lower_triangle, decoder_is_causal],
    "label_smoothing_over_padding": [smoothed_loss_matches_a_hand_computation],
}

CASES = [pytest.param(name, detector, id=f"{name}-{detector.__name__}")
         for name, detectors in DETECTORS.items() for detector in detectors]


@pytest.mark.parametrize(("name", "detector"), CASES)
def test_the_check_passes_on_correct_code(name, detector):
    assert detector()


@pytest.mark.parametrize(("name", "detector"), CASES)
def test_the_check_catches_the_injected_bug(name, detector):
    with bugs.inject(name):
        assert not detector(), f"{detector.__name__} did not catch {name}"
    assert detector()  # and passes again once the bug is off


def test_every_required_bug_is_in_the_catalogue_and_has_a_detector():
    assert set(bugs.BUGS) == REQUIRED == set(DETECTORS)
    for name, bug in bugs.BUGS.items():
        assert bug.name == name
        assert bug.description and bug.changes and bug.caught_by
        assert name in str(bug)


# --------------------------------------------------------------------------- how far a bug reaches


def test_the_logit_variance_grows_with_d_k_only_under_the_bug():
    assert centered_logit_variance(256) < 2.0
    with bugs.inject("no_sqrt_scaling"):
        small, large = centered_logit_variance(4), centered_logit_variance(64)
    assert 2.0 < small < 8.0 and 40.0 < large < 100.0  # ≈ d_k


@pytest.mark.parametrize("name", ["no_sqrt_scaling", "mask_after_softmax"])
def test_an_attention_bug_reaches_multi_head_attention(name):
    mt.manual_seed(0)
    attention = nn.MultiHeadAttention(16, 2).double()
    x = mt.randn(1, 4, 16).double() * 3.0
    attention(x, x, x, F.causal_mask(4))
    correct = attention.attention_weights.numpy()
    with bugs.inject(name):
        attention(x, x, x, F.causal_mask(4))
        wrong = attention.attention_weights.numpy()
    assert not np.allclose(correct, wrong)


def test_the_missing_max_shift_reaches_attention():
    q = mt.tensor(np.full((1, 2, 4), 12.0, dtype=np.float32))  # scores 576 / √4 = 288 > 88.7
    k = mt.tensor(np.full((1, 3, 4), 12.0, dtype=np.float32))
    v = mt.randn(1, 3, 4)
    assert np.isfinite(F.scaled_dot_product_attention(q, k, v)[1].numpy()).all()
    with bugs.inject("softmax_no_max_shift"), np.errstate(over="ignore", invalid="ignore"):
        _, weights = F.scaled_dot_product_attention(q, k, v, F.causal_mask(2, 3))
    assert np.isnan(weights.numpy()).any()


def test_every_binding_of_causal_mask_is_replaced_while_on():
    correct = F.causal_mask
    walk = importlib.import_module("minitransformer.explain.attention")  # not explain.attention
    holders = [F, transformer, models, batches, walk]
    with bugs.inject("causal_mask_off_by_one"):
        assert all(holder.causal_mask is not correct for holder in holders)
        assert len({id(holder.causal_mask) for holder in holders}) == 1
        collated = mt.data.collate_seq2seq([([7, 8], [7, 8, 9])])  # data.batches sees it too
        assert collated.tgt_mask.numpy()[0, 0, 0, 1]
    assert all(holder.causal_mask is correct for holder in holders)


def test_the_bias_of_nn_linear_gets_the_first_rows_gradient_under_the_bug():
    mt.manual_seed(0)
    layer = nn.Linear(3, 2)
    x = mt.randn(4, 3)
    grad_out = np.arange(8, dtype=np.float32).reshape(4, 2)
    with bugs.inject("missing_broadcast_reduction"):
        layer(x).backward(mt.tensor(grad_out))
    np.testing.assert_allclose(layer.bias.grad, grad_out[0])
    layer.bias.grad = None
    layer(x).backward(mt.tensor(grad_out))
    np.testing.assert_allclose(layer.bias.grad, grad_out.sum(axis=0))


def test_smoothing_over_padding_changes_nothing_without_padding_or_smoothing():
    rng = np.random.default_rng(1)
    logits, targets = mt.tensor(rng.standard_normal((3, 5))), mt.tensor([0, 4, 2])
    correct = [F.cross_entropy(logits, targets, ignore_index=-100, label_smoothing=0.1).item(),
               F.cross_entropy(logits, mt.tensor([0, -100, 2]), ignore_index=-100).item()]
    with bugs.inject("label_smoothing_over_padding"):
        same = [F.cross_entropy(logits, targets, ignore_index=-100, label_smoothing=0.1).item(),
                F.cross_entropy(logits, mt.tensor([0, -100, 2]), ignore_index=-100).item()]
        padded = F.cross_entropy(logits, mt.tensor([0, -100, 2]), ignore_index=-100,
                                 label_smoothing=0.1).item()
    np.testing.assert_allclose(same, correct, rtol=1e-12)
    assert padded != pytest.approx(F.cross_entropy(logits, mt.tensor([0, -100, 2]),
                                                   ignore_index=-100, label_smoothing=0.1).item())


def test_under_smoothing_over_padding_more_padding_changes_the_loss():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((2, 3, 5))
    padded_logits = np.concatenate([logits, rng.standard_normal((2, 2, 5))], axis=1)
    targets = np.array([[1, 2, -100], [3, -100, -100]])
    padded_targets = np.concatenate([targets, np.full((2, 2), -100)], axis=1)

    def losses():
        return [F.cross_entropy(mt.tensor(z), mt.tensor(t), ignore_index=-100,
                                label_smoothing=0.1).item()
                for z, t in ((logits, targets), (padded_logits, padded_targets))]

    short, long = losses()
    assert short == pytest.approx(long, rel=1e-12)  # padding is invisible to the right loss
    with bugs.inject("label_smoothing_over_padding"):
        short, long = losses()
    assert abs(short - long) > 1e-3


def test_smoothing_over_padding_sends_gradient_to_padding_rows():
    rng = np.random.default_rng(2)
    logits = mt.tensor(rng.standard_normal((3, 5)), requires_grad=True)
    targets = mt.tensor([0, -100, 2])
    with bugs.inject("label_smoothing_over_padding"):
        F.cross_entropy(logits, targets, ignore_index=-100, label_smoothing=0.1).backward()
    assert np.abs(logits.grad[1]).max() > 1e-3  # padding row 1 is trained: the bug
    logits.grad = None
    F.cross_entropy(logits, targets, ignore_index=-100, label_smoothing=0.1).backward()
    assert np.abs(logits.grad[1]).max() == 0.0


# --------------------------------------------------------------------------- switching on and off


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_binding_comes_back_after_a_normal_exit(name):
    clean = _snapshot()
    with bugs.inject(name) as bug:
        assert bugs.active() == name and bug is bugs.BUGS[name]
        assert _changed(clean)  # something really was changed
    assert bugs.active() is None
    assert not _changed(clean)


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_binding_comes_back_after_an_exception(name):
    clean = _snapshot()
    with pytest.raises(ZeroDivisionError):
        with bugs.inject(name):
            assert _changed(clean)
            1 / 0  # noqa: B018 - the exception is the point
    assert bugs.active() is None
    assert not _changed(clean)


def test_a_module_imported_while_the_bug_is_on_is_restored_too():
    correct = F.causal_mask
    late = types.ModuleType("late_user_module")
    sys.modules["late_user_module"] = late
    try:
        with bugs.inject("causal_mask_off_by_one"):
            late.causal_mask = F.causal_mask  # as `from ... import causal_mask` would bind it
            assert late.causal_mask is not correct
        assert late.causal_mask is correct
    finally:
        del sys.modules["late_user_module"]


def test_nesting_two_bugs_is_refused_and_the_outer_one_stays_intact():
    clean = _snapshot()
    with bugs.inject("no_sqrt_scaling"):
        inside = _snapshot()
        for second in ("causal_mask_off_by_one", "no_sqrt_scaling"):
            with pytest.raises(RuntimeError, match="already on"):
                with bugs.inject(second):
                    pass
            assert bugs.active() == "no_sqrt_scaling"
            assert not _changed(inside)
    assert not _changed(clean)


def test_an_unknown_bug_is_refused_with_the_valid_names():
    with pytest.raises(ValueError, match="unknown bug 'no_such_bug'") as error:
        bugs.inject("no_such_bug")
    assert all(name in str(error.value) for name in REQUIRED)
    assert bugs.active() is None


def test_an_injection_cannot_be_used_twice():
    injection = bugs.inject("softmax_no_max_shift")
    with injection:
        pass
    with pytest.raises(RuntimeError, match="already used"):
        with injection:
            pass
    assert bugs.active() is None


# --------------------------------------------------------------------------- mystery bugs

# The bug each seed stands for, pinned: a seed must mean the same bug on every machine and every
# Python version (a choice made with hash() of a string would change from run to run).
SEED_TABLE = {
    0: "no_sqrt_scaling",
    1: "missing_broadcast_reduction",
    2: "causal_mask_off_by_one",
    3: "mask_after_softmax",
    4: "softmax_no_max_shift",
    5: "label_smoothing_over_padding",
    6: "no_sqrt_scaling",
    7: "causal_mask_off_by_one",
    8: "softmax_no_max_shift",
    9: "missing_broadcast_reduction",
}
ALL_DETECTORS = list(dict.fromkeys(d for ds in DETECTORS.values() for d in ds))
SEEDS = [pytest.param(seed, id=f"seed{seed}") for seed in range(len(REQUIRED))]


def _caught():
    """The names of the detectors that catch something in the code as it is now."""
    with np.errstate(over="ignore", invalid="ignore"):
        return {detector.__name__ for detector in ALL_DETECTORS if not detector()}


def _secrets(name):
    bug = bugs.BUGS[name]
    return [bug.name, bug.description, bug.caught_by]


def _assert_hidden(text, name):
    for secret in _secrets(name):
        assert secret not in text, f"{secret!r} visible in {text!r}"


def _bound(key):
    """The function a key of ``_snapshot`` names, as it is bound now."""
    if key == "Linear.backward":
        return vars(linear_ops.Linear)["backward"].__func__
    module_name, attribute = key
    return getattr(sys.modules[module_name], attribute)


def _revealed(seed):
    with bugs.inject_mystery(seed):
        pass
    return bugs.reveal().name


def test_a_seed_means_the_same_bug_every_time():
    assert {seed: _revealed(seed) for seed in SEED_TABLE} == SEED_TABLE
    assert _revealed(7) == _revealed(7) == SEED_TABLE[7]
    assert _revealed(np.int64(7)) == SEED_TABLE[7]


def test_each_round_of_seeds_holds_every_bug_once():
    n = len(REQUIRED)
    for round_number in range(5):
        names = [_revealed(seed) for seed in range(round_number * n, (round_number + 1) * n)]
        assert sorted(names) == sorted(REQUIRED), (round_number, names)
    rounds = {tuple(_revealed(seed) for seed in range(r * n, (r + 1) * n)) for r in range(5)}
    assert len(rounds) > 1  # the order changes: seed % n does not give the bug away
    assert _revealed(-1) in REQUIRED  # any int is a seed


@pytest.mark.parametrize("seed", SEEDS)
def test_the_mystery_bug_acts_like_the_named_bug_inside_the_block_only(seed):
    name = SEED_TABLE[seed]
    with bugs.inject(name):
        expected = _caught()
    assert expected >= {detector.__name__ for detector in DETECTORS[name]}
    clean = _snapshot()
    with bugs.inject_mystery(seed) as mystery:
        assert mystery.is_on and bugs.active() == "mystery"
        assert _caught() == expected
    assert not mystery.is_on and bugs.active() is None
    assert _caught() == set() and not _changed(clean)
    assert bugs.reveal() is bugs.BUGS[name]  # still known after the block


@pytest.mark.parametrize("seed", SEEDS)
def test_a_plain_call_stays_on_until_clear(seed):
    name = SEED_TABLE[seed]
    clean = _snapshot()
    mystery = bugs.inject_mystery(seed)
    try:
        assert bugs.active() == "mystery" and _changed(clean)
        assert {detector.__name__ for detector in DETECTORS[name]} <= _caught()
    finally:
        bugs.clear()
    assert not mystery.is_on and bugs.active() is None and not _changed(clean)
    assert _caught() == set()
    assert bugs.reveal().name == name  # the last mystery, though it is off
    bugs.clear()  # nothing on: nothing to do


@pytest.mark.parametrize("seed", SEEDS)
def test_reveal_names_the_bug_and_switches_it_off(seed):
    clean = _snapshot()
    mystery = bugs.inject_mystery(seed)
    try:
        bug = bugs.reveal()
        off = not mystery.is_on and bugs.active() is None and not _changed(clean)
    finally:
        bugs.clear()  # so that a failure here leaves no bug on for the next test
    assert bug is bugs.BUGS[SEED_TABLE[seed]]
    assert off, "reveal left the mystery bug on"
    assert bugs.reveal() is bug  # a second reveal says the same


@pytest.mark.parametrize("seed", SEEDS)
def test_nothing_a_student_sees_names_the_mystery_bug(seed):
    name = SEED_TABLE[seed]
    originals = _snapshot()
    named_refusals = []
    with bugs.inject_mystery(seed) as mystery:
        seen = [repr(mystery), str(mystery), repr(vars(mystery)), str(bugs.active())]
        with pytest.raises(RuntimeError) as nested:
            bugs.inject_mystery(seed + 1)
        seen.append(str(nested.value))
        for other in sorted(REQUIRED):
            with pytest.raises(RuntimeError, match="already on") as refused:
                with bugs.inject(other):
                    pass
            named_refusals.append(str(refused.value).replace(repr(other), "NAME"))
        seen.extend(named_refusals)
        # the changed functions look like the correct ones: same name, docstring, signature
        changed = {key: _bound(key) for key in _changed(originals)}
        for value in changed.values():
            seen += [repr(value), value.__name__, value.__qualname__, str(value.__doc__),
                     str(inspect.signature(value))]
        assert changed and bugs.active() == "mystery"
    for key, value in changed.items():
        correct = _bound(key)
        assert value is not correct
        assert (value.__name__, value.__doc__) == (correct.__name__, correct.__doc__)
        assert inspect.signature(value) == inspect.signature(correct)
    assert len(set(named_refusals)) == 1  # inject(name) cannot probe which bug is on
    for text in seen:
        _assert_hidden(text, name)


def test_a_second_bug_is_refused_and_the_mystery_stays_intact():
    with bugs.inject_mystery(3):
        inside = _snapshot()
        with pytest.raises(RuntimeError, match="a mystery bug is already on"):
            bugs.inject_mystery(4)
        with pytest.raises(RuntimeError, match="a mystery bug is already on"):
            with bugs.inject("no_sqrt_scaling"):
                pass
        assert bugs.active() == "mystery" and not _changed(inside)
    with bugs.inject("no_sqrt_scaling"):
        with pytest.raises(RuntimeError, match="'no_sqrt_scaling' is already on"):
            bugs.inject_mystery(3)
        assert bugs.active() == "no_sqrt_scaling"


def test_the_mystery_goes_off_after_an_exception_and_the_handle_is_single_use():
    clean = _snapshot()
    with pytest.raises(ZeroDivisionError):
        with bugs.inject_mystery(2) as mystery:
            1 / 0  # noqa: B018 - the exception is the point
    assert bugs.active() is None and not _changed(clean)
    with pytest.raises(RuntimeError, match="off already"):
        with mystery:
            pass
    assert bugs.active() is None


def test_clear_also_switches_off_a_bug_injected_by_name():
    clean = _snapshot()
    with bugs.inject("causal_mask_off_by_one"):
        bugs.clear()
        assert bugs.active() is None and not _changed(clean)
    assert bugs.active() is None and not _changed(clean)


def test_reveal_leaves_a_bug_injected_by_name_on():
    _revealed(5)
    with bugs.inject("no_sqrt_scaling"):
        assert bugs.reveal().name == SEED_TABLE[5]
        assert bugs.active() == "no_sqrt_scaling"


def test_reveal_without_a_mystery_bug_is_refused(monkeypatch):
    monkeypatch.setitem(bugs._state, "mystery_seed", None)  # as in a fresh Python process
    with pytest.raises(RuntimeError, match="no mystery bug was switched on"):
        bugs.reveal()
    with bugs.inject("no_sqrt_scaling"):
        with pytest.raises(RuntimeError, match="no mystery bug"):
            bugs.reveal()


@pytest.mark.parametrize("seed", [7.0, "7", True, None])
def test_a_seed_must_be_an_int(seed):
    with pytest.raises(TypeError, match="seed must be an int"):
        bugs.inject_mystery(seed)
    assert bugs.active() is None
