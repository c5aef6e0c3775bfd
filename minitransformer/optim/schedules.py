"""Learning-rate schedules: plain callables, step (counted from 1) -> learning rate.

    schedule = warmup_cosine(3e-4, warmup=100, total=2000)
    for step in range(1, 2001):
        optimizer.set_lr(schedule(step))
        ...

Each is a small frozen dataclass, so its settings print, compare and go into a checkpoint as
JSON (``to_config`` / ``from_config``).
"""

import math
from dataclasses import asdict, dataclass

__all__ = [
    "Constant",
    "Noam",
    "WarmupCosine",
    "WarmupLinear",
    "constant",
    "from_config",
    "noam",
    "warmup_cosine",
    "warmup_linear",
]


def _check_step(name, step):
    if step < 1:
        raise ValueError(f"{name}: steps count from 1, got {step}")


class _Schedule:
    def to_config(self):
        """The schedule as JSON-able settings, with its kind."""
        return {"kind": type(self).__name__, **asdict(self)}


@dataclass(frozen=True)
class Constant(_Schedule):
    """lr at every step."""

    lr: float

    def __call__(self, step):
        _check_step("constant", step)
        return self.lr


@dataclass(frozen=True)
class WarmupLinear(_Schedule):
    """Linear warm-up from 0 to lr over ``warmup`` steps, then linear decay to 0 at ``total``."""

    lr: float
    warmup: int
    total: int

    def __post_init__(self):
        if not 0 <= self.warmup < self.total:
            raise ValueError(f"warmup_linear: needs 0 <= warmup < total, got warmup="
                             f"{self.warmup}, total={self.total}")

    def __call__(self, step):
        _check_step("warmup_linear", step)
        if step <= self.warmup:
            return self.lr * step / self.warmup
        return self.lr * max(0.0, (self.total - step) / (self.total - self.warmup))


@dataclass(frozen=True)
class WarmupCosine(_Schedule):
    """Linear warm-up to lr over ``warmup`` steps, then a half cosine down to ``min_lr`` at
    ``total`` (and ``min_lr`` after it)."""

    lr: float
    warmup: int
    total: int
    min_lr: float = 0.0

    def __post_init__(self):
        if not 0 <= self.warmup < self.total:
            raise ValueError(f"warmup_cosine: needs 0 <= warmup < total, got warmup="
                             f"{self.warmup}, total={self.total}")

    def __call__(self, step):
        _check_step("warmup_cosine", step)
        if step <= self.warmup:
            return self.lr * step / self.warmup
        progress = min(1.0, (step - self.warmup) / (self.total - self.warmup))
        return self.min_lr + (self.lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class Noam(_Schedule):
    """The paper's rate (section 5.3): factor · d_model^-0.5 · min(step^-0.5, step · warmup^-1.5).

    It rises linearly for ``warmup`` steps, peaks at factor · (d_model · warmup)^-0.5, then decays
    as 1/√step.
    """

    d_model: int
    warmup: int
    factor: float = 1.0

    def __call__(self, step):
        _check_step("noam", step)
        return self.factor * self.d_model**-0.5 * min(step**-0.5, step * self.warmup**-1.5)


def constant(lr):
    """step -> lr."""
    return Constant(lr)


def warmup_linear(lr, warmup, total):
    """Linear warm-up to ``lr``, then linear decay to 0 at ``total``."""
    return WarmupLinear(lr, warmup, total)


def warmup_cosine(lr, warmup, total, min_lr=0.0):
    """Linear warm-up to ``lr``, then cosine decay to ``min_lr`` at ``total``."""
    return WarmupCosine(lr, warmup, total, min_lr)


def noam(d_model, warmup, factor=1.0):
    """The Transformer paper's schedule (warmup 4000 in the paper)."""
    return Noam(d_model, warmup, factor)


KINDS = {cls.__name__: cls for cls in (Constant, WarmupLinear, WarmupCosine, Noam)}


def from_config(config):
    """The schedule ``to_config`` described."""
    settings = dict(config)
    kind = settings.pop("kind", None)
    if kind not in KINDS:
        raise ValueError(f"from_config: unknown schedule kind {kind!r}; known: {sorted(KINDS)}")
    return KINDS[kind](**settings)
