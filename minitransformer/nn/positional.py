"""Position information: attention alone cannot tell word order, so each position adds a code.

Both modules take x (B, T, D) and return x + code[offset : offset + T]; ``offset`` lets a decoder
that generates one token at a time (with a key/value cache) ask for the code of position t alone.
"""

import math

from minitransformer import backend
from minitransformer.errors import ShapeError
from minitransformer.nn import init
from minitransformer.nn.module import Module, Parameter
from minitransformer.tensor import Tensor, zeros

__all__ = ["LearnedPositionalEmbedding", "SinusoidalPositionalEncoding"]


def _check_length(name, x, offset, max_len, d_model):
    if x.ndim < 2 or x.shape[-1] != d_model:
        raise ShapeError(f"{name}: expected x of shape (B, T, d_model={d_model}) or (T, "
                         f"d_model), got {x.shape}")
    length = x.shape[-2]
    if offset + length > max_len:
        raise ShapeError(
            f"{name}: cannot encode positions {offset} to {offset + length - 1} (a sequence of "
            f"length {length}{f' at offset {offset}' if offset else ''}); max_len is {max_len}"
        )
    return length


class SinusoidalPositionalEncoding(Module):
    """The paper's fixed codes (section 3.5), no parameters:

        PE(pos, 2i)   = sin(pos / 10000^(2i / d_model))
        PE(pos, 2i+1) = cos(pos / 10000^(2i / d_model))

    Each dimension is a sinusoid of its own wavelength (2π to 10000·2π), so PE(pos + k) is a
    linear function of PE(pos): relative positions are easy to attend to.

    Shapes: x (B, T, d_model) -> (B, T, d_model); the table (max_len, d_model) is a buffer.
    """

    def __init__(self, d_model, max_len=5000):
        super().__init__()
        self.d_model, self.max_len = d_model, max_len
        xp = backend.current_module()
        dtype = backend.get_default_dtype()
        position = xp.arange(max_len, dtype="float64")[:, None]  # (max_len, 1)
        frequency = xp.exp(xp.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))  # (D/2,)
        table = xp.zeros((max_len, d_model))
        table[:, 0::2] = xp.sin(position * frequency)
        table[:, 1::2] = xp.cos(position * frequency[: d_model // 2])  # odd d_model: one fewer
        self.register_buffer("table", Tensor._from_array(table.astype(dtype)))

    def forward(self, x, offset=0):
        length = _check_length("SinusoidalPositionalEncoding", x, offset, self.max_len,
                               self.d_model)
        code = self.table.data[offset:offset + length]
        return x + Tensor._from_array(code.astype(x.dtype, copy=False))  # (B, T, D)

    def extra_repr(self):
        return f"d_model={self.d_model}, max_len={self.max_len}"


class LearnedPositionalEmbedding(Module):
    """One trained vector per position (as BERT and GPT), initialised N(0, 0.02²).

    Shapes: x (B, T, d_model) -> (B, T, d_model); weight (max_len, d_model).
    """

    def __init__(self, max_len, d_model):
        super().__init__()
        self.max_len, self.d_model = max_len, d_model
        self.weight = Parameter(init.normal(zeros(max_len, d_model), std=0.02))

    def forward(self, x, offset=0):
        length = _check_length("LearnedPositionalEmbedding", x, offset, self.max_len,
                               self.d_model)
        return x + self.weight[offset:offset + length]  # (B, T, D)

    def extra_repr(self):
        return f"max_len={self.max_len}, d_model={self.d_model}"
