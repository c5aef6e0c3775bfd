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
impossible to say which check caught which).

Mystery bugs, for class. ``inject_mystery(seed)`` switches on one bug chosen from ``seed``
without saying which, and ``reveal()`` names it afterwards::

    mystery = bugs.inject_mystery(7)   # top of a student's notebook: on until reveal() or clear()
    bugs.active()                      # "mystery"
    ...                                # the student runs checks and names the bug
    print(bugs.reveal())               # the Bug record; reveal also switches the bug off

    with bugs.inject_mystery(7):       # or only for a block
        ...

The same seed gives the same bug on every machine (the choice hashes the seed with SHA-256), and
each run of ``len(BUGS)`` consecutive seeds from a multiple of it (0-5, 6-11, ...) holds every bug
once: six groups with seeds 0 to 5 get six different bugs. The changed functions keep the names,
docstrings and signatures of the correct ones, so printing them or ``help()`` gives nothing
away. This is a game for students who play fair, not a lock: anyone who reads this file can work
out the bug from the seed, and a traceback through the wrong code shows its source.

The lab's global state is ``_state`` below: the bug that is on and the seed of the last mystery.
"""

import functools
import hashlib
import math
import numbers
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

__all__ = ["BUGS", "Bug", "Mystery", "active", "clear", "inject", "inject_mystery", "reveal"]

PACKAGE = "minitransformer"
MYSTERY = "mystery"  # what active() says while a mystery bug is on

# "active": the name active() returns (a bug's, MYSTERY, or None); "switch": the _Switch that is
# on; "mystery_seed": the seed of the last inject_mystery, kept after it is off, for reveal()
_state = {"active": None, "switch": None, "mystery_seed": None}


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


def _disguised(wrong, original):
    """``wrong`` under ``original``'s name, docstring and signature (``functools.wraps``), so that
    printing the changed function or asking ``help()`` about it shows the correct one."""
    if isinstance(wrong, staticmethod):
        return staticmethod(_disguised(wrong.__func__, original.__func__))

    @functools.wraps(original)
    def disguised(*args, **kwargs):
        return wrong(*args, **kwargs)

    return disguised


class _Switch:
    """The bindings one bug changes: ``on()`` changes them, ``off()`` puts them back (twice is
    harmless). With ``disguise`` the wrong versions wear the correct ones' names."""

    def __init__(self, name, disguise=False):
        self._patches = _patches(name)
        self._disguise = disguise
        self._applied = []  # (owner, attribute, original), in the order they were changed
        self._wrong_to_correct = {}

    def on(self):
        applied = self._applied
        try:
            for patch in self._patches:
                if patch[0] == "function":
                    _, original, wrong = patch
                    wrong = _disguised(wrong, original) if self._disguise else wrong
                    self._wrong_to_correct[id(wrong)] = (wrong, original)
                    for module, attribute in _bindings(original):
                        applied.append((module, attribute, original))
                        setattr(module, attribute, wrong)
                else:
                    _, owner, attribute, wrong = patch
                    original = _raw_attribute(owner, attribute)
                    wrong = _disguised(wrong, original) if self._disguise else wrong
                    applied.append((owner, attribute, original))
                    setattr(owner, attribute, wrong)
        except BaseException:
            self.off()
            raise

    def off(self):
        applied, self._applied = self._applied, []
        _restore(applied)
        _sweep(self._wrong_to_correct)


def _refuse_a_second_bug(caller):
    """RuntimeError if a bug is on already. A mystery is called a mystery, whoever asks."""
    if _state["active"] is None:
        return
    what = ("a mystery bug" if _state["active"] == MYSTERY
            else f"the bug {_state['active']!r}")
    raise RuntimeError(
        f"{caller}: {what} is already on; inject one bug at a time (leave the first `with` "
        "block, or call bugs.clear(), before the next)")


def _switch_on(name, label, disguise=False):
    """Switch bug ``name`` on; active() will say ``label``."""
    switch = _Switch(name, disguise)
    switch.on()
    _state["switch"], _state["active"] = switch, label
    return switch


def _switch_off(switch):
    """Switch ``switch`` off; if it was the one on, no bug is on afterwards."""
    try:
        switch.off()
    finally:
        if _state["switch"] is switch:
            _state["switch"] = _state["active"] = None


class _Injection:
    """The context manager ``inject`` returns; single use."""

    def __init__(self, name):
        self.name = name
        self._switch = None

    def __enter__(self):
        _refuse_a_second_bug(f"bugs.inject({self.name!r})")
        if self._switch is not None:
            raise RuntimeError(f"bugs.inject({self.name!r}): this injection was already used; "
                               "call bugs.inject again")
        self._switch = _switch_on(self.name, self.name)
        return BUGS[self.name]

    def __exit__(self, *exc_info):
        _switch_off(self._switch)
        return False  # an exception inside the block propagates


def inject(name):
    """Context manager: ``with inject(name):`` runs its block with bug ``name`` switched on.

    ``name`` must be a key of ``BUGS`` (a ValueError lists them otherwise). The block receives the
    ``Bug`` record (``with inject(name) as bug: print(bug.caught_by)``). On exit, normal or by an
    exception, every changed binding gets its original back. A second ``inject`` (or
    ``inject_mystery``) inside the block raises RuntimeError.
    """
    if name not in BUGS:
        raise ValueError(f"bugs.inject: unknown bug {name!r}; the bugs are: "
                         + ", ".join(sorted(BUGS)))
    return _Injection(name)


# --------------------------------------------------------------------------- mystery bugs


def _mystery_name(seed):
    """The bug seed ``seed`` stands for. Seeds go in rounds of n = len(BUGS): round r = seed // n
    orders the bugs by SHA-256 of "r/name" (the same everywhere, unlike hash()), and seed % n
    picks one, so every round holds each bug once and its order changes from round to round."""
    names = sorted(BUGS)
    round_number, position = divmod(seed, len(names))
    order = sorted(names, key=lambda name: hashlib.sha256(
        f"{round_number}/{name}".encode()).hexdigest())
    return order[position]


class Mystery:
    """The handle ``inject_mystery`` returns. It knows its seed and whether its bug is on, not
    which bug that is: ``bugs.reveal()`` says. ``with`` it to switch the bug off when the block
    ends (also through an exception)."""

    def __init__(self, seed, switch):
        self.seed = seed
        self._switch = switch

    @property
    def is_on(self):
        return _state["switch"] is self._switch

    def __repr__(self):
        return f"<mystery bug from seed {self.seed}: {'on' if self.is_on else 'off'}>"

    def __enter__(self):
        if not self.is_on:
            raise RuntimeError(
                f"bugs.inject_mystery({self.seed}): this mystery bug is off already (its `with` "
                "block ended, or bugs.clear() or bugs.reveal() switched it off); call "
                "bugs.inject_mystery again")
        return self

    def __exit__(self, *exc_info):
        _switch_off(self._switch)
        return False  # an exception inside the block propagates


def inject_mystery(seed):
    """Switch on one bug chosen from ``seed`` (an int) without naming it; return a ``Mystery``.

    The bug is on from this call: as a plain call (the top of a student's notebook) it stays on
    until ``bugs.reveal()`` or ``bugs.clear()``; as ``with bugs.inject_mystery(seed):`` it goes
    off when the block ends. Meanwhile ``active()`` returns ``"mystery"``, and neither the handle,
    nor an error, nor the changed functions' names and docstrings name the bug. The same seed
    always gives the same bug; seeds 0 to len(BUGS) - 1 give every bug once (see
    ``_mystery_name``). With a bug on already it raises RuntimeError, and a seed that is not an
    int raises TypeError.

    Not a lock: reading this file tells anyone how to get the bug from the seed.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"bugs.inject_mystery: seed must be an int, got {type(seed).__name__} "
                        f"{seed!r}")
    seed = int(seed)
    _refuse_a_second_bug(f"bugs.inject_mystery({seed})")
    switch = _switch_on(_mystery_name(seed), MYSTERY, disguise=True)
    _state["mystery_seed"] = seed
    return Mystery(seed, switch)


def reveal():
    """The ``Bug`` record of the last mystery bug: the one on now, or the last one switched on
    in this Python process. If it is still on, reveal switches it off first: the game is over
    (``with bugs.inject(bugs.reveal().name):`` turns it back on by name). ``print(bugs.reveal())``
    shows its name, what it changes and which check catches it.

    RuntimeError if ``inject_mystery`` was never called in this process.
    """
    seed = _state["mystery_seed"]
    if seed is None:
        raise RuntimeError(
            "bugs.reveal: no mystery bug was switched on in this session; "
            "bugs.inject_mystery(seed) switches one on (a bug injected by name is named by "
            "bugs.active())")
    if _state["active"] == MYSTERY:
        clear()
    return BUGS[_mystery_name(seed)]


def clear():
    """Switch off the bug that is on, mystery or named, and restore every binding; no bug on:
    nothing to do. For a mystery switched on by a plain call, or a notebook left in doubt."""
    if _state["switch"] is not None:
        _switch_off(_state["switch"])


def active():
    """The name of the bug switched on now, ``"mystery"`` for a mystery bug, or None."""
    return _state["active"]
