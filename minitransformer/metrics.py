"""Evaluation metrics: accuracy, confusion matrices, perplexity, and corpus BLEU.

BLEU (Papineni et al. 2002) compares n-grams of a system's translations with references:

    p_n  = Σ_sentences Σ_ngrams min(count_hyp, count_ref)  /  Σ_sentences Σ_ngrams count_hyp
    BP   = 1 if c > r else exp(1 - r / c)        c, r: total hypothesis and reference lengths
    BLEU = 100 · BP · exp( (1/4) Σ_{n=1..4} log p_n )

Counts are summed over the whole corpus before dividing ("corpus BLEU", not an average of
sentence scores). ``bleu_tokenize`` splits text the way the common "13a" tokenizer does, so
scores are comparable with published numbers.
"""

import math
import re
from collections import Counter

__all__ = ["accuracy", "bleu_tokenize", "confusion_matrix", "corpus_bleu", "perplexity"]


def accuracy(predictions, labels):
    """The fraction of equal entries of two equally long sequences."""
    predictions, labels = list(predictions), list(labels)
    if len(predictions) != len(labels) or not labels:
        raise ValueError(f"accuracy: needs two equally long, non-empty sequences; got "
                         f"{len(predictions)} predictions and {len(labels)} labels")
    return sum(p == t for p, t in zip(predictions, labels)) / len(labels)


def confusion_matrix(predictions, labels, n_classes):
    """counts[true][predicted] as a list of lists (rows: true classes)."""
    counts = [[0] * n_classes for _ in range(n_classes)]
    for predicted, true in zip(predictions, labels):
        counts[int(true)][int(predicted)] += 1
    return counts


def perplexity(mean_loss):
    """e^loss: the effective number of equally likely choices per token (loss in nats)."""
    return math.exp(min(mean_loss, 700.0))


_PUNCTUATION = re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])")
_PERIOD_COMMA = [(re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
                 (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
                 (re.compile(r"([0-9])(-)"), r"\1 \2 ")]


def bleu_tokenize(text):
    """Split text into tokens like the "13a" tokenizer (mteval-v13a): punctuation apart from
    words, except periods and commas inside numbers. Returns a list of tokens."""
    text = text.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    text = text.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
    text = text.replace("&gt;", ">")
    text = _PUNCTUATION.sub(r" \1 ", f" {text} ")
    for pattern, replacement in _PERIOD_COMMA:
        text = pattern.sub(replacement, text)
    return text.split()


def _ngrams(tokens, order):
    return Counter(tuple(tokens[i:i + order]) for i in range(len(tokens) - order + 1))


def corpus_bleu(hypotheses, references, max_order=4, tokenize=None):
    """Corpus BLEU in [0, 100] of ``hypotheses`` against one reference each.

    Each hypothesis and reference is a string (split with ``tokenize``, by default
    ``bleu_tokenize``) or already a list of tokens (ids or strings). Returns a dict with
    ``bleu``, the n-gram ``precisions`` (in %), the ``brevity_penalty`` and both lengths.
    """
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ValueError(f"corpus_bleu: {len(hypotheses)} hypotheses but {len(references)} "
                         "references; give one reference per hypothesis")
    tokenize = tokenize or bleu_tokenize
    matches, totals = [0] * max_order, [0] * max_order
    hyp_length = ref_length = 0
    for hypothesis, reference in zip(hypotheses, references):
        hyp = tokenize(hypothesis) if isinstance(hypothesis, str) else list(hypothesis)
        ref = tokenize(reference) if isinstance(reference, str) else list(reference)
        hyp_length += len(hyp)
        ref_length += len(ref)
        for n in range(1, max_order + 1):
            hyp_counts, ref_counts = _ngrams(hyp, n), _ngrams(ref, n)
            matches[n - 1] += sum(min(c, ref_counts[g]) for g, c in hyp_counts.items())
            totals[n - 1] += max(len(hyp) - n + 1, 0)
    precisions = [100.0 * m / t if t else 0.0 for m, t in zip(matches, totals)]
    if hyp_length == 0:
        penalty = 0.0
    else:
        penalty = 1.0 if hyp_length > ref_length else math.exp(1 - ref_length / hyp_length)
    if min(matches) == 0:
        bleu = 0.0
    else:
        bleu = penalty * math.exp(sum(math.log(m / t) for m, t in zip(matches, totals))
                                  / max_order) * 100.0
    return {"bleu": bleu, "precisions": precisions, "brevity_penalty": penalty,
            "hyp_length": hyp_length, "ref_length": ref_length}
