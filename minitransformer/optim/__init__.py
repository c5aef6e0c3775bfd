"""Optimizers, learning-rate schedules and gradient clipping."""

from minitransformer.optim.optimizers import SGD, Adam, AdamW, Optimizer, clip_grad_norm
from minitransformer.optim.schedules import (
    constant,
    from_config,
    noam,
    warmup_cosine,
    warmup_linear,
)

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "Optimizer",
    "clip_grad_norm",
    "constant",
    "from_config",
    "noam",
    "warmup_cosine",
    "warmup_linear",
]
