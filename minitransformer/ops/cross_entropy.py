"""Cross-entropy of logits against integer targets, fused with log-softmax.

For one row of logits z (C classes) and its target t, with p = softmax(z) and smoothing ε:

    loss = -(1 - ε) · log p_t  -  ε · (1/C) Σ_c log p_c

which is the cross-entropy against the target distribution q = (1 - ε) · onehot(t) + ε / C
(label smoothing, Szegedy et al. 2016, used by the Transformer paper with ε = 0.1). Its gradient
is the famous

    dloss/dz = p - q

Rows whose target equals ``ignore_index`` (padding) contribute 0 to the loss and get zero gradient.
``reduction="mean"`` divides by the number of rows that are not ignored (as PyTorch); when every
row is ignored the mean is 0, not NaN.

The op needs one (N, C) array of its own for e^(z - max) and then the gradient. A training loop
never reads its logits again after the loss, so ``reuse_logits=True`` lets the op make that
array in the logits' own memory instead of a fresh one (at a large vocabulary, a fresh (N, C)
array is a sizeable part of a training step; see docs/performance_log.md).

float16 logits are computed in a float32 copy (ops/widen.py) and the loss is returned in
float32: float16's 11 bits cannot hold log Σ e^z over a vocabulary, and loss scaling multiplies
the loss by 2^16, past float16's largest number 65504. The gradient comes back in float16.
"""

from minitransformer.autograd import Function
from minitransformer.backend import array_module
from minitransformer.errors import DTypeError, ShapeError
from minitransformer.ops.rows import row_max, row_means, row_sums
from minitransformer.ops.widen import narrow, widen
from minitransformer.tensor import Tensor

__all__ = ["CrossEntropy", "cross_entropy"]

REDUCTIONS = ("mean", "sum", "none")


class CrossEntropy(Function):
    """loss_r = -Σ_c q_rc log softmax(z_r)_c for logits z (N, C) and targets t (N,), reduced.

    dL/dz_r = scale_r · (softmax(z_r) - q_r),   scale_r = g (sum), g / n_valid (mean), g_r (none);
    0 for ignored rows.

    float16 logits: the loss is float32, the gradient float16 (computed in float32).
    """

    @staticmethod
    def forward(ctx, logits, targets, ignore_index, label_smoothing, reduction, overwrite=False):
        xp = array_module(logits)
        num_classes = logits.shape[-1]
        z = logits.reshape(-1, num_classes)  # (N, C); a view of the logits when contiguous
        t = targets.reshape(-1)  # (N,)
        valid = t != ignore_index if ignore_index is not None else xp.ones(t.shape, dtype=bool)
        safe_t = xp.where(valid, t, 0)  # an ignored row reads class 0, then counts for nothing
        # One (N, C) array, reused: z - max, then e = e^(z - max). What the loss needs from
        # log p = (z - max) - log Σ e is read off before the overwrite; backward gets p = e / Σ e
        # by folding 1 / Σ e into its row scale (one pass over (N, C) fewer).
        wide = widen(z)  # z itself, or a float32 copy of float16 logits (ours to overwrite)
        if overwrite or wide is not z:  # the logits given up by the caller, or our float32 copy
            e = wide
            e -= row_max(e)
        else:
            e = z - row_max(z)
        target_shifted = e[xp.arange(z.shape[0]), safe_t]  # (N,)
        mean_shifted = row_means(e)[:, 0] if label_smoothing else None
        xp.exp(e, out=e)
        total = row_sums(e)  # (N, 1)
        log_total = xp.log(total[:, 0])
        loss = log_total - target_shifted  # -log p_t, (N,)
        if label_smoothing:  # ... - ε · mean_c log p_c
            loss = (1 - label_smoothing) * loss - label_smoothing * (mean_shifted - log_total)
        loss = loss * valid
        n_valid = int(valid.sum()) if reduction == "mean" else None
        ctx.save_for_backward(e, total, safe_t, valid)
        ctx.label_smoothing, ctx.reduction, ctx.n_valid = label_smoothing, reduction, n_valid
        ctx.logits_shape, ctx.logits_dtype = logits.shape, logits.dtype
        if reduction == "none":
            return loss.reshape(targets.shape)
        total = loss.sum()
        return total / max(n_valid, 1) if reduction == "mean" else total

    @staticmethod
    def backward(ctx, grad_out):
        e, total, safe_t, valid = ctx.saved
        xp = array_module(e)
        smoothing = ctx.label_smoothing
        if ctx.reduction == "none":
            scale = grad_out.reshape(-1) * valid  # (N,)
        elif ctx.reduction == "mean":
            scale = valid * (grad_out / max(ctx.n_valid, 1))
        else:
            scale = valid * grad_out
        scale = scale.astype(e.dtype, copy=False)[:, None]  # (N, 1)
        # scale · (p - ε/C - (1 - ε) onehot(t)) with p = e / Σ e, built in place in e
        grad = ctx.writable_saved(e)
        grad *= scale / total
        if smoothing:
            grad -= (smoothing / e.shape[1]) * scale
        grad[xp.arange(e.shape[0]), safe_t] -= (1 - smoothing) * scale[:, 0]
        return narrow(grad, ctx.logits_dtype).reshape(ctx.logits_shape), None


def cross_entropy(logits, targets, ignore_index=None, label_smoothing=0.0, reduction="mean",
                  reuse_logits=False):
    """Cross-entropy between ``logits`` and integer class ``targets``.

    Shapes:
        logits (N, C) or (B, T, C) (any (..., C));  targets (N,) or (B, T): logits' shape minus C.
        Returns a scalar for "mean" and "sum", the targets' shape for "none".

    ``ignore_index``: targets equal to it (e.g. the padding id) are left out of the loss and the
    mean. ``label_smoothing`` ε in [0, 1): the target distribution puts 1 - ε on the target and
    spreads ε evenly over all C classes.

    ``reuse_logits=True`` (for training loops: the loss is the logits' only reader) computes in
    the logits' memory instead of a fresh (N, C) array; afterwards ``logits`` holds scratch
    values, not the logits. It is used only where that is safe for the graph: not for a leaf
    tensor (whose data the caller owns), and not when the op that made the logits saved that
    array for its backward (e.g. ``exp``); then the op quietly works on a copy as usual. The
    loss and the gradients are the same either way. Deviation: PyTorch has no such option.
    """
    targets = targets if isinstance(targets, Tensor) else Tensor(targets)
    if targets.dtype.kind not in "iu":
        raise DTypeError(f"cross_entropy: targets must be integer class ids, got {targets.dtype}")
    if logits.ndim < 1 or logits.shape[:-1] != targets.shape:
        raise ShapeError(
            f"cross_entropy: logits {logits.shape} and targets {targets.shape} do not fit; "
            "targets need the shape of logits without its last (class) axis"
        )
    if reduction not in REDUCTIONS:
        raise ValueError(f"cross_entropy: reduction {reduction!r} is not one of {REDUCTIONS}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(
            f"cross_entropy: label_smoothing must lie in [0, 1), got {label_smoothing}"
        )
    num_classes = logits.shape[-1]
    checked = targets.data if ignore_index is None else targets.data[targets.data != ignore_index]
    if checked.size and (int(checked.min()) < 0 or int(checked.max()) >= num_classes):
        raise ValueError(
            f"cross_entropy: targets must lie in [0, {num_classes}) for {num_classes} classes; "
            f"got values from {int(checked.min())} to {int(checked.max())}"
            + ("" if ignore_index is None else f" (ignore_index={ignore_index} excluded)")
        )
    return CrossEntropy.apply(logits, targets, ignore_index=ignore_index,
                              label_smoothing=float(label_smoothing), reduction=reduction,
                              overwrite=reuse_logits and _may_overwrite(logits))


def _may_overwrite(tensor):
    """True if the graph holds ``tensor``'s memory nowhere: no leaf's data, and no array an op
    saved for its backward. Walks up only through inputs that share that memory (the logits may
    be a reshaped view of an earlier op's output), so it costs a few checks, not a graph walk."""
    xp = array_module(tensor.data)
    memory, pending = tensor.data, [tensor]
    while pending:
        node = pending.pop()
        if node.creator is None:
            return False  # a leaf (or a tensor outside any graph): its data is not ours
        for saved in node.creator.saved:
            if hasattr(saved, "shape") and xp.may_share_memory(saved, memory):
                return False
        pending += [t for t in node.creator.inputs
                    if isinstance(t, Tensor) and xp.may_share_memory(t.data, memory)]
    return True
