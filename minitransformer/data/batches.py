"""Batches ready for the models: lists of token ids in, padded id Tensors and masks out.

Conventions (the same in every batch):
- ids are int64 Tensors, batch first: (B, T);
- padding is ``<pad>`` (id 0) on the right;
- masks are bool Tensors, True = may attend, from ``F.padding_mask`` / ``F.causal_mask``;
- a target that must not count in the loss is ``IGNORE_INDEX`` (-100): padding, and in masked-LM
  every position that was not chosen. Pass it on:
  ``F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX)``.
  (-100 is PyTorch's default; it can never be a real id, unlike ``<pad>``'s 0.)

Batches are named tuples, so both ``batch.ids`` and ``ids, labels, mask = batch`` work.
"""

from typing import NamedTuple

from minitransformer.data.tokenizer import BOS_ID, CLS_ID, EOS_ID, PAD_ID
from minitransformer.functional import causal_mask, padding_mask
from minitransformer.tensor import Tensor, tensor

__all__ = [
    "ClassificationBatch",
    "IGNORE_INDEX",
    "LMBatch",
    "Seq2SeqBatch",
    "causal_lm_blocks",
    "collate_causal_lm",
    "collate_classification",
    "collate_seq2seq",
    "pad_sequences",
]

IGNORE_INDEX = -100


class LMBatch(NamedTuple):
    """Causal LM: ``targets[b, t]`` is the token after ``inputs[b, t]``. Both (B, T)."""

    inputs: Tensor
    targets: Tensor


class ClassificationBatch(NamedTuple):
    """ids (B, T), labels (B,), mask (B, 1, 1, T) True at real tokens."""

    ids: Tensor
    labels: Tensor
    mask: Tensor


class Seq2SeqBatch(NamedTuple):
    """Encoder-decoder: ``src`` (B, S); decoder input ``tgt_in`` = <bos> + y and its targets
    ``tgt_out`` = y + <eos>, both (B, T); ``src_mask`` (B, 1, 1, S) hides source padding (use it
    as memory_mask too); ``tgt_mask`` (B, 1, T, T) is causal and hides target padding."""

    src: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    src_mask: Tensor
    tgt_mask: Tensor


def _check_sequences(sequences, function):
    sequences = [list(seq) for seq in sequences]
    if not sequences:
        raise ValueError(f"{function}: the batch is empty")
    return sequences


def _truncate(seq, max_len):
    return seq if max_len is None else seq[:max_len]


def pad_sequences(sequences, pad_value=PAD_ID, length=None):
    """Right-pad id lists to one length (``length``, or the longest) -> list of lists."""
    sequences = _check_sequences(sequences, "pad_sequences")
    longest = max(len(seq) for seq in sequences)
    if length is None:
        length = longest
    elif longest > length:
        raise ValueError(f"pad_sequences: a sequence has {longest} ids, more than length={length}")
    return [seq + [pad_value] * (length - len(seq)) for seq in sequences]


def causal_lm_blocks(ids, block_size, stride=None):
    """Cut one long id stream into blocks of ``block_size + 1`` ids (inputs and the next-token
    targets of ``block_size`` positions). Block k starts at k * stride (default block_size, so
    every token is a target once). A tail too short for a block is dropped."""
    ids = list(ids)
    stride = block_size if stride is None else stride
    if block_size < 1 or stride < 1:
        raise ValueError(f"causal_lm_blocks: block_size and stride must be >= 1, got "
                         f"{block_size} and {stride}")
    if len(ids) < block_size + 1:
        raise ValueError(f"causal_lm_blocks: {len(ids)} ids cannot fill one block of "
                         f"block_size + 1 = {block_size + 1}")
    return [ids[start:start + block_size + 1]
            for start in range(0, len(ids) - block_size, stride)]


def collate_causal_lm(sequences, pad_id=PAD_ID):
    """Sequences (each at least 2 ids; blocks or padded sentences) -> LMBatch.

    inputs = seq[:-1] padded with ``pad_id``; targets = seq[1:] padded with IGNORE_INDEX.
    Shapes: (B, T) each, T = the longest sequence - 1.
    """
    sequences = _check_sequences(sequences, "collate_causal_lm")
    short = [len(seq) for seq in sequences if len(seq) < 2]
    if short:
        raise ValueError(f"collate_causal_lm: every sequence needs at least 2 ids, got one of "
                         f"{short[0]}")
    inputs = pad_sequences([seq[:-1] for seq in sequences], pad_id)
    targets = pad_sequences([seq[1:] for seq in sequences], IGNORE_INDEX)
    return LMBatch(tensor(inputs), tensor(targets))


def collate_classification(examples, max_len=None, pad_id=PAD_ID, cls_id=CLS_ID):
    """(ids, label) pairs -> ClassificationBatch.

    Each sequence is cut to ``max_len - 1`` ids, ``<cls>`` goes first (``cls_id=None``: none,
    then the cut is ``max_len``), and the batch is padded to its longest sequence.
    Shapes: ids (B, T), labels (B,), mask (B, 1, 1, T).
    """
    examples = _check_sequences(examples, "collate_classification")
    if max_len is not None and max_len < 2:
        raise ValueError(f"collate_classification: max_len must be >= 2, got {max_len}")
    rows, labels = [], []
    for index, example in enumerate(examples):
        if len(example) != 2:
            raise ValueError(f"collate_classification: example {index} is not an (ids, label) "
                             "pair")
        ids, label = example
        if cls_id is None:
            rows.append(_truncate(list(ids), max_len))
        else:
            rows.append([cls_id] + _truncate(list(ids), None if max_len is None else max_len - 1))
        labels.append(int(label))
    ids = tensor(pad_sequences(rows, pad_id))
    return ClassificationBatch(ids, tensor(labels), padding_mask(ids, pad_id))


def collate_seq2seq(pairs, max_src_len=None, max_tgt_len=None, pad_id=PAD_ID, bos_id=BOS_ID,
                    eos_id=EOS_ID):
    """(source ids, target ids) pairs -> Seq2SeqBatch (teacher forcing).

    Target y becomes decoder input <bos> + y and decoder targets y + <eos> (y cut so both fit in
    ``max_tgt_len``); sources are cut to ``max_src_len``.
    Shapes: src (B, S); tgt_in, tgt_out (B, T); src_mask (B, 1, 1, S); tgt_mask (B, 1, T, T).
    """
    pairs = _check_sequences(pairs, "collate_seq2seq")
    if max_tgt_len is not None and max_tgt_len < 1:
        raise ValueError(f"collate_seq2seq: max_tgt_len must be >= 1, got {max_tgt_len}")
    sources, inputs, outputs = [], [], []
    for src, tgt in pairs:
        y = _truncate(list(tgt), None if max_tgt_len is None else max_tgt_len - 1)
        sources.append(_truncate(list(src), max_src_len))
        inputs.append([bos_id] + y)
        outputs.append(y + [eos_id])
    if min(len(src) for src in sources) == 0:
        raise ValueError("collate_seq2seq: a source sequence is empty")
    src = tensor(pad_sequences(sources, pad_id))
    tgt_in = tensor(pad_sequences(inputs, pad_id))
    tgt_out = tensor(pad_sequences(outputs, IGNORE_INDEX))
    tgt_mask = causal_mask(tgt_in.shape[1]) & padding_mask(tgt_in, pad_id)  # (B, 1, T, T)
    return Seq2SeqBatch(src, tgt_in, tgt_out, padding_mask(src, pad_id), tgt_mask)
