"""Explanations of what a model computes, in two files:

- ``attention.py``: step through one multi-head self-attention call, every named intermediate
  (``explain.attention``, ``minitransformer explain-attention``);
- ``saliency.py``: gradient saliency of a model's output with respect to its input tokens
  (``explain.saliency``).

    import minitransformer.explain as explain

    steps = explain.attention("the cat sat on the mat", d_model=8, n_heads=2, causal=True)
    result = explain.saliency(classifier, ids, target=1)
"""

from minitransformer.explain.attention import (
    AttentionExplanation,
    ExplainMismatchError,
    Step,
    attention,
    format_matrix,
    format_step,
)
from minitransformer.explain.saliency import Saliency, saliency

__all__ = [
    "AttentionExplanation",
    "ExplainMismatchError",
    "Saliency",
    "Step",
    "attention",
    "format_matrix",
    "format_step",
    "saliency",
]
