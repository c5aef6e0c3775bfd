"""Attention rollout (Abnar and Zuidema 2020, "Quantifying Attention Flow in Transformers"): how
much of each input token reaches the position a classifier reads, through every layer.

    import minitransformer.explain as explain

    scores = explain.attention_rollout(classifier, ids)     # (B, T): each row sums to 1
    last = explain.last_layer_attention(classifier, ids)    # (B, T): the top layer alone

Where it comes from. Write x_t^(l) for the vector of position t after encoder layer l
(x^(0): the embeddings). One layer is

    x^(l) = x^(l-1) + MultiHead(x^(l-1)) + FFN(...)           (the residual stream)

and the only part that moves information *between* positions is attention: the feed-forward
network and the layer norms act on each position alone. Averaged over its H heads, layer l mixes
position t's inputs with the weights A_l[t, s] = (1/H) Σ_h A_{l,h}[t, s] (T, T), rows summing to
1. The residual adds position t's own vector back unchanged: an identity mixing. Giving the two
paths equal shares, as the paper does, the layer's mixing matrix is

    Ã_l = ½ A_l + ½ I,   each row renormalised to sum to 1       (T, T)

Follow the mixing through the stack: position t after layer 2 holds Σ_k Ã_2[t, k] of the
positions k after layer 1, each of which holds Σ_s Ã_1[k, s] of the inputs s. So the share of
input token s in position t at the top is

    R = Ã_L · Ã_{L-1} ··· Ã_1                                  (T, T), rows summing to 1

and rollout reads the row (or rows) the classifier pools:

    cls pooling:   scores = R[0, :]                  the <cls> position
    mean pooling:  scores = mean_{t real} R[t, :]    the mean over the non-padding positions
    last pooling:  scores = R[t_last, :]             the last non-padding position

Padding is masked as a key in every layer, so no real position ever mixes from it: its score is
exactly 0. Raw attention (``last_layer_attention``) reads the same row(s) of A_L alone, the top
layer's head average, without the residual and without the layers below.

What it assumes: the two paths of the residual carry equal weight (they do not: the sizes of x
and of the attention output differ), the heads matter equally, and mixing is linear (the value
vectors and W^O are ignored). Rollout is a model of the information flow, not a measurement; the
deletion curve (``explain.faithfulness``) measures how well it ranks tokens.

Shape letters: B batch, L layers, H heads, T tokens.
"""

from minitransformer import backend
from minitransformer.autograd import no_grad
from minitransformer.explain.attention import ExplainMismatchError
from minitransformer.nn.models import POOLINGS, SequenceClassifier, TextEncoder
from minitransformer.tensor import Tensor

__all__ = [
    "attention_rollout",
    "last_layer_attention",
    "layer_attentions",
    "pooled_scores",
    "rollout_matrix",
]

RESIDUAL = 0.5  # the residual path's share in Ã = (1 - RESIDUAL)·A + RESIDUAL·I (the paper's ½)


def attention_rollout(model, ids, pooling=None):
    """Attention rollout: each input token's share in the position the classifier pools.

    Runs ``model`` once (eval mode, no gradients), averages each layer's attention weights over
    the heads, adds the residual (Ã_l = ½ A_l + ½ I, rows renormalised), multiplies through the
    layers (R = Ã_L ··· Ã_1) and returns the pooled row(s) of R (see the module's docstring).

    Args:
        model: an ``nn.SequenceClassifier`` (its pooling is used) or a bare ``nn.TextEncoder``.
        ids: token ids (B, T), as the model reads them (with <cls> first for cls pooling).
        pooling: "cls", "mean" or "last"; default: the classifier's pooling, or "cls" for a
            TextEncoder (the classifier's default).

    Returns a NumPy array (B, T): row b is a distribution over the T positions (sums to 1),
    exactly 0 at padding.

    Shapes: ids (B, T) -> scores (B, T).
    """
    attentions, ids, pooling, pad_id = _attentions(model, ids, pooling, "attention_rollout")
    return pooled_scores(rollout_matrix(attentions), ids, pooling, pad_id)


def last_layer_attention(model, ids, pooling=None):
    """Raw attention: the top layer's weights, averaged over heads, in the pooled row(s).

    The same reading as ``attention_rollout`` (same arguments, same pooling rule) of A_L alone:
    for cls pooling A_L[0, :], for mean pooling the mean of the rows of the real tokens, for
    last pooling the last real token's row. No residual, no lower layers.

    Shapes: ids (B, T) -> scores (B, T), each row summing to 1, exactly 0 at padding.
    """
    attentions, ids, pooling, pad_id = _attentions(model, ids, pooling, "last_layer_attention")
    top = attentions[-1]  # (B, H, T, T)
    return pooled_scores(top.mean(axis=1), ids, pooling, pad_id)


def layer_attentions(model, ids):
    """Each encoder layer's attention weights for one run of ``model`` on ``ids``.

    Runs the model in eval mode (no dropout) without gradients, puts its mode back, and reads
    ``self_attn.attention_weights`` of every layer. Returns a list of L NumPy arrays (B, H, T, T),
    lowest layer first.

    Shapes: ids (B, T) -> L arrays (B, H, T, T).
    """
    encoder = _text_encoder(model, "layer_attentions")
    ids = token_ids(ids, "layer_attentions", encoder.vocab_size)
    return _run(model, encoder, ids, "layer_attentions")


def rollout_matrix(attentions):
    """R = Ã_L ··· Ã_1 from the per-layer attention weights, Ã_l = ½·mean_h(A_l) + ½·I with each
    row renormalised to sum to 1 (a row the mask emptied becomes the identity's row).

    ``attentions``: L arrays (B, H, T, T), lowest layer first (``layer_attentions``' output).
    Returns R (B, T, T): R[b, t, s] is the share of input token s in position t after the last
    layer; each row sums to 1.

    Shapes: L × (B, H, T, T) -> (B, T, T).
    """
    attentions = [backend.to_numpy(a.data if isinstance(a, Tensor) else a) for a in attentions]
    if not attentions:
        raise ValueError("explain.rollout_matrix: attentions is empty; give one (B, H, T, T) "
                         "array per layer")
    shape = attentions[0].shape
    for index, weights in enumerate(attentions):
        if weights.ndim != 4 or weights.shape[-1] != weights.shape[-2] or weights.shape != shape:
            raise ValueError(f"explain.rollout_matrix: every layer's weights must be (B, H, T, T) "
                             f"of one shape; layer 0 is {shape}, layer {index} is "
                             f"{weights.shape}")
    xp = backend.array_module(attentions[0])
    identity = xp.eye(shape[-1])  # (T, T)
    rollout = None
    for weights in attentions:
        mixed = (1 - RESIDUAL) * weights.astype("float64").mean(axis=1) + RESIDUAL * identity
        mixed /= mixed.sum(axis=-1, keepdims=True)  # (B, T, T): rows sum to 1 again
        rollout = mixed if rollout is None else mixed @ rollout  # Ã_l · (Ã_{l-1} ··· Ã_1)
    return rollout  # (B, T, T)


def pooled_scores(matrix, ids, pooling, pad_id=0):
    """The row(s) of a (B, T, T) mixing matrix that a pooling reads, as (B, T) token scores.

    "cls": row 0; "mean": the mean of the rows of the real (non-``pad_id``) positions; "last":
    the row of the last real position (padding comes after the text). Scores of padding
    positions are set to 0. ``pad_id=None``: no padding.

    Shapes: matrix (B, T, T), ids (B, T) -> (B, T).
    """
    matrix = backend.to_numpy(matrix.data if isinstance(matrix, Tensor) else matrix)
    ids = backend.to_numpy(ids.data if isinstance(ids, Tensor) else ids)
    if pooling not in POOLINGS:
        raise ValueError(f"explain.pooled_scores: pooling must be one of {POOLINGS}, got "
                         f"{pooling!r}")
    if matrix.ndim != 3 or matrix.shape[1:] != (ids.shape[-1],) * 2 or \
            matrix.shape[0] != ids.shape[0] or ids.ndim != 2:
        raise ValueError(f"explain.pooled_scores: matrix must be (B, T, T) for ids (B, T); got "
                         f"matrix {matrix.shape} and ids {ids.shape}")
    xp = backend.array_module(matrix)
    real = xp.ones(ids.shape, dtype=bool) if pad_id is None else ids != pad_id  # (B, T)
    count = real.sum(axis=1)  # (B,)
    if pooling == "cls":
        scores = matrix[:, 0]  # (B, T)
    elif pooling == "last":
        last = xp.maximum(count - 1, 0)  # (B,), as SequenceClassifier.pool
        scores = matrix[xp.arange(ids.shape[0]), last]  # (B, T)
    else:
        weights = real / xp.maximum(count, 1)[:, None]  # (B, T): 1/n at the n real rows
        scores = (weights[:, :, None] * matrix).sum(axis=1)  # (B, T)
    return xp.where(real, scores, 0.0)


# --------------------------------------------------------------------------- checks and the run


def token_ids(ids, function, vocab_size=None):
    """``ids`` (a list of lists, a NumPy array or a Tensor) as a NumPy int array (B, T); a clear
    error naming ``function`` for any other shape, for floats, or for ids outside the table."""
    ids = backend.to_numpy(ids.data) if isinstance(ids, Tensor) else Tensor(ids).numpy()
    if ids.ndim != 2 or ids.dtype.kind not in "iu" or 0 in ids.shape:
        raise ValueError(f"explain.{function}: ids must be non-empty integer token ids of shape "
                         f"(B, T), got shape {ids.shape} and dtype {ids.dtype}")
    if vocab_size is not None and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(f"explain.{function}: ids must lie in [0, {vocab_size}) (the rows of "
                         f"the embedding table), got values in [{int(ids.min())}, "
                         f"{int(ids.max())}]")
    return ids


def _text_encoder(model, function):
    if isinstance(model, SequenceClassifier):
        return model.encoder
    if isinstance(model, TextEncoder):
        return model
    raise TypeError(f"explain.{function}: model must be an nn.SequenceClassifier or an "
                    f"nn.TextEncoder (an encoder whose layers attend over the input tokens), got "
                    f"{type(model).__name__}")


def _attentions(model, ids, pooling, function):
    """(L arrays (B, H, T, T), ids (B, T) NumPy, the pooling, the pad id) for one run."""
    encoder = _text_encoder(model, function)
    if pooling is None:
        pooling = model.pooling if isinstance(model, SequenceClassifier) else "cls"
    if pooling not in POOLINGS:
        raise ValueError(f"explain.{function}: pooling must be one of {POOLINGS}, got "
                         f"{pooling!r}")
    ids = token_ids(ids, function, encoder.vocab_size)
    return _run(model, encoder, ids, function), ids, pooling, encoder.pad_id


def _run(model, encoder, ids, function):
    layers = list(encoder.encoder.layers)
    for layer in layers:
        layer.self_attn.attention_weights = None  # so a stale value can never be read
    training = model.training
    try:
        model.eval()
        with no_grad():
            model(Tensor(ids))
    finally:
        model.train(training)
    weights = [layer.self_attn.attention_weights for layer in layers]
    if any(w is None for w in weights):
        raise ExplainMismatchError(f"explain.{function}: a layer kept no attention_weights "
                                   "after the forward pass")
    return [backend.to_numpy(w.data) for w in weights]  # L × (B, H, T, T)
