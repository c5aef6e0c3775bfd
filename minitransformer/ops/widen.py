"""float16 inputs of the fused ops: computed in float32, handed back in float16.

float16 keeps 11 significant bits (about 3 decimal digits) and its largest number is 65504.
The statistics of the fused ops lose most of those bits when summed in float16, or overflow:

- softmax and log-softmax: the normaliser Σ_j e^(x_j - m) over a row of S keys;
- layer norm: the mean μ and the variance mean((x - μ)²), which overflows once x - μ passes
  ±256;
- cross-entropy: log Σ_c e^(z_c - m) over a vocabulary of thousands, and the loss itself.

So for a float16 input these ops run in float32 and return float16 (cross-entropy returns its
loss in float32: loss scaling multiplies it by 2^16, more than float16 holds), as PyTorch's
autocast runs them in float32. Mixed-precision training (minitransformer/precision.py) relies
on it.

For float32 and float64 arrays both helpers return their argument itself: no copy and no cast,
so the float32 path of every op is what it was.
"""

__all__ = ["narrow", "widen"]


def widen(array):
    """``array`` itself, or a float32 copy of it when it is float16 (None stays None).

    Shapes: any -> the same.
    """
    if array is None or array.dtype.kind != "f" or array.dtype.itemsize >= 4:
        return array
    return array.astype("float32")


def narrow(array, dtype):
    """``array`` converted to ``dtype`` (a float32 result back to its input's float16); itself
    when it already has that dtype (None stays None).

    Shapes: any -> the same.
    """
    if array is None or array.dtype == dtype:
        return array
    return array.astype(dtype)
