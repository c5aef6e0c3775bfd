"""Dropout (Srivastava et al. 2014), "inverted": scaled at training time, identity at evaluation."""

from minitransformer.autograd import Function
from minitransformer.backend import array_module, generator

__all__ = ["Dropout", "dropout"]


class Dropout(Function):
    """y = x · m / (1 - p), with m_i ~ Bernoulli(1 - p) drawn from the shared generator

    dL/dx = g · m / (1 - p)   (the same mask: a dropped unit passes no gradient)
    """

    @staticmethod
    def forward(ctx, x, p):
        xp = array_module(x)
        # the generators draw float32 or float64: a float16 x takes float32 draws
        draws = generator(xp).random(x.shape, dtype=x.dtype if x.dtype.itemsize >= 4 else
                                     "float32")
        keep = draws >= p
        scale = xp.asarray(0 if p == 1 else 1 / (1 - p), dtype=x.dtype)
        mask = keep * scale  # (same shape as x) 0 or 1/(1-p)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad_out):
        (mask,) = ctx.saved
        return (grad_out * mask,)


def dropout(x, p=0.5, training=True):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p), when ``training``.

    At evaluation (``training=False``) or with p = 0 it returns ``x`` itself. The expected value
    of every element is unchanged, so nothing needs rescaling at evaluation.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p is a probability in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    return Dropout.apply(x, p=float(p))
