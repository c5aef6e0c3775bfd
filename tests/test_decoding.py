"""Decoding: the cache changes nothing but speed; beam search is exact when wide; sampling
filters; greedy is beam search of width 1."""

import itertools
import math

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import decoding, nn

BOS, EOS = 1, 2


def model(seed=0, vocab=9, **options):
    mt.set_default_dtype("float64")
    mt.manual_seed(seed)
    settings = dict(d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=2, d_ff=32,
                    dropout=0.1, max_len=32)
    settings.update(options)
    built = nn.Transformer(vocab, vocab, **settings).eval()
    mt.set_default_dtype("float32")
    return built


SRC = mt.tensor([[3, 4, 5, 0], [6, 7, 8, 3]])


@pytest.mark.parametrize("norm_first", [False, True])
def test_cached_and_uncached_decoding_give_the_same_logits(norm_first):
    transformer = model(norm_first=norm_first)
    mask = F.padding_mask(SRC, 0)
    memory = transformer.encode(SRC, mask)
    tokens = [[BOS, 4, 6, 3, 7, 5], [BOS, 8, 8, 2, 4, 4]]
    full = transformer.project(transformer.decode(mt.tensor(tokens), memory, None, mask))
    cache = transformer.new_cache()
    for t in range(len(tokens[0])):
        step = transformer.project(transformer.decode(mt.tensor([row[t:t + 1] for row in tokens]),
                                                      memory, None, mask, cache))
        np.testing.assert_allclose(step.numpy()[:, 0], full.numpy()[:, t], rtol=1e-10,
                                   atol=1e-10)
    assert cache.length == len(tokens[0])


def test_cached_causal_lm_logits_match():
    mt.set_default_dtype("float64")
    mt.manual_seed(0)
    lm = nn.CausalLanguageModel(9, d_model=16, n_heads=2, n_layers=2, d_ff=32).eval()
    mt.set_default_dtype("float32")
    ids = [[3, 1, 4, 1, 5, 2]]
    full = lm(mt.tensor(ids)).numpy()
    cache = lm.new_cache()
    first = lm(mt.tensor([ids[0][:3]]), cache).numpy()  # a prompt, then one token at a time
    np.testing.assert_allclose(first, full[:, :3], rtol=1e-10, atol=1e-10)
    for t in range(3, 6):
        step = lm(mt.tensor([ids[0][t:t + 1]]), cache).numpy()
        np.testing.assert_allclose(step[:, 0], full[:, t], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_equals_beam_search_of_width_one(use_cache):
    transformer = model(seed=3)
    greedy = decoding.greedy(transformer, SRC, 7, BOS, EOS, use_cache=use_cache)
    beam = decoding.beam_search(transformer, SRC, 1, 7, BOS, EOS, length_penalty=0.0,
                                use_cache=use_cache)
    assert greedy == beam


def test_width_one_is_greedy_even_when_an_eos_ranks_second():
    # With a 5-token vocabulary <eos> is often the runner-up: an <eos> outside the top K must
    # not finish a hypothesis, or a short output that greedy passed by could win on raw score.
    src = mt.tensor([[3, 4, 3, 4], [4, 4, 3, 0]])
    for seed in range(12):
        transformer = model(seed=seed, vocab=5)
        greedy = decoding.greedy(transformer, src, 8, BOS, EOS)
        assert decoding.beam_search(transformer, src, 1, 8, BOS, EOS, length_penalty=0.0) == \
            greedy, f"seed {seed}"


def test_greedy_output_contract():
    transformer = model(seed=1)
    outputs = decoding.greedy(transformer, SRC, 5, BOS, EOS)
    assert len(outputs) == 2
    for ids in outputs:
        assert 1 <= len(ids) <= 5 and BOS not in ids[:1]
        assert EOS not in ids[:-1]  # generation stops at eos
        assert ids[-1] == EOS or len(ids) == 5


def brute_force_best(transformer, src, max_len, alpha):
    """Score every possible output (ids ending in eos, or max_len ids) exactly."""
    mask = F.padding_mask(src, 0)
    memory = transformer.encode(src, mask)
    vocab = transformer.tgt_embed.num_embeddings
    best, best_ids = -math.inf, None
    for length in range(1, max_len + 1):
        for ids in itertools.product(range(vocab), repeat=length):
            if EOS in ids[:-1] or (length < max_len and ids[-1] != EOS):
                continue
            tokens = mt.tensor([[BOS, *ids]])
            log_p = F.log_softmax(transformer.project(
                transformer.decode(tokens, memory, None, mask)), axis=-1).numpy()[0]
            raw = sum(log_p[t, token] for t, token in enumerate(ids))
            score = raw / length**alpha
            if score > best:
                best, best_ids = score, list(ids)
    return best_ids


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_a_wide_beam_finds_what_brute_force_finds(alpha):
    transformer = model(seed=5, vocab=4, d_model=8, n_decoder_layers=1, d_ff=16)
    src = mt.tensor([[3, 1, 2]])
    expected = brute_force_best(transformer, src, 3, alpha)
    found = decoding.beam_search(transformer, src, beam_size=64, max_len=3, bos_id=BOS,
                                 eos_id=EOS, length_penalty=alpha)
    assert found == [expected]


def test_sampling_is_reproducible_and_filters():
    transformer = model(seed=2)
    first = decoding.sample(transformer, SRC, 6, BOS, EOS, seed=7)
    assert first == decoding.sample(transformer, SRC, 6, BOS, EOS, seed=7)
    assert first == decoding.sample(transformer, SRC, 6, BOS, EOS, seed=7, use_cache=False)
    greedy = decoding.greedy(transformer, SRC, 6, BOS, EOS)
    assert decoding.sample(transformer, SRC, 6, BOS, EOS, top_k=1, seed=1) == greedy
    assert decoding.sample(transformer, SRC, 6, BOS, EOS, top_p=1e-9, seed=1) == greedy


def test_filtering_keeps_the_top_k_and_the_nucleus():
    logits = mt.tensor([[2.0, 1.0, 0.0, -1.0]]).data
    top2 = decoding._filter_logits(logits, 2, None)
    assert np.isfinite(top2).tolist() == [[True, True, False, False]]
    probabilities = np.exp(logits) / np.exp(logits).sum()  # 0.64, 0.24, 0.09, 0.03
    nucleus = decoding._filter_logits(logits, None, 0.8)
    assert np.isfinite(nucleus).tolist() == [[True, True, False, False]]
    assert probabilities[0, :2].sum() >= 0.8


def test_generate_continues_a_prompt():
    mt.manual_seed(0)
    lm = nn.CausalLanguageModel(9, d_model=16, n_heads=2, n_layers=2, d_ff=32)
    greedy = decoding.generate(lm, [[1, 2, 3]], 5, temperature=0)
    assert greedy == decoding.generate(lm, [[1, 2, 3]], 5, temperature=0, use_cache=False)
    sampled = decoding.generate(lm, [[1, 2, 3], [4, 5, 6]], 4, top_p=0.9, seed=3)
    assert len(sampled) == 2 and all(len(row) == 4 for row in sampled)
    assert lm.training  # the mode is restored


def test_decoding_errors():
    transformer = model()
    with pytest.raises(ValueError, match="max_len must be at least 1"):
        decoding.greedy(transformer, SRC, 0, BOS, EOS)
    with pytest.raises(ValueError, match="beam_size must be positive"):
        decoding.beam_search(transformer, SRC, 0, 5, BOS, EOS)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        decoding.sample(transformer, SRC, 5, BOS, EOS, temperature=-1)


def test_decoding_longer_than_the_model_can_encode_is_refused():
    transformer = model(max_len=8)
    with pytest.raises(ValueError, match="max_len=9 needs 9 decoder positions.*at most 8"):
        decoding.greedy(transformer, SRC, 9, BOS, EOS)
    assert len(decoding.greedy(transformer, SRC, 8, BOS, EOS)[0]) <= 8


def test_generation_longer_than_the_context_slides_a_window():
    mt.manual_seed(0)
    lm = nn.CausalLanguageModel(9, d_model=16, n_heads=2, n_layers=1, d_ff=32, max_len=6)
    out = decoding.generate(lm, [[1, 2, 3, 4]], 10, temperature=0, max_context=6)
    assert len(out[0]) == 10
    with pytest.raises(mt.ShapeError, match="max_len is 6"):
        decoding.generate(lm, [[1, 2, 3, 4]], 10, temperature=0)  # without the window
