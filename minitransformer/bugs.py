"""The bug lab: switch on one classic Transformer bug at a time and watch which check catches it.

Usage::

    from minitransformer import bugs

    with bugs.inject("no_sqrt_scaling"):
        out, weights = F.scaled_dot_product_attention(q, k, v)   # scores no longer divided by √d_k
    bugs.active()             # None: everything is correct again
    bugs.BUGS["no_sqrt_scaling"].caught_by

Each bug is a small, realistic mistake in one function of the package. ``inject(name)`` swaps the
correct function for the wrong one while the ``with`` block runs, and puts the correct one back on
exit, also when the block raises. Teachers use it to show why each test exists: a bug nobody's
check catches is a bug that ships.

==============================  ======================================  =======================
bug                             what goes wrong                         caught by
==============================  ======================================  =======================
no_sqrt_scaling                 scores Q Kᵀ not divided by √d_k         score variance ≈ d_k
softmax_no_max_shift            e^x without subtracting max(x) first    large logits: NaN
mask_after_softmax              mask applied to weights after softmax   rows sum to 1; causality
missing_broadcast_reduction     broadcast gradient not summed back      gradcheck
causal_mask_off_by_one          position i may see position i + 1       causality test
label_smoothing_over_padding    padding pays the smoothing term         the loss by hand
==============================  ======================================  =======================

How the swap works. Python looks a global name up at call time in the namespace of the module
that makes the call. A function imported with ``from x import y`` therefore lives under several
names: ``causal_mask`` is ``functional.causal_mask``, but also ``nn.transformer.causal_mask``,
``nn.models.causal_mask`` and ``data.batches.causal_mask``. ``inject`` rebinds *every* name in the
package's loaded modules that holds the original function, so the whole package sees the bug.
On exit it restores each of them, and then sweeps every loaded module for a name still bound to
a wrong version (say, a module first imported inside the block) and restores that too.

Code that copied a function into its own namespace *before* the block (``from
minitransformer.functional import causal_mask`` in your script) keeps the correct one; call
through the module (``F.causal_mask``) to see the bug.

Only one bug at a time: nesting ``inject`` raises RuntimeError (two bugs at once make it
impossible to say which check caught which). The lab's one piece of global state is the name of
the active bug.
"""

import math
import sys
from dataclasses import dataclass

from minitransformer import backend, functional
from minitransformer.errors import ShapeError
from minitransformer.ops import broadcast as broadcast_ops
from minitransformer.ops import cross_entropy as cross_entropy_ops
from minitransformer.ops import linear as linear_ops
from minitransformer.ops import softmax as softmax_ops
from minitransformer.ops.dropout import dropout
from minitransformer.ops.elementwise import where
from minitransformer.ops.matmul import matmul
from minitransformer.ops.reduction import mean
from minitransformer.ops.shape import swapaxes
from minitransformer.tensor import Tensor

__all__ = ["BUGS", "Bug", "active", "inject"]

PACKAGE = "minitransformer"

_state = {"active": None}


@dataclass(frozen=True)
class Bug:
    """One injectable bug: what it is, which code it changes, and which check catches it."""

    name: str
    description: str
    changes: str
    caught_by: str

    def __str__(self):
        return (f"{self.name}: {self.description}\n  changes: {self.changes}\n"
                f"  caught by: {self.caught_by}")


# --------------------------------------------------------------------------- the wrong versions
# Each one has the signature of the function it replaces; the line that is wrong says "BUG".


def _attention_without_scaling(q, k, v, mask=None, dropout_p=0.0, training=False):
    """scaled_dot_product_attention, but softmax(Q Kᵀ) V: the 1/√d_k factor is forgotten.

    With unit-variance q and k, a score is a sum of d_k products, so its variance is d_k: at
    d_k = 64 the logits spread over ±20, softmax saturates to one-hot, and its gradient vanishes.
    """
    scores = matmul(q, swapaxes(k, -1, -2))  # (..., T, S). BUG: no * (1 / √d_k)
    if mask is not None:
        mask = functional.as_mask(mask, "scaled_dot_product_attention")
        scores = where(mask, scores, float("-inf"))
    weights = softmax_ops.softmax(scores, axis=-1)  # (..., T, S)
    return matmul(dropout(weights, dropout_p, training), v), weights


def _attention_mask_after_softmax(q, k, v, mask=None, dropout_p=0.0, training=False):
    """scaled_dot_product_attention, but the mask zeroes the weights *after* softmax.

    softmax has already shared the probability among every key, masked ones included: the
    surviving weights sum to less than 1, and since the normaliser Σ_j e^(s_j) includes the
    hidden keys, what a query receives still depends on keys it must not see (the future leaks
    into the past through the denominator).
    """
    scores = matmul(q, swapaxes(k, -1, -2)) * (1.0 / math.sqrt(q.shape[-1]))  # (..., T, S)
    weights = softmax_ops.softmax(scores, axis=-1)  # over every key, masked ones too
    if mask is not None:
        mask = functional.as_mask(mask, "scaled_dot_product_attention")
        weights = where(mask, weights, 0.0)  # BUG: too late, the hidden keys took their share
    return matmul(dropout(weights, dropout_p, training), v), weights


def _no_max(x, axis):
    """Softmax's shift, forgotten: the maximum to subtract is 0 instead of max(x) along ``axis``.

    Mathematically softmax is unchanged, but e^x overflows float32 once x > 88.7 (float64:
    709.8): e^x = inf, and inf / inf = NaN.
    """
    return 0  # BUG: should be max(x, axis) (0 only for an all -inf slice)


def _unshifted(x, axis):
    """The same bug where softmax shifts through ``_shifted``: x itself instead of x - max(x)."""
    return x - 0  # BUG: should be x - max(x, axis); "- 0" keeps a new array, as callers expect


def _sum_to_one_copy(grad, shape):
    """sum_to, but it keeps the gradient of the *first* copy instead of summing all copies.

    The result has the right shape (so the engine's shape check passes) and the wrong values:
    a bias added to every row of a batch gets the gradient of row 0 only.
    """
    if tuple(grad.shape) == tuple(shape):
        return grad
    lead = grad.ndim - len(shape)
    first_copy = (0,) * lead + tuple(
        slice(0, 1) if size == 1 and grad.shape[lead + i] != 1 else slice(None)
        for i, size in enumerate(shape)
    )
    return grad[first_copy]  # BUG: should be grad.sum(axis=broadcast axes)


_correct_linear_backward = linear_ops.Linear.backward


def _linear_backward_one_row(ctx, grad_out):
    """The fused Linear op's backward, but dL/db is the gradient of the first row only.

    The bias b is broadcast over the N = B·T rows of x W + b, so dL/db = Σ_rows G; here the sum
    is forgotten and row 0 stands in for all of them.
    """
    grad_x, grad_w, grad_b = _correct_linear_backward(ctx, grad_out)
    if grad_b is not None:
        grad_b = grad_out.reshape(-1, grad_b.shape[0])[0]  # BUG: should be .sum(axis=0)
    return grad_x, grad_w, grad_b


def _causal_mask_off_by_one(size, key_size=None):
    """causal_mask, but the diagonal is one too high: query i may attend keys 0..i+1.

    During training with teacher forcing position i then sees the very token it must predict:
    the loss drops fast, and generation (where that token does not exist yet) fails.
    """
    key_size = size if key_size is None else key_size
    if size > key_size:
        raise ShapeError(
            f"causal_mask: {size} queries cannot be the last of {key_size} keys")
    xp = backend.current_module()
    allowed = xp.tril(xp.ones((size, key_size), dtype=bool), k=key_size - size + 1)  # BUG: + 1
    return Tensor._from_array(allowed)


_correct_cross_entropy = cross_entropy_ops.cross_entropy


def _cross_entropy_smoothing_over_padding(logits, targets, ignore_index=None,
                                          label_smoothing=0.0, reduction="mean"):
    """cross_entropy whose label smoothing also counts padding positions.

    The smoothing term -ε · (1/C) Σ_c log p_c is added for every position, padding included
    (the mask was applied to the -log p_target term only), and the mean divides by all
    positions. Without smoothing, or without ``ignore_index``, it is the correct function.
    """
    if not label_smoothing or ignore_index is None:
        return _correct_cross_entropy(logits, targets, ignore_index, label_smoothing, reduction)
    rows = _correct_cross_entropy(logits, targets, ignore_index, label_smoothing, "none")
    targets = targets if isinstance(targets, Tensor) else Tensor(targets)
    padding = Tensor._from_array(targets.data == ignore_index)  # (...) bool
    smoothing = mean(softmax_ops.log_softmax(logits, axis=-1), axis=-1) * -label_smoothing
    rows = rows + where(padding, smoothing, 0.0)  # BUG: padding pays the smoothing term
    if reduction == "none":
        return rows
    total = rows.sum()
    return total / rows.size if reduction == "mean" else total  # BUG: padding counted in mean


# --------------------------------------------------------------------------- the catalogue

BUGS = {
    bug.name: bug
    for bug in (
        Bug("no_sqrt_scaling",
            "attention scores Q Kᵀ are not divided by √d_k, so their variance grows with d_k "
            "and softmax saturates",
            "functional.scaled_dot_product_attention (and every module that imported it)",
            "a statistics check: with unit-variance q and k the score variance must stay near 1 "
            "for any d_k; with the bug it is ≈ d_k"),
        Bug("softmax_no_max_shift",
            "softmax and log_softmax compute e^x without subtracting max(x) first, so large "
            "logits overflow",
            "the maximum that ops/softmax.py subtracts (_finite_max, or _shifted where the "
            "softmax Functions shift through it): used by every softmax forward, attention's "
            "included",
            "a numerics test: softmax of logits around 1000 must be finite and sum to 1; with "
            "the bug it is NaN (gradcheck on small inputs passes)"),
        Bug("mask_after_softmax",
            "the mask is applied to the attention weights after softmax instead of to the "
            "scores before it",
            "functional.scaled_dot_product_attention (and every module that imported it)",
            "the rows of the attention weights must sum to 1 (they do not), and a causality "
            "test: changing a future token must not change earlier outputs (it does)"),
        Bug("missing_broadcast_reduction",
            "the gradient of a broadcast operand is not summed over its copies: a bias gets the "
            "gradient of the first row only",
            "ops.broadcast.sum_to (backward of BroadcastTo) and the bias gradient of the fused "
            "ops.linear.Linear backward",
            "gradcheck: analytic and numerical gradients of a broadcast add or of nn.Linear "
            "disagree (the shapes are right, so the engine's shape check passes)"),
        Bug("causal_mask_off_by_one",
            "the causal mask lets position i attend position i + 1, the token it must predict",
            "functional.causal_mask (and every module that imported it)",
            "the mask test (causal_mask(T) == lower triangle) and a causality test on the "
            "decoder; in training the loss looks as good as the correct model's or better, and "
            "greedy decoding fails"),
        Bug("label_smoothing_over_padding",
            "label-smoothed cross-entropy charges padding positions the smoothing term and "
            "counts them in the mean",
            "ops.cross_entropy.cross_entropy (and functional.cross_entropy)",
            "the loss compared with a hand computation that skips padding: they differ (and a "
            "batch's loss changes when only its padding grows)"),
    )
}


def _patches(name):
    """The changes bug ``name`` makes: ("function", original, wrong) replaces every binding of
    ``original`` in the package; ("attribute", owner, attribute, wrong) sets one attribute."""
    if name == "no_sqrt_scaling":
        return [("function", functional.scaled_dot_product_attention,
                 _attention_without_scaling)]
    if name == "softmax_no_max_shift":
        if hasattr(softmax_ops, "_finite_max"):  # every softmax Function shifts through it
            return [("function", softmax_ops._finite_max, _no_max)]
        return [("function", softmax_ops._shifted, _unshifted)]
    if name == "mask_after_softmax":
        return [("function", functional.scaled_dot_product_attention,
                 _attention_mask_after_softmax)]
    if name == "missing_broadcast_reduction":
        return [("function", broadcast_ops.sum_to, _sum_to_one_copy),
                ("attribute", linear_ops.Linear, "backward",
                 staticmethod(_linear_backward_one_row))]
    if name == "causal_mask_off_by_one":
        return [("function", functional.causal_mask, _causal_mask_off_by_one)]
    if name == "label_smoothing_over_padding":
        return [("function", cross_entropy_ops.cross_entropy,
                 _cross_entropy_smoothing_over_padding)]
    raise AssertionError(f"bugs: no patches written for {name!r}")  # BUGS and this list differ


# --------------------------------------------------------------------------- switching


def _package_modules():
    """The package's loaded modules, this one excepted (it keeps the correct versions to call)."""
    return [module for module_name, module in list(sys.modules.items())
            if module is not None and module_name != __name__
            and (module_name == PACKAGE or module_name.startswith(PACKAGE + "."))]


def _bindings(original):
    """Every (module, name) in the package's loaded modules whose value is ``original``."""
    return [(module, name) for module in _package_modules()
            for name, value in list(vars(module).items()) if value is original]


def _raw_attribute(owner, attribute):
    """The attribute as stored (a staticmethod stays a staticmethod), so it comes back exact."""
    return vars(owner)[attribute] if isinstance(owner, type) else getattr(owner, attribute)


def _restore(applied):
    """Undo ``applied`` (owner, attribute, original) in reverse order."""
    for owner, attribute, original in reversed(applied):
        setattr(owner, attribute, original)


def _sweep(wrong_to_correct):
    """Rebind, in every loaded module, any name still holding a wrong version (e.g. in a module
    first imported while the bug was on) to the correct function. This module is skipped: its
    names of the wrong versions must stay."""
    for module_name, module in list(sys.modules.items()):
        if module_name == __name__:
            continue
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for attribute, value in list(namespace.items()):
            correct = wrong_to_correct.get(id(value))
            if correct is not None and correct[0] is value:
                namespace[attribute] = correct[1]


class _Injection:
    """The context manager ``inject`` returns; single use."""

    def __init__(self, name):
        self.name = name
        self._applied = None
        self._wrong_to_correct = {}

    def __enter__(self):
        if _state["active"] is not None:
            raise RuntimeError(
                f"bugs.inject({self.name!r}): the bug {_state['active']!r} is already on; "
                "inject one bug at a time (leave the first `with` block before the next)")
        if self._applied is not None:
            raise RuntimeError(f"bugs.inject({self.name!r}): this injection was already used; "
                               "call bugs.inject again")
        self._applied = applied = []
        try:
            for patch in _patches(self.name):
                if patch[0] == "function":
                    _, original, wrong = patch
                    self._wrong_to_correct[id(wrong)] = (wrong, original)
                    for module, attribute in _bindings(original):
                        applied.append((module, attribute, original))
                        setattr(module, attribute, wrong)
                else:
                    _, owner, attribute, wrong = patch
                    applied.append((owner, attribute, _raw_attribute(owner, attribute)))
                    setattr(owner, attribute, wrong)
        except BaseException:
            _restore(applied)
            raise
        _state["active"] = self.name
        return BUGS[self.name]

    def __exit__(self, *exc_info):
        try:
            _restore(self._applied)
            _sweep(self._wrong_to_correct)
        finally:
            _state["active"] = None
        return False  # an exception inside the block propagates


def inject(name):
    """Context manager: ``with inject(name):`` runs its block with bug ``name`` switched on.

    ``name`` must be a key of ``BUGS`` (a ValueError lists them otherwise). The block receives the
    ``Bug`` record (``with inject(name) as bug: print(bug.caught_by)``). On exit, normal or by an
    exception, every changed binding gets its original back. A second ``inject`` inside the
    block raises RuntimeError.
    """
    if name not in BUGS:
        raise ValueError(f"bugs.inject: unknown bug {name!r}; the bugs are: "
                         + ", ".join(sorted(BUGS)))
    return _Injection(name)


def active():
    """The name of the bug switched on now, or None."""
    return _state["active"]
