"""One text, explained three ways by a fine-tuned classifier (``minitransformer explain``).

    import minitransformer.explain as explain

    result = explain.explain_checkpoint("runs/finetune/best.npz", "a moving , wonderful film")
    print(explain.format_text_explanation(result))     # the prediction, a table of tokens
    explain.plot_token_scores(result.panels(), "explain.png")   # tokens shaded, one row each

The three explanations (``explain.faithfulness.EXPLANATIONS``): attention rollout and the last
layer's attention (each token's share of the position the classifier pools; shares sum to 1),
and gradient × input for the predicted class (positive: the token pushes toward the prediction,
negative: away from it).
"""

import dataclasses
import math
import textwrap
from pathlib import Path

from minitransformer import checkpoint
from minitransformer.autograd import no_grad
from minitransformer.data.tokenizer import CLS_ID, N_SPECIAL, UNK_ID
from minitransformer.explain.faithfulness import EXPLANATIONS
from minitransformer.functional import softmax
from minitransformer.nn.models import SequenceClassifier
from minitransformer.tensor import Tensor

__all__ = [
    "LABELS",
    "TextExplanation",
    "explain_checkpoint",
    "explain_text",
    "format_text_explanation",
    "load_classifier",
    "plot_token_scores",
]

LABELS = ("negative", "positive")  # the classes of the fine-tuning task (sentiment), by index
EXAMPLE = "a moving , wonderful film"


@dataclasses.dataclass
class TextExplanation:
    """A classifier's prediction for one text and the token scores of each explanation.

    Attributes:
        tokens: the T tokens the model read, as text (<cls> first unless the model is causal).
        ids: their ids (T,).
        probabilities: the class probabilities, a list of C floats.
        predicted: the predicted class (the one explained).
        scores: explanation name -> NumPy array (T,).
        cut: how many tokens of the text were left out (beyond the model's length).
        labels: the class names.
    """

    tokens: list
    ids: list
    probabilities: list
    predicted: int
    scores: dict
    cut: int = 0
    labels: tuple = LABELS

    def label(self, index):
        return self.labels[index] if index < len(self.labels) else f"class {index}"

    def panels(self, skip_special=True):
        """(title, tokens, scores) per explanation, for ``plot_token_scores``; special tokens
        (<cls>) left out unless ``skip_special=False`` (rollout gives <cls> a large share of
        itself, which would wash out the shading of the words)."""
        keep = [i for i, token_id in enumerate(self.ids)
                if not skip_special or token_id >= N_SPECIAL or token_id == UNK_ID]
        return [(name, [self.tokens[i] for i in keep], values[keep])
                for name, values in self.scores.items()]


def load_classifier(path, warn=None):
    """(model, tokenizer, settings) from a checkpoint of ``minitransformer finetune``.

    The encoder is causal when the run started from a causal-LM checkpoint (``init_from`` with
    objective clm); that checkpoint is read to tell. When it cannot be read, a cls-pooling model
    is certainly not causal, and otherwise ``warn`` (a function of one line) is told that the
    model is assumed not causal.
    """
    from minitransformer.tasks.common import tokenizer_from_state
    from minitransformer.tasks.finetune import FinetuneConfig, build_classifier

    state = checkpoint.load(path)
    if state.get("task") != "finetune":
        made_by = f"minitransformer {state['task']}" if state.get("task") else "another program"
        raise ValueError(f"explain: {path} is not a classifier checkpoint (it was written by "
                         f"{made_by}); explain needs one written by minitransformer finetune")
    config = FinetuneConfig(**state["config"])
    tokenizer = tokenizer_from_state(state["tokenizer"], str(path))
    stored = dataclasses.replace(config, init_from=None, glove=None, tokenizer_from=None)
    model, *_ = build_classifier(stored, tokenizer, log=lambda *_: None)
    if _started_causal(config, warn):
        model = SequenceClassifier(model.encoder, model.classifier.weight.shape[1],
                                   config.pooling, config.head_dropout, causal=True)
    checkpoint.load(path, model)
    return model.eval(), tokenizer, config


def _started_causal(config, warn):
    if config.init_from is None or config.pooling == "cls":  # a causal encoder never pools cls
        return False
    try:
        return checkpoint.load(config.init_from)["config"]["objective"] == "clm"
    except (OSError, ValueError, KeyError):
        if warn is not None:
            warn(f"explain: cannot read init_from={config.init_from} to tell whether the encoder "
                 "is causal; assuming it is not")
        return False


def explain_text(model, tokenizer, text, seq_len=None, methods=None):
    """The prediction for ``text`` and each explanation's token scores.

    The text is encoded, cut to ``seq_len`` tokens (default: the model's max_len), <cls> included
    and put first unless the model is causal, as fine-tuning read its examples.
    ``methods``: name -> method(model, ids) -> (B, T) scores; default ``EXPLANATIONS``.

    Shapes: one text -> T tokens and (T,) scores per method.
    """
    if not isinstance(model, SequenceClassifier):
        raise TypeError(f"explain.explain_text: model must be an nn.SequenceClassifier, got "
                        f"{type(model).__name__}")
    _check_text(text)
    ids = tokenizer.encode(text)
    if not ids:
        raise ValueError(f"explain: the text {text!r} has no tokens for this tokenizer")
    limit = seq_len or model.encoder.positional.max_len
    keep = limit if model.causal else limit - 1  # <cls> takes one place
    cut = max(0, len(ids) - keep)
    ids = ([] if model.causal else [CLS_ID]) + ids[:keep]
    batch = Tensor([ids])  # (1, T)
    training = model.training
    try:
        model.eval()
        with no_grad():
            probabilities = softmax(model(batch), axis=-1).numpy()[0].tolist()  # (C,)
    finally:
        model.train(training)
    methods = EXPLANATIONS if methods is None else methods
    scores = {name: method(model, batch)[0] for name, method in methods.items()}  # (T,) each
    predicted = max(range(len(probabilities)), key=probabilities.__getitem__)
    return TextExplanation([tokenizer.id_to_token(i) for i in ids], ids, probabilities,
                           predicted, scores, cut)


def explain_checkpoint(path, text, device="cpu", warn=None):
    """``explain_text`` with the classifier and tokenizer of a finetune checkpoint; words the
    vocabulary lacks (read as <unk>) are named through ``warn``."""
    from minitransformer.tasks.common import select_device, unknown_tokens

    _check_text(text)
    select_device(device)
    model, tokenizer, config = load_classifier(path, warn)
    unknown = unknown_tokens(tokenizer, text)
    if unknown and warn is not None:
        warn("explain: not in the vocabulary (read as <unk>): " +
             ", ".join(repr(piece) for piece in unknown))
    return explain_text(model, tokenizer, text, config.seq_len)


def _check_text(text):
    if not isinstance(text, str):
        raise TypeError(f"explain: the text must be a str, got {type(text).__name__}")
    if not text.strip():
        raise ValueError(f"explain: the text is empty; give the sentence to classify and "
                         f"explain, e.g. {EXAMPLE!r}")


# --------------------------------------------------------------------------- text


def format_text_explanation(result, decimals=3, top=5):
    """The prediction, a table (one row per token, one column per explanation) and each
    explanation's ``top`` tokens, as text."""
    probabilities = ", ".join(f"{result.label(c)} {p:.3f}"
                              for c, p in enumerate(result.probabilities))
    lines = [f"prediction: {result.label(result.predicted)} "
             f"(p = {result.probabilities[result.predicted]:.3f}; {probabilities})"]
    if result.cut:
        lines.append(f"(the text was cut: its last {result.cut} tokens are beyond the model's "
                     "length)")
    lines += textwrap.wrap(
        f"explained: the prediction ({result.label(result.predicted)}). rollout, attention: "
        "each token's share of the position the classifier reads (a column sums to 1); "
        "gradient×input: + pushes toward the prediction, - away from it.", 100)
    names = list(result.scores)
    width = max(5, *(len(_short(t)) for t in result.tokens))
    cells = [max(len(name), decimals + 4) for name in names]
    lines.append("")
    lines.append(f"{'#':>4}  {'token':<{width}}" +
                 "".join(f"  {name:>{cell}}" for name, cell in zip(names, cells)))
    for position, token in enumerate(result.tokens):
        values = "".join(f"  {float(result.scores[name][position]):>{cell}.{decimals}f}"
                         for name, cell in zip(names, cells))
        lines.append(f"{position:>4}  {_short(token):<{width}}{values}")
    lines.append("")
    lines.append(f"top {top} tokens (special tokens left out):")
    words = [i for i, token_id in enumerate(result.ids)
             if token_id >= N_SPECIAL or token_id == UNK_ID]
    for name in names:
        best = sorted(words, key=lambda i: -float(result.scores[name][i]))[:top]
        lines.append(f"  {name:<{max(map(len, names))}}  " +
                     "  ".join(_short(result.tokens[i]) for i in best))
    return "\n".join(lines)


def _short(token, size=14):
    token = str(token)
    return token if len(token) <= size else token[:size - 1] + "…"


# --------------------------------------------------------------------------- the figure


def plot_token_scores(panels, path, columns=1, per_line=12, title=None):
    """Tokens shaded by their scores, one panel per (title, tokens, scores); returns the PNG's
    path. Needs matplotlib.

    Each panel lays its tokens out in lines of ``per_line``, each token in a cell coloured by
    its score divided by the panel's largest absolute score: red for positive, blue for negative,
    white for 0. Panels fill ``columns`` columns, row by row (e.g. three explanations of one
    text as three rows, or texts as rows and explanations as columns).

    Shapes: each panel's tokens (T,) and scores (T,).
    """
    from minitransformer.viz import _pyplot

    panels = [(str(name), [str(t) for t in tokens], _as_list(scores))
              for name, tokens, scores in panels]
    if not panels:
        raise ValueError("explain.plot_token_scores: panels is empty; give (title, tokens, "
                         "scores) triples")
    for name, tokens, scores in panels:
        if len(tokens) != len(scores) or not tokens:
            raise ValueError(f"explain.plot_token_scores: panel {name!r} has {len(tokens)} tokens "
                             f"and {len(scores)} scores; they must match and not be empty")
    plt = _pyplot()
    per_line = min(per_line, max(len(tokens) for _, tokens, _ in panels))  # no empty margin
    rows = math.ceil(len(panels) / columns)
    lines = [math.ceil(len(tokens) / per_line) for _, tokens, _ in panels]
    heights = [max(lines[r * columns:(r + 1) * columns]) for r in range(rows)]  # per panel row
    size = (max(4.0, columns * per_line * 0.78 + 0.4), sum(heights) * 0.3 + rows * 0.45 + 0.5)
    figure, axes = plt.subplots(rows, columns, figsize=size, squeeze=False, layout="constrained",
                                gridspec_kw={"height_ratios": [h + 1.2 for h in heights]})
    for index, axis in enumerate(axes.flat):
        if index >= len(panels):
            axis.axis("off")
            continue
        _draw_panel(axis, *panels[index], per_line, heights[index // columns])
    if title:
        figure.suptitle(textwrap.fill(title, int(size[0] * 12)), fontsize=10)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)


def _as_list(scores):
    values = scores.tolist() if hasattr(scores, "tolist") else list(scores)
    return [float(v) for v in values]


def _draw_panel(axis, name, tokens, scores, per_line, n_lines):
    from matplotlib import colormaps
    from matplotlib.patches import Rectangle

    largest = max(abs(s) for s in scores) or 1.0
    colours = colormaps["RdBu_r"]
    for position, (token, score) in enumerate(zip(tokens, scores)):
        row, column = divmod(position, per_line)
        shade = score / largest  # in [-1, 1]
        axis.add_patch(Rectangle((column, row), 1, 1, facecolor=colours(0.5 + 0.5 * shade),
                                 edgecolor="white", linewidth=0.8))
        axis.text(column + 0.5, row + 0.5, _short(token, 11), ha="center", va="center",
                  fontsize=7, color="white" if abs(shade) > 0.65 else "black")
    axis.set_xlim(0, per_line)
    axis.set_ylim(n_lines, 0)  # the first line on top
    axis.set_title(f"{name} (largest |score| {largest:.3g})", fontsize=9, loc="left")
    axis.axis("off")
