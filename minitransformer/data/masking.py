"""Corrupting text for self-supervised pretraining: BERT's masked LM and T5's span corruption.

Masked LM (Devlin et al. 2019, section 3.1). Each token that is not special is chosen with
probability ``mask_prob`` (15%), independently; a chosen token becomes ``<mask>`` 80% of the time,
a random non-special token 10%, and stays itself 10% (so the model cannot learn that only
``<mask>`` positions matter). Its label is the original id; every other label is IGNORE_INDEX.
Special tokens (``<pad>``, ``<cls>``, ...) are never chosen.

Span corruption (Raffel et al. 2020, section 3.1.4). About ``noise_density`` (15%) of a sequence's
tokens, in spans of mean length ``mean_span_length`` (3), are cut out; each span is replaced in
the input by one *sentinel* token, and the target lists each sentinel followed by the tokens it
replaced:

    input   the  cat  <s0>  on  the  <s1>          (s0 = "sat", s1 = "mat")
    target  <s0> sat  <s1>  mat

Sentinels are extra ids after the tokenizer's vocabulary: sentinel k is ``vocab_size + k``, so
the model's vocabulary must be ``vocab_size + n_sentinels``
(``SpanCorruptionCollator.model_vocab_size``).
Deviation: T5 counts its sentinels down from the end of its vocabulary; we count up past it, so
the tokenizer needs no reserved ids.

Randomness comes from a ``random.Random`` each collator owns, seeded at construction, so a seed
reproduces the exact corruption sequence.
"""

import random
from typing import NamedTuple

from minitransformer.data.batches import (
    IGNORE_INDEX,
    Seq2SeqBatch,
    collate_seq2seq,
    pad_sequences,
)
from minitransformer.data.tokenizer import MASK_ID, N_SPECIAL, PAD_ID
from minitransformer.functional import padding_mask
from minitransformer.tensor import Tensor, tensor

__all__ = [
    "MaskedLMBatch",
    "MaskedLMCollator",
    "SpanCorruptionCollator",
    "corrupt_spans",
    "mask_tokens",
]

class MaskedLMBatch(NamedTuple):
    """ids (B, T) with some tokens corrupted; labels (B, T): the original id where chosen,
    IGNORE_INDEX elsewhere; mask (B, 1, 1, T) True at real tokens."""

    ids: Tensor
    labels: Tensor
    mask: Tensor


def mask_tokens(ids, vocab_size, rng, mask_prob=0.15, replace_prob=0.8, random_prob=0.1):
    """One sequence -> (corrupted ids, labels), BERT's recipe (see the module docstring).

    ``replace_prob`` of the chosen become <mask>, ``random_prob`` a random non-special token,
    the rest keep their id. Ids below N_SPECIAL are never chosen.
    """
    corrupted, labels = [], []
    for token in ids:
        if token < N_SPECIAL or rng.random() >= mask_prob:
            corrupted.append(token)
            labels.append(IGNORE_INDEX)
            continue
        labels.append(token)
        draw = rng.random()
        if draw < replace_prob:
            corrupted.append(MASK_ID)
        elif draw < replace_prob + random_prob:
            corrupted.append(rng.randrange(N_SPECIAL, vocab_size))
        else:
            corrupted.append(token)
    return corrupted, labels


class MaskedLMCollator:
    """Id sequences -> MaskedLMBatch, with BERT's masking. Use as a DataLoader's collate_fn.

    Sequences are cut to ``max_len`` and padded to the longest in the batch.
    """

    def __init__(self, vocab_size, seed=0, mask_prob=0.15, replace_prob=0.8, random_prob=0.1,
                 max_len=None, pad_id=PAD_ID):
        if vocab_size <= N_SPECIAL:
            raise ValueError(f"MaskedLMCollator: vocab_size must exceed the {N_SPECIAL} special "
                             f"tokens, got {vocab_size}")
        for name, value in (("mask_prob", mask_prob), ("replace_prob", replace_prob),
                            ("random_prob", random_prob)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"MaskedLMCollator: {name} must lie in [0, 1], got {value}")
        if replace_prob + random_prob > 1.0:
            raise ValueError(f"MaskedLMCollator: replace_prob + random_prob = "
                             f"{replace_prob + random_prob} exceeds 1")
        self.vocab_size, self.max_len, self.pad_id = vocab_size, max_len, pad_id
        self.mask_prob, self.replace_prob, self.random_prob = mask_prob, replace_prob, random_prob
        self.rng = random.Random(seed)

    def __call__(self, sequences):
        rows, label_rows = [], []
        for ids in sequences:
            ids = list(ids) if self.max_len is None else list(ids)[:self.max_len]
            corrupted, labels = mask_tokens(ids, self.vocab_size, self.rng, self.mask_prob,
                                            self.replace_prob, self.random_prob)
            rows.append(corrupted)
            label_rows.append(labels)
        ids = tensor(pad_sequences(rows, self.pad_id))
        labels = tensor(pad_sequences(label_rows, IGNORE_INDEX))
        return MaskedLMBatch(ids, labels, padding_mask(ids, self.pad_id))


def _segments(total, count, rng):
    """``count`` positive ints summing to ``total``, uniformly among such splits."""
    cuts = sorted(rng.sample(range(1, total), count - 1))
    return [end - start for start, end in zip([0] + cuts, cuts + [total])]


def corrupt_spans(ids, rng, sentinel_start, noise_density=0.15, mean_span_length=3.0,
                  max_spans=100):
    """One sequence -> (input ids, target ids) for T5's span corruption.

    The number of noise tokens is round(len * noise_density), at least 1 and at most len - 1;
    they form round(noise / mean_span_length) spans (at least 1, at most ``max_spans``), placed
    at random among the kept tokens. Span k is replaced by ``sentinel_start + k``.
    A sequence of fewer than 2 tokens cannot be corrupted: it returns (ids, []).
    """
    ids = list(ids)
    length = len(ids)
    if length < 2:
        return ids, []
    n_noise = min(max(1, round(length * noise_density)), length - 1)
    n_keep = length - n_noise
    n_spans = max(1, min(round(n_noise / mean_span_length), n_noise, n_keep + 1, max_spans))
    noise = _segments(n_noise, n_spans, rng)
    # n_spans + 1 runs of kept tokens around the spans: inner ones >= 1, the two ends >= 0
    keep = _segments(n_keep + 2, n_spans + 1, rng)
    keep[0] -= 1
    keep[-1] -= 1
    inputs, targets, position = [], [], 0
    for k in range(n_spans):
        inputs.extend(ids[position:position + keep[k]])
        position += keep[k]
        sentinel = sentinel_start + k
        inputs.append(sentinel)
        targets.append(sentinel)
        targets.extend(ids[position:position + noise[k]])
        position += noise[k]
    inputs.extend(ids[position:])
    return inputs, targets


class SpanCorruptionCollator:
    """Id sequences -> Seq2SeqBatch for T5-style denoising (see the module docstring).

    ``model_vocab_size`` (= vocab_size + n_sentinels) is the vocabulary the model needs.
    Targets get <bos>/<eos> as in ``collate_seq2seq``.
    """

    def __init__(self, vocab_size, seed=0, noise_density=0.15, mean_span_length=3.0,
                 n_sentinels=100, max_len=None, pad_id=PAD_ID):
        if not 0.0 < noise_density < 1.0:
            raise ValueError(f"SpanCorruptionCollator: noise_density must lie in (0, 1), got "
                             f"{noise_density}")
        if mean_span_length < 1:
            raise ValueError(f"SpanCorruptionCollator: mean_span_length must be >= 1, got "
                             f"{mean_span_length}")
        self.vocab_size, self.n_sentinels = vocab_size, n_sentinels
        self.noise_density, self.mean_span_length = noise_density, mean_span_length
        self.max_len, self.pad_id = max_len, pad_id
        self.rng = random.Random(seed)

    @property
    def model_vocab_size(self):
        return self.vocab_size + self.n_sentinels

    def sentinel_id(self, k):
        """The id of sentinel k (0 <= k < n_sentinels)."""
        if not 0 <= k < self.n_sentinels:
            raise ValueError(f"SpanCorruptionCollator.sentinel_id: k must lie in "
                             f"[0, {self.n_sentinels}), got {k}")
        return self.vocab_size + k

    def __call__(self, sequences) -> Seq2SeqBatch:
        pairs = []
        for ids in sequences:
            ids = list(ids) if self.max_len is None else list(ids)[:self.max_len]
            pairs.append(corrupt_spans(ids, self.rng, self.vocab_size, self.noise_density,
                                       self.mean_span_length, self.n_sentinels))
        return collate_seq2seq(pairs, pad_id=self.pad_id)
