"""Embedding lookup: row ``ids[i]`` of a table, for every id. A gather, whose gradient scatters."""

from minitransformer.autograd import Function
from minitransformer.backend import array_module, scatter_add
from minitransformer.errors import DTypeError, ShapeError
from minitransformer.tensor import Tensor

__all__ = ["Embedding", "embedding"]


class Embedding(Function):
    """y[..., :] = weight[ids[...], :]

    dL/dweight[v] = Σ over the positions where ids == v of g   (scatter-add: a token that occurs
    twice gets both gradients); the row ``padding_idx``, if given, gets none.
    """

    @staticmethod
    def forward(ctx, ids, weight, padding_idx):
        ctx.save_for_backward(ids)
        ctx.weight_shape, ctx.padding_idx = weight.shape, padding_idx
        return array_module(weight).take(weight, ids, axis=0)

    @staticmethod
    def backward(ctx, grad_out):
        (ids,) = ctx.saved
        xp = array_module(grad_out)
        grad = xp.zeros(ctx.weight_shape, dtype=grad_out.dtype)
        _add_rows_by_id(grad, ids.reshape(-1), grad_out.reshape(-1, ctx.weight_shape[1]))
        if ctx.padding_idx is not None:
            grad[ctx.padding_idx] = 0
        return None, grad


def _add_rows_by_id(table, ids, rows):
    """table[ids[i]] += rows[i] for every i, repeats included (in place).

    When ids repeat a lot (a small vocabulary, a long batch) sorting them and summing each run of
    equal ids with one ``add.reduceat`` is faster than ``scatter_add``'s element-by-element
    ``add.at`` (on one core: 2.9x for 512 ids of 100 words, 1.4x for 2,048 of 1,000); when most
    ids are distinct, ``add.at`` wins. The two agree to rounding (``reduceat`` may add a run's
    rows in another order).
    """
    xp = array_module(rows)
    reduceat = getattr(xp.add, "reduceat", None)  # NumPy's ufuncs have it; not every backend's
    if reduceat is None or ids.size == 0:
        scatter_add(table, ids, rows)
        return
    order = xp.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = xp.flatnonzero(xp.concatenate([[True], sorted_ids[1:] != sorted_ids[:-1]]))
    if 2 * starts.size > ids.size:  # mostly distinct ids
        scatter_add(table, ids, rows)
    else:  # one sum per run of equal ids
        table[sorted_ids[starts]] += reduceat(rows[order], starts, axis=0)


def embedding(ids, weight, padding_idx=None):
    """Look up the rows of ``weight`` named by the integer ``ids``.

    Shapes: ids (...) integers in [0, V); weight (V, D) -> (..., D).
    """
    ids = ids if isinstance(ids, Tensor) else Tensor(ids)
    if ids.dtype.kind not in "iu":
        raise DTypeError(f"embedding: ids must be integers, got dtype {ids.dtype}")
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be a (V, D) table, got shape {weight.shape}")
    rows = weight.shape[0]
    if ids.size and (int(ids.data.min()) < 0 or int(ids.data.max()) >= rows):
        raise ValueError(
            f"embedding: ids must lie in [0, {rows}) for a table of {rows} rows; got values from "
            f"{int(ids.data.min())} to {int(ids.data.max())}"
        )
    return Embedding.apply(ids, weight, padding_idx=padding_idx)
