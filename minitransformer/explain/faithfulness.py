"""Is an explanation faithful to the model? The deletion curve measures it.

An explanation ranks the tokens of an input. If the ranking is faithful, deleting the tokens it
ranks highest should destroy the prediction quickly; deleting random tokens is the baseline.

    import minitransformer.explain as explain

    scores = explain.attention_rollout(classifier, ids)             # (B, T), any method
    curve = explain.deletion_curve(classifier, ids, scores)          # curve.auc: lower = better
    baseline = explain.random_deletion_curve(classifier, ids, draws=3, seed=0)
    table = explain.compare_explanations(classifier, examples)       # every method and random
    print(table)

What deleting means here: the token is replaced by <pad>. The classifier masks <pad> as a key in
every attention layer and leaves it out of mean pooling, so for the model a deleted token is not
there, while every other token keeps its position code. (<mask> would put in a token the
classifier never learned to ignore; dropping the token would move every later token to another
position.) <cls> and the padding are never deleted.

For row b with n_b deletable tokens and a fraction f, the k = ⌊f·n_b + ½⌋ tokens with the highest
scores are deleted (equal scores: the earlier position first), and the model's probability of
the class c_b it predicts for the whole input is read:

    p_b(f) = softmax(model(x_b with its top k tokens deleted))[c_b]

The deletion AUC is the area under p_b(f), divided by the width of the range of f: the curve's
mean height, in [0, 1]; the AUC of a set is the mean over its rows:

    AUC_b = (1 / (f_max − f_min)) ∫ p_b(f) df     (trapezoid rule),     AUC = mean_b AUC_b

Lower = the prediction falls sooner = the explanation found the tokens the model relies on.
(Samek et al. 2017 for images; DeYoung et al. 2020, ERASER, "comprehensiveness", for text.)

Shape letters: B rows, T tokens, F fractions.
"""

import dataclasses
import math
import time

from minitransformer import backend
from minitransformer.autograd import no_grad
from minitransformer.data.batches import collate_classification
from minitransformer.data.tokenizer import CLS_ID
from minitransformer.explain.rollout import attention_rollout, last_layer_attention, token_ids
from minitransformer.explain.saliency import gradient_times_input
from minitransformer.nn.models import SequenceClassifier
from minitransformer.tensor import Tensor

__all__ = [
    "EXPLANATIONS",
    "FRACTIONS",
    "DeletionCurve",
    "FaithfulnessTable",
    "compare_explanations",
    "deletion_curve",
    "random_deletion_curve",
]

FRACTIONS = tuple(i / 10 for i in range(11))  # 0, 0.1, ..., 1: delete up to every token

# name -> method(model, ids) -> (B, T) scores for the predicted class; higher = more important
EXPLANATIONS = {
    "rollout": attention_rollout,
    "attention": last_layer_attention,
    "gradient×input": gradient_times_input,
}


@dataclasses.dataclass
class DeletionCurve:
    """The model's probability of its prediction as the top-ranked tokens are deleted.

    Attributes (NumPy arrays):
        fractions: the fractions f of each row's deletable tokens deleted, (F,), increasing.
        probabilities: p_b(f), (B, F): row b's probability of class ``target[b]``.
        target: the class c_b whose probability is read, (B,): the prediction on the whole row.
        deleted: how many tokens were deleted, (B, F).

    Properties: ``curve`` (F,), the mean over rows; ``aucs`` (B,), each row's normalised area;
    ``auc``, their mean (lower = more faithful); ``sem``, its standard error.
    """

    fractions: object
    probabilities: object
    target: object
    deleted: object

    @property
    def curve(self):
        """The mean curve over the rows, (F,)."""
        return self.probabilities.mean(axis=0)

    @property
    def aucs(self):
        """Each row's area under p_b(f) divided by f_max − f_min (trapezoid rule), (B,)."""
        heights = (self.probabilities[:, 1:] + self.probabilities[:, :-1]) / 2  # (B, F - 1)
        widths = self.fractions[1:] - self.fractions[:-1]  # (F - 1,)
        return (heights * widths).sum(axis=1) / (self.fractions[-1] - self.fractions[0])

    @property
    def auc(self):
        """The deletion AUC of the set: the mean of ``aucs``, in [0, 1]; lower = more faithful."""
        return float(self.aucs.mean())

    @property
    def sem(self):
        """The standard error of ``auc`` over the rows (0 for a single row)."""
        aucs = self.aucs
        if len(aucs) < 2:
            return 0.0
        return float(aucs.std(ddof=1) / math.sqrt(len(aucs)))

    def __len__(self):
        return len(self.target)


def deletion_curve(model, ids, scores, fractions=FRACTIONS, target=None, batch_size=64):
    """The deletion curve of one explanation: delete each row's top-scored tokens (replaced by
    <pad>) for every fraction f, and read the probability of the predicted class.

    Args:
        model: an ``nn.SequenceClassifier`` with cls or mean pooling (the last-token pooling
            reads the position before the first padding, which deleting inside the text would
            move).
        ids: token ids (B, T) as the model reads them: <cls> first (unless causal), padding
            last.
        scores: (B, T) token scores, higher = more important; only the deletable positions
            (neither padding nor <cls>) are read, and they must be finite.
        fractions: increasing fractions in [0, 1], at least two (default 0, 0.1, ..., 1).
        target: the class whose probability is read, one int or B ints; default: the class the
            model predicts for each whole row.
        batch_size: rows per forward pass (the B·F variants are run in such chunks).

    Returns a ``DeletionCurve``. The model runs in eval mode without gradients and is put back in
    its mode.

    Shapes: ids (B, T), scores (B, T) -> probabilities (B, F).
    """
    ids = _check_inputs(model, ids, fractions, batch_size, "deletion_curve")
    fractions = _fractions(fractions, "deletion_curve")
    scores = backend.to_numpy(scores.data if isinstance(scores, Tensor) else scores)
    xp = backend.array_module(ids)
    scores = xp.asarray(scores, dtype="float64")
    deletable = _deletable(ids, model.encoder.pad_id)
    if scores.shape != ids.shape:
        raise ValueError(f"explain.deletion_curve: scores must have the shape of ids "
                         f"{ids.shape}, got {scores.shape}")
    if not xp.isfinite(scores[deletable]).all():
        raise ValueError("explain.deletion_curve: scores must be finite at every deletable "
                         "position (not padding, not <cls>)")
    target = _targets(model, ids, target, batch_size, "deletion_curve")
    return _curve(model, ids, scores, deletable, fractions, target, batch_size)


def random_deletion_curve(model, ids, fractions=FRACTIONS, draws=3, seed=0, target=None,
                          batch_size=64):
    """The baseline: the deletion curve of random rankings, averaged over ``draws`` rankings.

    Each draw scores every token uniformly at random (a private generator seeded with ``seed``,
    so the shared one is untouched and the same seed repeats the curve); the probabilities of
    the draws are averaged row by row. Arguments as ``deletion_curve``.

    Shapes: ids (B, T) -> probabilities (B, F).
    """
    ids = _check_inputs(model, ids, fractions, batch_size, "random_deletion_curve")
    fractions = _fractions(fractions, "random_deletion_curve")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"explain.random_deletion_curve: draws must be an int >= 1, got "
                         f"{draws!r}")
    deletable = _deletable(ids, model.encoder.pad_id)
    target = _targets(model, ids, target, batch_size, "random_deletion_curve")
    generator = backend.local_generator(seed)
    curves = [_curve(model, ids, generator.random(ids.shape), deletable, fractions, target,
                     batch_size) for _ in range(draws)]
    probabilities = sum(curve.probabilities for curve in curves) / draws  # (B, F)
    return dataclasses.replace(curves[0], probabilities=probabilities)


# --------------------------------------------------------------------------- a table of methods


@dataclasses.dataclass
class FaithfulnessTable:
    """Deletion curves of several explanations on the same inputs, with the random baseline.

    Attributes:
        curves: method name -> ``DeletionCurve`` (rows in the order of the inputs), the random
            baseline last, under ``baseline``.
        seconds: method name -> seconds spent (explaining and deleting).
        baseline: the name of the random baseline's row ("random").
    """

    curves: dict
    seconds: dict
    baseline: str = "random"

    @property
    def fractions(self):
        return next(iter(self.curves.values())).fractions

    def rows(self):
        """One dict per method: name, auc, sem, below_random (the share of inputs whose AUC is
        below the random baseline's on the same input), seconds, and the mean curve."""
        random_aucs = self.curves[self.baseline].aucs
        rows = []
        for name, curve in self.curves.items():
            below = float((curve.aucs < random_aucs).mean()) if name != self.baseline else None
            rows.append({"method": name, "auc": curve.auc, "sem": curve.sem,
                         "below_random": below, "seconds": self.seconds.get(name),
                         "curve": curve.curve})
        return rows

    def format(self, columns=(0.1, 0.2, 0.5)):
        """The table as Markdown: AUC ± standard error, the share of inputs below random, and the
        mean probability after deleting the fractions in ``columns`` (those that were run)."""
        fractions = [float(f) for f in self.fractions]
        shown = [f for f in columns if any(abs(f - g) < 1e-9 for g in fractions)]
        head = ["method", "deletion AUC (lower = more faithful)", "± s.e.", "below random"]
        head += [f"p after {f:.0%} deleted" for f in shown] + ["seconds"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in self.rows():
            cells = [row["method"], f"{row['auc']:.3f}", f"{row['sem']:.3f}",
                     "" if row["below_random"] is None else f"{row['below_random']:.0%}"]
            for f in shown:
                index = min(range(len(fractions)), key=lambda i: abs(fractions[i] - f))
                cells.append(f"{float(row['curve'][index]):.3f}")
            cells.append("" if row["seconds"] is None else f"{row['seconds']:.0f}")
            lines.append("| " + " | ".join(cells) + " |")
        n = len(next(iter(self.curves.values())))
        lines.append(f"\n{n} inputs; probability of the class predicted on the whole input; "
                     "deleted tokens replaced by <pad>.")
        return "\n".join(lines)

    def __str__(self):
        return self.format()


def compare_explanations(model, examples, methods=None, fractions=FRACTIONS, draws=3, seed=0,
                         batch_size=32, max_len=None, progress=None):
    """Deletion curves of several explanation methods and of random deletion, on a set of texts.

    Args:
        model: an ``nn.SequenceClassifier`` (cls or mean pooling).
        examples: token id lists, one per text, without <cls> (it is put first, as
            fine-tuning does, unless the classifier is causal).
        methods: name -> ``method(model, ids) -> (B, T) scores``; default ``EXPLANATIONS``
            (rollout, last-layer attention, gradient × input).
        fractions, draws, seed: as ``deletion_curve`` and ``random_deletion_curve``.
        batch_size: texts explained together; texts of similar length are batched together
            (their order is kept in the result).
        max_len: cut each text, <cls> included, to this many tokens (None: as given).
        progress: called with a line of text after each batch (None: quiet).

    Returns a ``FaithfulnessTable`` whose curves hold one row per example, in order.

    Shapes: each example (T_i,) ids -> curves with probabilities (len(examples), F).
    """
    if not isinstance(model, SequenceClassifier):
        raise TypeError(f"explain.compare_explanations: model must be an nn.SequenceClassifier, "
                        f"got {type(model).__name__}")
    methods = dict(EXPLANATIONS if methods is None else methods)
    if "random" in methods:
        raise ValueError("explain.compare_explanations: 'random' names the baseline row; give "
                         "the method another name")
    examples = [list(example) for example in examples]
    if not examples or any(len(example) == 0 for example in examples):
        raise ValueError("explain.compare_explanations: examples must be a non-empty list of "
                         "non-empty token id lists")
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]))  # similar lengths
    chunks = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    seeds = backend.spawn_seeds(seed, len(chunks))
    cls_id = None if model.causal else CLS_ID
    parts = {name: [] for name in [*methods, "random"]}
    seconds = dict.fromkeys(parts, 0.0)
    for number, (chunk, chunk_seed) in enumerate(zip(chunks, seeds), 1):
        batch = collate_classification([(examples[i], 0) for i in chunk], max_len=max_len,
                                       cls_id=cls_id)
        ids = batch.ids.numpy()  # (b, T)
        target = _targets(model, ids, None, batch_size, "compare_explanations")
        for name, method in methods.items():
            start = time.perf_counter()
            scores = method(model, ids)  # (b, T)
            parts[name].append(deletion_curve(model, ids, scores, fractions, target,
                                              batch_size * 2))
            seconds[name] += time.perf_counter() - start
        start = time.perf_counter()
        parts["random"].append(random_deletion_curve(model, ids, fractions, draws, chunk_seed,
                                                     target, batch_size * 2))
        seconds["random"] += time.perf_counter() - start
        if progress is not None:
            progress(f"compare_explanations: {min(number * batch_size, len(order))}/"
                     f"{len(order)} examples")
    curves = {name: _in_order(pieces, order) for name, pieces in parts.items()}
    return FaithfulnessTable(curves, seconds)


# --------------------------------------------------------------------------- the work


def _check_inputs(model, ids, fractions, batch_size, function):
    if not isinstance(model, SequenceClassifier):
        raise TypeError(f"explain.{function}: model must be an nn.SequenceClassifier, got "
                        f"{type(model).__name__}")
    if model.pooling == "last":
        raise ValueError(f"explain.{function}: the classifier pools the last token, the one "
                         "before the first <pad>; deleting by <pad> inside the text would move "
                         "that position. Use a cls- or mean-pooling classifier")
    if model.encoder.pad_id is None:
        raise ValueError(f"explain.{function}: the classifier's encoder has no pad_id, so it "
                         "cannot ignore a deleted token")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"explain.{function}: batch_size must be an int >= 1, got "
                         f"{batch_size!r}")
    return token_ids(ids, function, model.encoder.vocab_size)


def _fractions(fractions, function):
    values = [float(f) for f in fractions]
    if len(values) < 2 or any(not 0.0 <= f <= 1.0 for f in values) or \
            any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"explain.{function}: fractions must be at least two increasing "
                         f"numbers in [0, 1], got {tuple(fractions)}")
    return Tensor(values, dtype="float64").numpy()  # (F,)


def _deletable(ids, pad_id):
    """(B, T) bool: the text's tokens, neither padding nor <cls>."""
    return (ids != pad_id) & (ids != CLS_ID)


def _targets(model, ids, target, batch_size, function):
    """(B,) classes whose probability is read: ``target``, or the model's predictions."""
    xp = backend.array_module(ids)
    n_classes = model.classifier.weight.shape[1]  # Linear stores (in, out)
    if target is None:
        return _probabilities(model, ids, batch_size).argmax(axis=-1)  # (B,)
    target = backend.to_numpy(target.data if isinstance(target, Tensor) else xp.asarray(target))
    if target.ndim == 0:
        target = xp.full(ids.shape[0], target)
    if target.shape != (ids.shape[0],) or target.dtype.kind not in "iu" or \
            int(target.min()) < 0 or int(target.max()) >= n_classes:
        raise ValueError(f"explain.{function}: target must be a class in [0, {n_classes}) or "
                         f"{ids.shape[0]} of them (one per row), got {target.tolist()}")
    return target


def _probabilities(model, rows, batch_size):
    """softmax(model(rows)) in float64, run ``batch_size`` rows at a time: (N, C)."""
    xp = backend.array_module(rows)
    training = model.training
    outputs = []
    try:
        model.eval()
        with no_grad():
            for start in range(0, rows.shape[0], batch_size):
                chunk = Tensor(rows[start:start + batch_size])
                logits = backend.to_numpy(model(chunk).data).astype("float64")  # (n, C)
                logits -= logits.max(axis=-1, keepdims=True)
                weights = xp.exp(logits)
                outputs.append(weights / weights.sum(axis=-1, keepdims=True))
    finally:
        model.train(training)
    return xp.concatenate(outputs)  # (N, C)


def _curve(model, ids, scores, deletable, fractions, target, batch_size):
    """Delete the top ⌊f·n + ½⌋ deletable tokens of each row for each f; read p(target)."""
    xp = backend.array_module(ids)
    batch, length = ids.shape
    n = deletable.sum(axis=1)  # (B,)
    counts = xp.floor(fractions[None, :] * n[:, None] + 0.5).astype("int64")  # (B, F)
    ranked = xp.where(deletable, scores, -xp.inf)  # never delete padding or <cls>
    order = xp.argsort(-ranked, axis=1, kind="stable")  # (B, T): best first, ties by position
    rank = xp.empty_like(order)
    rank[xp.arange(batch)[:, None], order] = xp.arange(length)[None, :]  # rank of each position
    deleted = deletable[:, None, :] & (rank[:, None, :] < counts[:, :, None])  # (B, F, T)
    variants = xp.where(deleted, model.encoder.pad_id, ids[:, None, :])  # (B, F, T)
    probabilities = _probabilities(model, variants.reshape(-1, length), batch_size)  # (B·F, C)
    probabilities = probabilities.reshape(batch, len(fractions), -1)  # (B, F, C)
    chosen = probabilities[xp.arange(batch), :, target]  # (B, F)
    return DeletionCurve(fractions, chosen, target, counts)


def _in_order(pieces, order):
    """One DeletionCurve from per-batch curves whose rows came in ``order``."""
    xp = backend.array_module(pieces[0].probabilities)
    position = xp.argsort(xp.asarray(order))  # row i of the input is row position[i] of pieces
    joined = {name: xp.concatenate([getattr(piece, name) for piece in pieces])[position]
              for name in ("probabilities", "target", "deleted")}
    return DeletionCurve(pieces[0].fractions, **joined)
