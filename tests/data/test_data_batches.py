"""Batches: padding, causal-LM blocks, classification and seq2seq batches, masked-LM and span
corruption statistics, the DataLoader; and that the batches fit the nn models."""

import random

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn
from minitransformer.data import (
    BOS_ID,
    CLS_ID,
    EOS_ID,
    IGNORE_INDEX,
    MASK_ID,
    N_SPECIAL,
    PAD_ID,
    DataLoader,
    MaskedLMCollator,
    SpanCorruptionCollator,
    batch_indices,
    causal_lm_blocks,
    collate_causal_lm,
    collate_classification,
    collate_seq2seq,
    corrupt_spans,
    mask_tokens,
    pad_sequences,
)

# --------------------------------------------------------------------------- padding and LM


def test_pad_sequences_pads_right_to_the_longest_or_a_length():
    assert pad_sequences([[7, 8, 9], [10]]) == [[7, 8, 9], [10, PAD_ID, PAD_ID]]
    assert pad_sequences([[7]], pad_value=-1, length=3) == [[7, -1, -1]]
    with pytest.raises(ValueError, match="more than length=2"):
        pad_sequences([[7, 8, 9]], length=2)
    with pytest.raises(ValueError, match="the batch is empty"):
        pad_sequences([])


def test_causal_lm_blocks_overlap_by_one_token_so_every_token_is_a_target_once():
    blocks = causal_lm_blocks(range(10), block_size=3)
    assert blocks == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert causal_lm_blocks(range(6), block_size=3, stride=1)[1] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="3 ids cannot fill one block"):
        causal_lm_blocks(range(3), block_size=3)


def test_collate_causal_lm_shifts_targets_by_one():
    batch = collate_causal_lm([[7, 8, 9, 10], [11, 12]])
    assert batch.inputs.tolist() == [[7, 8, 9], [11, PAD_ID, PAD_ID]]
    assert batch.targets.tolist() == [[8, 9, 10], [12, IGNORE_INDEX, IGNORE_INDEX]]
    assert str(batch.inputs.dtype) == "int64"
    with pytest.raises(ValueError, match="at least 2 ids"):
        collate_causal_lm([[7]])


# --------------------------------------------------------------------------- classification


def test_collate_classification_truncates_prepends_cls_and_pads():
    batch = collate_classification([([7, 8, 9, 10], 1), ([11], 0)], max_len=4)
    assert batch.ids.tolist() == [[CLS_ID, 7, 8, 9], [CLS_ID, 11, PAD_ID, PAD_ID]]
    assert batch.labels.tolist() == [1, 0]
    assert batch.mask.shape == (2, 1, 1, 4) and str(batch.mask.dtype) == "bool"
    assert batch.mask.numpy()[1, 0, 0].tolist() == [True, True, False, False]
    ids, labels, mask = batch  # a named tuple unpacks too
    assert ids is batch.ids


def test_collate_classification_without_cls():
    batch = collate_classification([([7, 8, 9], 1)], max_len=2, cls_id=None)
    assert batch.ids.tolist() == [[7, 8]]


# --------------------------------------------------------------------------- seq2seq


def test_collate_seq2seq_shifts_with_bos_and_eos():
    batch = collate_seq2seq([([7, 8, 9], [10, 11]), ([7], [12])])
    assert batch.src.tolist() == [[7, 8, 9], [7, PAD_ID, PAD_ID]]
    assert batch.tgt_in.tolist() == [[BOS_ID, 10, 11], [BOS_ID, 12, PAD_ID]]
    assert batch.tgt_out.tolist() == [[10, 11, EOS_ID], [12, EOS_ID, IGNORE_INDEX]]
    assert batch.src_mask.shape == (2, 1, 1, 3)
    assert batch.tgt_mask.shape == (2, 1, 3, 3)
    causal = np.tril(np.ones((3, 3), dtype=bool))
    np.testing.assert_array_equal(batch.tgt_mask.numpy()[0, 0], causal)
    second = causal.copy()
    second[:, 2] = False  # the padded target position is hidden as a key
    np.testing.assert_array_equal(batch.tgt_mask.numpy()[1, 0], second)


def test_collate_seq2seq_truncates_to_the_maximum_lengths():
    batch = collate_seq2seq([([7, 8, 9, 10], [11, 12, 13, 14])], max_src_len=2, max_tgt_len=3)
    assert batch.src.tolist() == [[7, 8]]
    assert batch.tgt_in.tolist() == [[BOS_ID, 11, 12]]
    assert batch.tgt_out.tolist() == [[11, 12, EOS_ID]]


# --------------------------------------------------------------------------- masked LM


def test_masking_statistics_follow_bert():
    vocab_size = 50
    rng = random.Random(0)
    sequences = [[CLS_ID] + [rng.randrange(N_SPECIAL, vocab_size) for _ in range(40)]
                 + [EOS_ID, PAD_ID, PAD_ID] for _ in range(1000)]
    collate = MaskedLMCollator(vocab_size, seed=1)
    batch = collate(sequences)
    ids, labels = batch.ids.numpy(), batch.labels.numpy()
    original = np.array(sequences)
    chosen = labels != IGNORE_INDEX
    special = original < N_SPECIAL
    assert not (chosen & special).any()  # special tokens and padding are never chosen
    assert chosen.sum() / (~special).sum() == pytest.approx(0.15, abs=0.01)
    np.testing.assert_array_equal(labels[chosen], original[chosen])
    np.testing.assert_array_equal(ids[~chosen], original[~chosen])
    n = chosen.sum()
    to_mask = (ids[chosen] == MASK_ID).sum() / n
    kept = (ids[chosen] == original[chosen]).sum() / n
    assert to_mask == pytest.approx(0.8, abs=0.02)
    # 10% kept, plus the random replacements that happen to draw the original (1/43 of 10%)
    assert kept == pytest.approx(0.1 + 0.1 / (vocab_size - N_SPECIAL), abs=0.02)
    replaced = ids[chosen][(ids[chosen] != MASK_ID) & (ids[chosen] != original[chosen])]
    assert replaced.min() >= N_SPECIAL and replaced.max() < vocab_size


def test_masking_is_reproducible_from_the_seed():
    sequences = [[7, 8, 9, 10, 11, 12, 13, 14]] * 20
    first = MaskedLMCollator(20, seed=5)(sequences)
    second = MaskedLMCollator(20, seed=5)(sequences)
    assert first.ids.tolist() == second.ids.tolist()
    assert first.labels.tolist() == second.labels.tolist()


def test_mask_tokens_with_probability_one_masks_every_ordinary_token():
    ids, labels = mask_tokens([CLS_ID, 7, 8, EOS_ID], 20, random.Random(0), mask_prob=1.0,
                              replace_prob=1.0, random_prob=0.0)
    assert ids == [CLS_ID, MASK_ID, MASK_ID, EOS_ID]
    assert labels == [IGNORE_INDEX, 7, 8, IGNORE_INDEX]


def test_masked_lm_labels_work_with_cross_entropy_ignore_index():
    batch = MaskedLMCollator(20, seed=0, mask_prob=0.5)([[7, 8, 9, 10, 11, 12]] * 4)
    logits = mt.randn(4, 6, 20)
    loss = F.cross_entropy(logits, batch.labels, ignore_index=IGNORE_INDEX)
    chosen = batch.labels.numpy() != IGNORE_INDEX
    log_p = F.log_softmax(logits, axis=-1).numpy()
    expected = -log_p[chosen, batch.labels.numpy()[chosen]].mean()
    assert loss.item() == pytest.approx(expected, rel=1e-5)


# --------------------------------------------------------------------------- span corruption


def test_corrupt_spans_replaces_spans_by_sentinels_and_targets_restore_them():
    rng = random.Random(0)
    for _ in range(200):
        ids = [rng.randrange(7, 50) for _ in range(rng.randint(2, 60))]
        inputs, targets = corrupt_spans(ids, rng, sentinel_start=50)
        sentinels = [i for i in inputs if i >= 50]
        assert sentinels == list(range(50, 50 + len(sentinels))) and sentinels
        assert [i for i in targets if i >= 50] == sentinels
        # put the spans back: the original sequence returns
        spans, current = {}, None
        for token in targets:
            if token >= 50:
                current = token
                spans[current] = []
            else:
                spans[current].append(token)
        restored = [t for token in inputs for t in (spans[token] if token >= 50 else [token])]
        assert restored == ids
        assert all(spans.values())  # no empty span
        n_noise = len(ids) - len([i for i in inputs if i < 50])
        assert n_noise == min(max(1, round(len(ids) * 0.15)), len(ids) - 1)


def test_span_corruption_noise_density_and_mean_span_length():
    rng = random.Random(1)
    noise, spans, total = 0, 0, 0
    for _ in range(500):
        ids = list(range(7, 107))
        inputs, targets = corrupt_spans(ids, rng, sentinel_start=200)
        n_spans = sum(1 for i in inputs if i >= 200)
        noise += len(targets) - n_spans
        spans += n_spans
        total += len(ids)
    assert noise / total == pytest.approx(0.15, abs=0.01)
    assert noise / spans == pytest.approx(3.0, abs=0.3)


def test_span_corruption_collator_gives_seq2seq_batches_with_sentinels_past_the_vocabulary():
    collate = SpanCorruptionCollator(vocab_size=30, seed=0, n_sentinels=10)
    assert collate.model_vocab_size == 40 and collate.sentinel_id(2) == 32
    batch = collate([list(range(7, 27)), list(range(7, 17))])
    assert batch.src.shape[0] == 2 and batch.tgt_in.numpy()[:, 0].tolist() == [BOS_ID, BOS_ID]
    assert batch.src.numpy().max() < 40 and (batch.src.numpy() >= 30).any()
    assert corrupt_spans([7], random.Random(0), 30) == ([7], [])


# --------------------------------------------------------------------------- loader


def test_batch_indices_cover_every_example_once_and_drop_last():
    batches = batch_indices(10, 3, shuffle=True, seed=0)
    assert sorted(i for b in batches for i in b) == list(range(10))
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert [len(b) for b in batch_indices(10, 3, drop_last=True)] == [3, 3, 3]
    assert batch_indices(5, 2) == [[0, 1], [2, 3], [4]]


def test_shuffling_is_seeded_and_changes_with_the_epoch():
    assert batch_indices(50, 5, True, seed=1) == batch_indices(50, 5, True, seed=1)
    assert batch_indices(50, 5, True, seed=1) != batch_indices(50, 5, True, seed=2)
    assert batch_indices(50, 5, True, seed=1, epoch=0) != batch_indices(50, 5, True, seed=1,
                                                                         epoch=1)


def test_length_bucketing_groups_similar_lengths():
    rng = random.Random(0)
    lengths = [rng.randint(1, 100) for _ in range(1000)]
    bucketed = batch_indices(1000, 10, True, seed=0, lengths=lengths, bucket_size=10)
    plain = batch_indices(1000, 10, True, seed=0)

    def padding(batches):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b)
                   for b in batches)

    assert padding(bucketed) < padding(plain) / 5
    assert sorted(i for b in bucketed for i in b) == list(range(1000))


def test_dataloader_iterates_epochs_with_collate_and_len():
    data = [([7 + i % 5] * (1 + i % 4), i % 2) for i in range(23)]
    loader = DataLoader(data, 5, collate_fn=collate_classification, shuffle=True, seed=3,
                        sort_key=lambda example: len(example[0]))
    assert len(loader) == 5
    first = [b.labels.tolist() for b in loader]
    second = [b.labels.tolist() for b in loader]
    assert len(first) == 5 and first != second  # a new order each epoch
    loader.set_epoch(0)
    assert [b.labels.tolist() for b in loader] == first
    assert len(DataLoader(data, 5, drop_last=True)) == 4
    assert list(DataLoader(data[:3], 2)) == [data[:2], data[2:3]]


def test_dataloader_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        DataLoader([1, 2], 0)
    with pytest.raises(TypeError, match="must support len"):
        DataLoader(iter([1, 2]), 1)


# --------------------------------------------------------------------------- batches fit the models


def small_encoder(vocab_size):
    return nn.TextEncoder(vocab_size, d_model=16, n_heads=2, n_layers=1, d_ff=32, dropout=0.0,
                          max_len=32)


def test_classification_batch_fits_sequence_classifier():
    batch = collate_classification([([7, 8, 9], 1), ([10], 0)], max_len=8)
    model = nn.SequenceClassifier(small_encoder(20), 2).eval()
    logits = model(batch.ids, batch.mask)
    assert logits.shape == (2, 2)
    np.testing.assert_allclose(logits.numpy(), model(batch.ids).numpy(), rtol=1e-5)
    F.cross_entropy(logits, batch.labels).backward()


def test_masked_lm_batch_fits_masked_language_model():
    batch = MaskedLMCollator(20, seed=0)([[7, 8, 9, 10], [11, 12]])
    logits = nn.MaskedLanguageModel(small_encoder(20))(batch.ids, batch.mask)
    assert logits.shape == (2, 4, 20)
    F.cross_entropy(logits, batch.labels, ignore_index=IGNORE_INDEX).backward()


def test_causal_lm_batch_fits_causal_language_model():
    batch = collate_causal_lm(causal_lm_blocks(range(7, 40), block_size=8))
    model = nn.CausalLanguageModel(50, d_model=16, n_heads=2, n_layers=1, d_ff=32, dropout=0.0)
    logits = model(batch.inputs)
    assert logits.shape == (4, 8, 50)
    F.cross_entropy(logits, batch.targets, ignore_index=IGNORE_INDEX).backward()


def test_seq2seq_batch_fits_the_transformer_and_padding_changes_nothing():
    model = nn.Transformer(20, 20, d_model=16, n_heads=2, n_encoder_layers=1,
                           n_decoder_layers=1, d_ff=32, dropout=0.0)
    model.eval()
    batch = collate_seq2seq([([7, 8, 9], [10, 11]), ([7], [12])])
    logits = model(batch.src, batch.tgt_in, batch.src_mask, batch.tgt_mask)
    assert logits.shape == (2, 3, 20)
    alone = collate_seq2seq([([7], [12])])
    logits_alone = model(alone.src, alone.tgt_in, alone.src_mask, alone.tgt_mask)
    np.testing.assert_allclose(logits.numpy()[1, :2], logits_alone.numpy()[0], atol=1e-5)
    loss = F.cross_entropy(logits, batch.tgt_out, ignore_index=IGNORE_INDEX)
    loss.backward()
