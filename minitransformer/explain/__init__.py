"""Explanations of what a model computes, and a measure of whether they are faithful:

- ``attention.py``: step through one multi-head self-attention call, every named intermediate
  (``explain.attention``, ``minitransformer explain-attention``);
- ``saliency.py``: gradient saliency of a model's output with respect to its input tokens
  (``explain.saliency``), and gradient × input of a classifier's decision
  (``explain.gradient_times_input``);
- ``rollout.py``: attention rollout through the layers and the residual stream
  (``explain.attention_rollout``), and the last layer's attention
  (``explain.last_layer_attention``);
- ``faithfulness.py``: the deletion curve of any token explanation against random deletion
  (``explain.deletion_curve``, ``explain.compare_explanations``);
- ``report.py``: one text explained three ways by a fine-tuned classifier, as a table and a
  figure (``minitransformer explain``).

    import minitransformer.explain as explain

    steps = explain.attention("the cat sat on the mat", d_model=8, n_heads=2, causal=True)
    result = explain.saliency(classifier, ids, target=1)
    scores = explain.attention_rollout(classifier, ids)            # (B, T)
    curve = explain.deletion_curve(classifier, ids, scores)         # curve.auc: lower = better
"""

from minitransformer.explain.attention import (
    AttentionExplanation,
    ExplainMismatchError,
    Step,
    attention,
    format_matrix,
    format_step,
)
from minitransformer.explain.faithfulness import (
    EXPLANATIONS,
    FRACTIONS,
    DeletionCurve,
    FaithfulnessTable,
    compare_explanations,
    deletion_curve,
    random_deletion_curve,
)
from minitransformer.explain.report import (
    TextExplanation,
    explain_checkpoint,
    explain_text,
    format_text_explanation,
    load_classifier,
    plot_token_scores,
)
from minitransformer.explain.rollout import (
    attention_rollout,
    last_layer_attention,
    layer_attentions,
    pooled_scores,
    rollout_matrix,
)
from minitransformer.explain.saliency import Saliency, gradient_times_input, saliency

__all__ = [
    "EXPLANATIONS",
    "FRACTIONS",
    "AttentionExplanation",
    "DeletionCurve",
    "ExplainMismatchError",
    "FaithfulnessTable",
    "Saliency",
    "Step",
    "TextExplanation",
    "attention",
    "attention_rollout",
    "compare_explanations",
    "deletion_curve",
    "explain_checkpoint",
    "explain_text",
    "format_matrix",
    "format_step",
    "format_text_explanation",
    "gradient_times_input",
    "last_layer_attention",
    "layer_attentions",
    "load_classifier",
    "plot_token_scores",
    "pooled_scores",
    "random_deletion_curve",
    "rollout_matrix",
    "saliency",
]
