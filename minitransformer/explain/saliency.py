"""Gradient saliency of a whole model's output with respect to its input tokens:

    result = explain.saliency(classifier, ids, target=1)   # ids (B, T); class 1's logit
    result.norm                # (B, T): ‖∂y/∂e_t‖, e_t the embedding row of token t
    result.grad_times_input    # (B, T): Σ_d (∂y/∂e_t)_d (e_t)_d
    explain.gradient_times_input(classifier, ids)   # (B, T): for the predicted class, against
                                                    # the mean logit (what moves its probability)
"""

import dataclasses
import operator

from minitransformer import backend
from minitransformer.autograd import no_grad
from minitransformer.data.tokenizer import PAD_ID
from minitransformer.explain.attention import ExplainMismatchError
from minitransformer.functional import padding_mask
from minitransformer.nn.models import CausalLanguageModel, MaskedLanguageModel, SequenceClassifier
from minitransformer.nn.transformer import Transformer
from minitransformer.tensor import Tensor

__all__ = ["Saliency", "gradient_times_input", "saliency"]


@dataclasses.dataclass
class Saliency:
    """How much one output logit depends on each input token, from its gradient.

    With e_t the embedding row of token t (what the embedding table looks up, before a
    Transformer's √d_model scaling and before the position code is added) and y the chosen logit
    of a row:

        gradient[t]          = ∂y/∂e_t                     (D,)  the direction that raises y
        norm[t]              = ‖∂y/∂e_t‖₂                        how sensitive y is to token t
        grad_times_input[t]  = Σ_d (∂y/∂e_t)_d · (e_t)_d          first-order change of y when
                                                                 e_t is replaced by zero

    Attributes (NumPy arrays, B rows):
        ids: the token ids (B, T) whose embeddings were differentiated.
        embeddings: e, (B, T, D).
        gradient: ∂y/∂e, (B, T, D).
        norm: (B, T).
        grad_times_input: (B, T).
        logit: y for each row, (B,).
        target: the output index y reads in each row, (B,).
        position: the output position y reads (None for a SequenceClassifier).
    """

    ids: object
    embeddings: object
    gradient: object
    norm: object
    grad_times_input: object
    logit: object
    target: object
    position: object = None


def saliency(model, ids, target, position=None, tgt=None, wrt="src", pad_id=PAD_ID):
    """Gradient saliency of one logit per row with respect to the input token embeddings.

    Supported models and what ``target`` / ``position`` select:

    - ``nn.SequenceClassifier``: logits (B, C); ``target`` is the class; ``position`` must be
      None.
    - ``nn.CausalLanguageModel``, ``nn.MaskedLanguageModel``: logits (B, T, V); ``target`` is
      the vocabulary id and ``position`` the output position (default -1, the last).
    - ``nn.Transformer``: logits (B, T, V) of ``model(ids, tgt)``; ``ids`` is the source (B, S),
      ``tgt`` the decoder input (B, T) (required); ``position`` defaults to -1; ``wrt="src"``
      differentiates the source embeddings, ``wrt="tgt"`` the decoder input's. Source positions
      holding ``pad_id`` are masked (as ``mt.decoding`` does); None masks nothing.

    ``target`` is one int for every row or a sequence of B ints. The rows are independent
    (dropout is off: the model runs in eval mode, and is put back in its mode after), so the
    gradient of Σ_b y_b gives each row's ∂y_b/∂e_b in one backward pass. Parameters are frozen
    during the call, so their ``.grad`` is left untouched.

    How: the embedding rows e = table[ids] become a leaf tensor with ``requires_grad``, and the
    model's own forward runs with its embedding look-up (the attribute ``embed``, ``src_embed``
    or ``tgt_embed``) answering with e for the duration of the call; the attribute is put back
    after, also on an error.

    What it can and cannot show: a token the output cannot depend on (a masked padding key, a
    future token under a causal mask) gets an exactly zero gradient. A large gradient norm says
    the logit is *sensitive* to the token, not that the token caused the prediction; gradient ×
    input is the first-order estimate of the change when e_t is set to zero, and the model is
    not linear, so the real change can be far larger (tutorial chapter 18 measures one).

    Shapes: ids (B, T) ints; tgt (B, T') ints -> a ``Saliency`` with (B, T, D) gradients and
    (B, T) scores, T the length of the differentiated input (``ids``, or ``tgt`` for wrt="tgt").
    """
    kinds = (SequenceClassifier, CausalLanguageModel, MaskedLanguageModel, Transformer)
    if not isinstance(model, kinds):
        names = ", ".join(kind.__name__ for kind in kinds)
        raise TypeError(f"explain.saliency: model must be one of {names}; got "
                        f"{type(model).__name__}")
    ids = _saliency_ids(ids, "ids")
    if isinstance(model, Transformer):
        if tgt is None:
            raise ValueError("explain.saliency: a Transformer needs tgt, the decoder input "
                             f"(B, T) for the source ids {ids.shape}")
        tgt = _saliency_ids(tgt, "tgt")
        if tgt.shape[0] != ids.shape[0]:
            raise ValueError(f"explain.saliency: ids {ids.shape} and tgt {tgt.shape} need the "
                             "same batch size B")
        if wrt not in ("src", "tgt"):
            raise ValueError(f"explain.saliency: wrt must be 'src' or 'tgt', got {wrt!r}")
    else:
        if tgt is not None or wrt != "src":
            raise ValueError(f"explain.saliency: tgt and wrt='tgt' are for a Transformer; a "
                             f"{type(model).__name__} reads only ids {ids.shape}")
    if isinstance(model, SequenceClassifier) and position is not None:
        raise ValueError(f"explain.saliency: a SequenceClassifier has one output per row "
                         f"(B, n_classes); position must be None, got {position!r}")
    for name, values, side in (("ids", ids, "src"), ("tgt", tgt, "tgt")):
        if values is None:
            continue
        owner, attribute = _saliency_lookup(model, side)
        rows = getattr(owner, attribute).weight.shape[0]
        low, high = int(values.data.min()), int(values.data.max())
        if low < 0 or high >= rows:
            raise ValueError(f"explain.saliency: {name} must hold ids in [0, {rows}) (the rows "
                             f"of the embedding table), got values in [{low}, {high}]")
    owner, attribute = _saliency_lookup(model, wrt)
    lookup = getattr(owner, attribute)
    differentiated = ids if wrt == "src" else tgt
    embeddings = Tensor(lookup.weight.data[differentiated.data], requires_grad=True)  # (B, T, D)
    training = model.training
    frozen = [(p, p.requires_grad) for p in model.parameters()]
    try:
        model.eval()
        for parameter, _ in frozen:
            parameter.requires_grad = False  # only the embeddings need gradients
        # Past Module.__setattr__: the module registry (and so parameters()) stays as it is
        object.__setattr__(owner, attribute, _GivenRows(embeddings, lookup.weight))
        logits = _saliency_logits(model, ids, tgt, pad_id)
        targets, position = _saliency_target(logits.shape, ids.shape[0], target, position)
        outputs = logits if position is None else logits[:, position]  # (B, C) or (B, V)
        xp = backend.array_module(outputs.data)
        one_hot = xp.zeros(outputs.shape, dtype=outputs.dtype)
        one_hot[xp.arange(ids.shape[0]), xp.asarray(targets)] = 1
        chosen = (outputs * Tensor._from_array(one_hot)).sum(axis=-1)  # (B,): y_b
        chosen.sum().backward()  # rows are independent: row b's gradient is ∂y_b/∂e_b
    finally:
        object.__setattr__(owner, attribute, lookup)
        for parameter, requires_grad in frozen:
            parameter.requires_grad = requires_grad
        model.train(training)
    gradient = backend.to_numpy(embeddings.grad)  # (B, T, D)
    values = backend.to_numpy(embeddings.data)
    return Saliency(
        ids=backend.to_numpy(differentiated.data),
        embeddings=values,
        gradient=gradient,
        norm=(gradient**2).sum(axis=-1) ** 0.5,  # (B, T)
        grad_times_input=(gradient * values).sum(axis=-1),  # (B, T)
        logit=chosen.numpy(),
        target=backend.to_numpy(xp.asarray(targets)),
        position=position,
    )


def gradient_times_input(model, ids, target=None):
    """Gradient × input of a classifier's decision: one score per token, (B, T).

    With c the explained class of a row (``target``: an int, or B ints; default: the class the
    model predicts for the row), y the C logits and e_t the embedding row of token t:

        m = y_c − (1/C) Σ_k y_k                    class c's logit against the mean logit
        score[t] = Σ_d (∂m/∂e_t)_d · (e_t)_d

    Softmax ignores a shift shared by all logits, so m is the part of y_c that moves the
    probability p_c (for two classes m = (y_c − y_other) / 2, half the log-odds). A positive
    score says token t pushes the decision toward c (to first order, zeroing e_t would lower m by
    that much), a negative one away from it. Padding scores exactly 0: its embedding row is zero
    and it is masked.

    Deviation: plain gradient × input differentiates y_c alone, whose gradient also carries what
    all the logits share, which moves no probability.

    Computed with ``saliency``, one backward pass per class: the gradient is linear, so
    ∂m/∂e = ∂y_c/∂e − (1/C) Σ_k ∂y_k/∂e.

    Shapes: ids (B, T) -> scores (B, T), a NumPy array.
    """
    if not isinstance(model, SequenceClassifier):
        raise TypeError(f"explain.gradient_times_input: model must be an nn.SequenceClassifier, "
                        f"got {type(model).__name__}")
    ids = _saliency_ids(ids, "ids", "gradient_times_input")
    batch, n_classes = ids.shape[0], model.classifier.weight.shape[1]  # Linear: (in, out)
    targets = None if target is None else _class_targets(target, batch, n_classes)
    per_class = [saliency(model, ids, target=k).grad_times_input for k in range(n_classes)]
    if targets is None:
        targets = _predicted_classes(model, ids)
    xp = backend.array_module(per_class[0])
    stacked = xp.stack(per_class)  # (C, B, T)
    chosen = stacked[xp.asarray(targets), xp.arange(ids.shape[0])]  # (B, T): y_c's scores
    return chosen - stacked.mean(axis=0)  # (B, T)


def _class_targets(target, batch, n_classes):
    """``target`` (one class, or one per row) as a list of ``batch`` ints in [0, n_classes)."""
    scalar = _integer(target)
    if scalar is not None:
        targets = [scalar] * batch
    elif hasattr(target, "__iter__"):
        targets = [_integer(t) for t in (target.tolist() if hasattr(target, "tolist") else target)]
    else:
        targets = [None]
    if len(targets) != batch or any(t is None or not 0 <= t < n_classes for t in targets):
        raise ValueError(f"explain.gradient_times_input: target must be a class in [0, "
                         f"{n_classes}) or {batch} of them (one per row), got {target!r}")
    return targets


def _predicted_classes(model, ids):
    """argmax of the model's logits for each row (eval mode, no gradients): a list of B ints."""
    training = model.training
    try:
        model.eval()
        with no_grad():
            logits = model(ids)  # (B, C)
    finally:
        model.train(training)
    return backend.to_numpy(logits.data).argmax(axis=-1).tolist()


def _saliency_ids(ids, name, function="saliency"):
    ids = ids if isinstance(ids, Tensor) else Tensor(ids)
    if ids.ndim != 2 or ids.dtype.kind not in "iu" or 0 in ids.shape:
        raise ValueError(f"explain.{function}: {name} must be non-empty integer token ids of shape "
                         f"(B, T), got shape {ids.shape} and dtype {ids.dtype}")
    return ids


def _saliency_logits(model, ids, tgt, pad_id):
    """The model's own forward: logits (B, C) or (B, T, V)."""
    if isinstance(model, Transformer):
        src_mask = padding_mask(ids, pad_id) if pad_id is not None else None
        return model(ids, tgt, src_mask=src_mask)
    return model(ids)


def _saliency_target(shape, batch, target, position):
    """Per-row target indices (a list of B ints), and the checked position (or None)."""
    n_outputs = shape[-1]
    scalar = _integer(target)
    targets = [scalar] * batch if scalar is not None else \
        [_integer(t) for t in (target.tolist() if hasattr(target, "tolist") else target)]
    if len(targets) != batch or None in targets:
        raise ValueError(f"explain.saliency: target must be an int or {batch} ints (one per "
                         f"row), got {target!r}")
    if not all(0 <= t < n_outputs for t in targets):
        raise ValueError(f"explain.saliency: target {target!r} is outside [0, {n_outputs}) for "
                         f"logits of shape {shape}")
    if len(shape) == 3:
        position = -1 if position is None else _integer(position)
        if position is None or not -shape[1] <= position < shape[1]:
            raise ValueError(f"explain.saliency: position must be an int in [-{shape[1]}, "
                             f"{shape[1]}) for logits of shape {shape}")
        position %= shape[1]
    return targets, position


def _integer(value):
    """``value`` as a Python int when it is an integer (not a bool), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _saliency_lookup(model, wrt):
    """(module, attribute name) of the embedding look-up whose rows are differentiated."""
    if isinstance(model, Transformer):
        return model, "src_embed" if wrt == "src" else "tgt_embed"
    return model.encoder, "embed"


class _GivenRows:
    """Stands in for an embedding look-up during ``saliency``: answers the ids with the given
    rows (B, T, D). ``weight`` is still the real table, for an output layer tied to it."""

    def __init__(self, rows, weight):
        self.rows, self.weight = rows, weight

    def __call__(self, ids):
        if tuple(ids.shape) != tuple(self.rows.shape[:2]):
            raise ExplainMismatchError(f"explain.saliency: the model looked up ids {ids.shape} "
                                       f"where the rows {self.rows.shape} were prepared")
        return self.rows
