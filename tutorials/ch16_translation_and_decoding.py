# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 16 — Translation and decoding: greedy, beam search, sampling and the KV cache
#
# A trained encoder-decoder gives, for a source x and a prefix $y_{<t}$, a distribution
# $p(y_t \mid y_{<t}, x)$ over the next token. Training reads all target positions at once
# (teacher forcing, chapter 12); *using* the model means choosing tokens one at a time and
# feeding each back in. How we choose — the most likely token, the best few partial outputs, or
# a random draw — changes the output, and how we run the loop changes its cost. This chapter
# opens up `mt.decoding`: greedy search, beam search with a length penalty, sampling with
# temperature, top-k and top-p, and the key/value cache that makes each step cheap. It ends
# with BLEU, the metric translation is scored by, and with real translation on Multi30k.
#
# **Learning objectives.** After this chapter you can
#
# 1. write autoregressive decoding as a loop over `encode`, `decode` and `project`;
# 2. write one beam-search step from log-probabilities, say when beam size 1 is greedy search
#    and what the length penalty corrects;
# 3. say what temperature, top-k and top-p do to the next-token distribution, and check a
#    sampler's frequencies against it;
# 4. explain why a key/value cache saves work, and verify that it changes nothing but speed;
# 5. compute BLEU by hand — clipped n-gram precisions and the brevity penalty — and check it
#    against `mt.metrics.corpus_bleu`;
# 6. run `minitransformer train-seq2seq` and `translate` on Multi30k.

# %%
import importlib.util
import math
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import decoding, nn, train
from minitransformer.data import BOS_ID, EOS_ID, IGNORE_INDEX, PAD_ID
from minitransformer.data.download import default_data_dir
from minitransformer.metrics import corpus_bleu

FAST = os.environ.get("MINITRANSFORMER_FAST") == "1"  # shorter runs when set
STEPS = 300 if FAST else 1000
VOCAB, MIN_LEN, MAX_LEN = 16, 3, 6
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

# %% [markdown]
# ## 1. A model worth decoding: reversal
#
# Chapter 12 trained the copy task, where output position i reads source position i. A
# translation must also **reorder**, so here the model learns to reverse: the target of
# $(x_0, \dots, x_{L-1})$ is $(x_{L-1}, \dots, x_0)$, with L from 3 to 6. Output position i must
# find source position L − 1 − i, which depends on the length: the model has to work out L from
# the source. The recipe is chapter 12's (collate, label smoothing, `Trainer`), with two encoder
# layers and one decoder layer.

# %%
train_pairs = mt.data.reverse_task(3000, vocab_size=VOCAB, min_len=MIN_LEN, max_len=MAX_LEN,
                                   seed=0)
test_pairs = mt.data.reverse_task(100, vocab_size=VOCAB, min_len=MIN_LEN, max_len=MAX_LEN,
                                  seed=1)
print("a pair:", train_pairs[0])
assert all(tgt == src[::-1] for src, tgt in train_pairs)

mt.manual_seed(0)
model = nn.Transformer(VOCAB, VOCAB, d_model=32, n_heads=2, n_encoder_layers=2,
                       n_decoder_layers=1, d_ff=64, dropout=0.0, max_len=32)


def seq2seq_loss(model, batch):
    logits = model(batch.src, batch.tgt_in, src_mask=batch.src_mask, tgt_mask=batch.tgt_mask)
    loss = F.cross_entropy(logits, batch.tgt_out, ignore_index=IGNORE_INDEX, label_smoothing=0.1)
    return loss, int((batch.tgt_out.numpy() != IGNORE_INDEX).sum())


loader = mt.data.DataLoader(train_pairs, batch_size=32, collate_fn=mt.data.collate_seq2seq,
                            shuffle=True, seed=0)


def batches(epoch):
    loader.set_epoch(epoch)
    return loader


optimizer = mt.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.0)
schedule = mt.optim.warmup_cosine(5e-3, warmup=30, total=STEPS, min_lr=5e-4)
config = train.TrainConfig(steps=STEPS, log_every=STEPS // 5, grad_clip=1.0, progress=False)
start = time.perf_counter()
history = train.Trainer(model, optimizer, seq2seq_loss, batches, config, schedule).fit()
print(f"trained {STEPS} steps in {time.perf_counter() - start:.1f} s, "
      f"final loss {history[-1]['loss']:.3f}")

# %% [markdown]
# The comparisons below are exact (the same tokens, logits equal to 1e-10), so from here on the
# model runs in float64, where rounding cannot flip a near-tie between two tokens.

# %%
model.double().eval()
test_batch = mt.data.collate_seq2seq(test_pairs)
src = test_batch.src  # (100, S), padded with PAD_ID
targets = [tgt + [EOS_ID] for _, tgt in test_pairs]


def exact_match(outputs):
    return float(np.mean([out == tgt for out, tgt in zip(outputs, targets)]))


# %% [markdown]
# ## 2. Decoding is a loop
#
# The model factorises the probability of an output left to right,
# $p(y \mid x) = \prod_t p(y_t \mid y_{<t}, x)$. To generate: encode the source once, start the
# decoder input with `<bos>`, and repeat: run the decoder on everything generated so far, take
# the logits of the **last** position, choose a token, append it. Stop at `<eos>` or after
# `max_len` tokens. **Greedy search** chooses the arg-max every time.

# %%
def greedy_by_hand(model, src, max_len):
    src_mask = F.padding_mask(src, PAD_ID)  # (B, 1, 1, S): padding is never attended
    with mt.no_grad():
        memory = model.encode(src, src_mask)  # (B, S, D), computed once
        ys = [[BOS_ID] for _ in range(src.shape[0])]
        outputs, finished = [[] for _ in ys], [False] * len(ys)
        for _ in range(max_len):
            hidden = model.decode(mt.tensor(ys), memory, None, src_mask)  # (B, t, D)
            logits = model.project(hidden[:, -1])  # (B, V): only the last position is new
            for row, token in enumerate(logits.numpy().argmax(axis=-1).tolist()):
                ys[row].append(token)
                if not finished[row]:
                    outputs[row].append(token)
                    finished[row] = token == EOS_ID
            if all(finished):
                break
    return outputs


by_hand = greedy_by_hand(model, src, MAX_LEN + 2)
greedy_out = decoding.greedy(model, src, max_len=MAX_LEN + 2, bos_id=BOS_ID, eos_id=EOS_ID)
print("source:", test_pairs[0][0], " greedy:", greedy_out[0])
print(f"greedy exact match: {exact_match(greedy_out):.0%}")
assert by_hand == greedy_out
assert exact_match(greedy_out) >= (0.7 if FAST else 0.9)

# %% [markdown]
# ## 3. Beam search
#
# Greedy search commits to each token for good: a token that looked best at step t may lead
# only to poor continuations. **Beam search** keeps the K best partial outputs (the *beam*),
# scored by their total log-probability $s(y_{\le t}) = \sum_{j \le t} \log p(y_j \mid y_{<j},
# x)$. One step:
#
# 1. for each of the k ≤ K hypotheses, the model gives log-probabilities of every next token:
#    a (k, V) matrix;
# 2. add each hypothesis' score to its row: (k, V) scores of all one-token extensions;
# 3. flatten and take the best 2K; the flat index i is hypothesis i // V extended by token
#    i mod V.
#
# Why 2K and not K: an extension that ends in `<eos>` among the top K leaves the beam as a
# *finished* hypothesis; with 2K candidates at least K others remain to continue (each
# hypothesis has only one `<eos>` extension). Here is step 3 for a student to write.

# %%
def beam_step(log_probs, scores, beam_size):
    """log_probs (k, V), scores (k,) -> the best 2·beam_size extensions, best first:
    parents (n,), tokens (n,), their total scores (n,)."""
    # BEGIN SOLUTION
    totals = scores[:, None] + log_probs  # (k, V): every hypothesis extended by every token
    flat = totals.reshape(-1)  # (k·V,)
    best = np.argsort(-flat, kind="stable")[:2 * beam_size]  # the highest totals first
    parents, tokens = np.divmod(best, log_probs.shape[1])
    # END SOLUTION
    return parents, tokens, flat[best]


# a check on numbers small enough to follow: 2 hypotheses, a vocabulary of 3
log_probs = np.log(np.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]]))
parents, tokens, totals = beam_step(log_probs, np.log(np.array([0.6, 0.4])), beam_size=2)
print("parents", parents, "tokens", tokens, "probabilities", np.round(np.exp(totals), 2))
assert parents.tolist() == [0, 1, 0, 0] and tokens.tolist() == [0, 1, 1, 2], (
    f"parents {parents.tolist()} and tokens {tokens.tolist()} should be [0, 1, 0, 0] and "
    "[0, 1, 1, 2]: sort all k·V totals scores[:, None] + log_probs best first (stable), keep "
    "2·beam_size, and split each flat index with divmod by V into (parent, token)"
)
np.testing.assert_allclose(np.exp(totals), [0.30, 0.24, 0.18, 0.12], err_msg=(
    "the kept totals should be the probabilities 0.30, 0.24, 0.18, 0.12, best first: "
    "totals = scores[:, None] + log_probs (log-probabilities add), flattened, highest first"
))

# %% [markdown]
# Around the step, the search: an `<eos>` candidate ranked within the top K is finished (one
# ranked lower is dropped), and the best K of the others continue; after `max_len` steps the
# unfinished ones are finished as they are. The winner is the finished hypothesis with the
# best **length-normalised** score $s(y) / |y|^{\alpha}$, α = `length_penalty`.
#
# Why normalise: every token adds a negative log-probability, so the raw sum always prefers
# shorter outputs, and a search that ranks by it stops early — on translation, outputs come out
# too short. Dividing by $|y|^{\alpha}$ compares average log-probabilities instead (α = 1), or
# something in between (α = 0.6 is common; α = 0 is the raw sum). A tiny example: a short
# hypothesis with total log-probability −2.0 over 3 tokens against a long one with −2.4 over 8.

# %%
def normalised(score, length, alpha):
    return score / length**alpha


for alpha in (0.0, 0.6, 1.0):
    short, long = normalised(-2.0, 3, alpha), normalised(-2.4, 8, alpha)
    print(f"alpha {alpha}: short {short:.3f}, long {long:.3f} -> "
          f"{'short' if short > long else 'long'} wins")
assert normalised(-2.0, 3, 0.0) > normalised(-2.4, 8, 0.0)  # the raw sum prefers short
assert normalised(-2.0, 3, 1.0) < normalised(-2.4, 8, 1.0)  # the average prefers long


# %%
def beam_search_by_hand(model, src_row, beam_size, max_len, alpha):
    """src_row (1, S) -> the best hypothesis, ids without <bos>, ending with <eos> if found."""
    beams, finished = [([BOS_ID], 0.0)], []  # (ids with <bos>, total log-probability)
    for step in range(1, max_len + 1):
        ys = mt.tensor([ids for ids, _ in beams])  # (k, t)
        sources = mt.tensor(np.repeat(src_row.numpy(), len(beams), axis=0))  # (k, S)
        with mt.no_grad():
            logits = model(sources, ys, src_mask=F.padding_mask(sources, PAD_ID))[:, -1]
            log_probs = F.log_softmax(logits, axis=-1).numpy()  # (k, V)
        scores = np.array([score for _, score in beams])
        survivors = []
        for rank, (parent, token, total) in enumerate(zip(*beam_step(log_probs, scores,
                                                                     beam_size))):
            ids = beams[parent][0] + [int(token)]
            if token == EOS_ID:
                if rank < beam_size:  # an <eos> outside the top K does not finish anything
                    finished.append((normalised(total, step, alpha), ids[1:]))
            elif len(survivors) < beam_size:
                survivors.append((ids, float(total)))
        if not survivors:
            break
        beams = survivors
    else:  # max_len reached: the unfinished hypotheses compete as they are
        finished += [(normalised(score, max_len, alpha), ids[1:]) for ids, score in beams]
    return max(finished, key=lambda item: item[0])[1]


n_check = 10 if FAST else 30
for alpha in (0.0, 0.6):
    mine = [beam_search_by_hand(model, src[i:i + 1], 3, MAX_LEN + 2, alpha)
            for i in range(n_check)]
    library = decoding.beam_search(model, src[:n_check], beam_size=3, max_len=MAX_LEN + 2,
                                   bos_id=BOS_ID, eos_id=EOS_ID, length_penalty=alpha)
    assert mine == library, (
        "your beam search differs from mt.decoding.beam_search: beam_step should keep the "
        "2·beam_size best totals scores[:, None] + log_probs, best first (stable sort), with "
        f"(parent, token) = divmod(index, V); length_penalty {alpha}, sources "
        f"{[i for i, (m, b) in enumerate(zip(mine, library)) if m != b]}"
    )
print(f"hand-written beam search == mt.decoding.beam_search on {n_check} sources, "
      "length_penalty 0 and 0.6")

# %% [markdown]
# The library's search is the same one, with two economies: it reuses a key/value cache across
# steps (section 5), and it stops as soon as no unfinished hypothesis can still beat the best
# finished one (a raw score only falls as tokens are added).
#
# **Beam size 1 is greedy search.** With one hypothesis and α = 0, the survivor of each step
# is the arg-max extension, greedy's choice; an `<eos>` finishes the hypothesis only when it
# *is* the arg-max, exactly when greedy stops; and then the stopping rule ends the search,
# since no survivor's score (which only falls) can beat it. Were `<eos>` candidates ranked
# second also kept as finished hypotheses, a width-1 beam would sometimes return a short output
# that greedy passed by, because a raw sum of log-probabilities prefers short outputs. Check it
# on the test set, and check that both outputs score as teacher forcing says: one forward pass
# over `<bos> y` gives an output's total log-probability.

# %%
def log_prob(model, src_row, ids):
    """The model's total log-probability of the output ids (without <bos>) for src_row (1, S)."""
    with mt.no_grad():
        logits = model(src_row, mt.tensor([[BOS_ID] + ids[:-1]]),
                       src_mask=F.padding_mask(src_row, PAD_ID))  # (1, T, V)
        log_p = F.log_softmax(logits, axis=-1).numpy()[0]  # (T, V)
    return float(log_p[np.arange(len(ids)), ids].sum())


beam1 = decoding.beam_search(model, src, beam_size=1, max_len=MAX_LEN + 2, bos_id=BOS_ID,
                             eos_id=EOS_ID, length_penalty=0.0)
print(f"beam of 1 == greedy on {sum(b == g for b, g in zip(beam1, greedy_out))} of "
      f"{len(greedy_out)} sources")
assert beam1 == greedy_out
wide = decoding.beam_search(model, src[:20], beam_size=4, max_len=MAX_LEN + 2, bos_id=BOS_ID,
                            eos_id=EOS_ID, length_penalty=0.0)
gains = [log_prob(model, src[i:i + 1], w) - log_prob(model, src[i:i + 1], g)
         for i, (w, g) in enumerate(zip(wide, greedy_out))]
print(f"a beam of 4 (α = 0) scores at least greedy's log-probability on "
      f"{sum(gain >= -1e-9 for gain in gains)} of 20 sources; largest gain {max(gains):.4f}")
assert sum(gain >= -1e-9 for gain in gains) >= 18  # a wider beam rarely does worse

# %%
beam_out = decoding.beam_search(model, src, beam_size=4, max_len=MAX_LEN + 2, bos_id=BOS_ID,
                                eos_id=EOS_ID, length_penalty=0.6)
print(f"exact match: greedy {exact_match(greedy_out):.0%}, beam of 4 {exact_match(beam_out):.0%}")
assert exact_match(beam_out) >= exact_match(greedy_out) - 0.05

# %% [markdown]
# ## 4. Sampling: temperature, top-k and top-p
#
# Search looks for the single most likely output. For varied outputs (a story, a chat reply)
# one **samples** each token from the model's distribution instead, usually reshaped:
#
# - **temperature** T: $p_i \propto \exp(z_i / T)$ for logits z. T < 1 sharpens towards the
#   arg-max (T → 0 is greedy), T > 1 flattens towards uniform;
# - **top-k**: keep the k most likely tokens, renormalise;
# - **top-p** (nucleus sampling, Holtzman et al. 2020): keep the smallest set of most likely
#   tokens whose probability adds up to at least p, renormalise. Unlike top-k, the set is small
#   where the model is sure and large where it is not.
#
# Take the model's distribution for the first output token of one source.

# %%
one = src[:1]
with mt.no_grad():
    memory = model.encode(one, F.padding_mask(one, PAD_ID))
    first = model.project(model.decode(mt.tensor([[BOS_ID]]), memory, None,
                                       F.padding_mask(one, PAD_ID)))
logits = first.numpy()[0, 0]  # (V,)


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def top_k_filter(p, k):
    kept = np.where(p >= np.sort(p)[-k], p, 0.0)
    return kept / kept.sum()


def top_p_filter(p, top_p):
    order = np.argsort(-p)
    before = np.cumsum(p[order]) - p[order]  # the mass ranked above each token
    kept = np.zeros_like(p)
    kept[order] = np.where(before < top_p, p[order], 0.0)  # the most likely token always stays
    return kept / kept.sum()


np.set_printoptions(precision=3, suppress=True)
for temperature in (0.5, 1.0, 2.0, 4.0):
    p = softmax(logits / temperature)
    entropy = -(p[p > 0] * np.log(p[p > 0])).sum()
    print(f"T = {temperature}: largest p {p.max():.3f}, entropy {entropy:.2f} nats")
TEMPERATURE = 4.0
p = softmax(logits / TEMPERATURE)
print("p at T = 4:        ", p)
print("top-k, k = 4:      ", top_k_filter(p, 4))
print("top-p, p = 0.8:    ", top_p_filter(p, 0.8))
assert softmax(logits / 0.5).max() > softmax(logits).max() > softmax(logits / 4.0).max()
assert (top_k_filter(p, 4) > 0).sum() == 4
kept = top_p_filter(p, 0.8) > 0
assert p[kept].sum() >= 0.8 and p[kept].sum() - p[kept].min() < 0.8  # the smallest such set

# %% [markdown]
# `decoding.sample(model, src, max_len, bos_id, eos_id, temperature, top_k, top_p, seed)` draws
# from exactly these distributions. To check it, draw the first token for N copies of the same
# source (`max_len=1`: one step) and compare the frequencies with the probabilities. A count
# is binomial, so a frequency is within a few $\sqrt{p(1-p)/N}$ of p; tokens the filter removed
# must never appear.

# %%
N = 2000 if FAST else 10000
copies = mt.tensor(np.repeat(one.numpy(), N, axis=0))  # (N, S)
frequencies = {}
for name, options, expected in [
    ("T = 4", dict(), p),
    ("T = 4, top-k 4", dict(top_k=4), top_k_filter(p, 4)),
    ("T = 4, top-p 0.8", dict(top_p=0.8), top_p_filter(p, 0.8)),
]:
    drawn = decoding.sample(model, copies, max_len=1, bos_id=BOS_ID, eos_id=EOS_ID,
                            temperature=TEMPERATURE, seed=0, **options)
    frequency = np.bincount([ids[0] for ids in drawn], minlength=VOCAB) / N
    bound = 4 * np.sqrt(expected * (1 - expected) / N) + 1e-9
    print(f"{name:>17}: largest |frequency - p| {np.abs(frequency - expected).max():.4f}")
    assert np.all(np.abs(frequency - expected) <= bound), name
    assert np.all(frequency[expected == 0] == 0), name
    frequencies[name] = (expected, frequency)

# %% [markdown]
# The three distributions side by side, bars for the probabilities and dots for what `sample`
# drew: look at the tail that top-k and top-p cut to exactly zero, and the mass they hand to the
# tokens that stay.

# %%
if HAS_MATPLOTLIB:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.2), layout="constrained")
    for k, (name, (expected, frequency)) in enumerate(frequencies.items()):
        x = np.arange(VOCAB) + 0.27 * (k - 1)
        axis.bar(x, expected, 0.27, label=name)
        axis.plot(x, frequency, "k.", markersize=4)
    axis.set(xlabel="first token id (dots: sampled frequency)", ylabel="probability",
             xticks=range(VOCAB))
    axis.legend()
    figure.savefig("ch16_sampling.png", dpi=110)
    plt.close(figure)
    mt.viz.show("ch16_sampling.png")
else:
    print("matplotlib is not installed: no plot (pip install 'minitransformer[plot]')")

# %% [markdown]
# ## 5. The key/value cache
#
# The loop of section 2 calls the decoder on the whole prefix at every step: step t pushes t
# tokens through every layer, so T steps cost $1 + 2 + \dots + T = T(T+1)/2$ token passes. Yet
# the decoder is causal: position s attends only to positions ≤ s, so its keys and values — at
# every layer — are the same at every later step. Recomputing them is wasted work.
#
# A **KV cache** keeps, for every decoder layer, the keys and values (B, H, t, d_k) computed so
# far. A step feeds only the newest token: its query attends to the cached keys plus its own,
# and its key and value are appended. Cross-attention's keys and values come from the encoder's
# memory, which never changes: they are projected at the first step and then reused (a
# *static* cache). T steps now cost T token passes. `model.new_cache()` makes an empty
# `DecodingCache`; `model.decode(new_ids, memory, None, mask, cache)` uses and extends it.

# %%
tokens = [BOS_ID] + test_pairs[0][1]  # a decoder input to step through
mask = F.padding_mask(one, PAD_ID)
with mt.no_grad():
    full = model.project(model.decode(mt.tensor([tokens]), memory, None, mask)).numpy()
    cache = model.new_cache()
    for t, token in enumerate(tokens):
        step = model.project(model.decode(mt.tensor([[token]]), memory, None, mask, cache))
        self_cache, cross_cache = cache.layers[0]["self"], cache.layers[0]["cross"]
        print(f"step {t}: self-attention cache {self_cache.keys.shape}, "
              f"cross-attention cache {cross_cache.keys.shape}")
        np.testing.assert_allclose(step.numpy()[:, 0], full[:, t], rtol=1e-10, atol=1e-10)
assert cache.length == len(tokens) and len(cross_cache) == one.shape[1]
print(f"cached logits == uncached logits at all {len(tokens)} steps (float64, 1e-10)")

# %% [markdown]
# Now the cost. A larger decoder makes the difference visible: generate a fixed number of
# tokens (`eos_id=-1` is never produced, so nothing stops early) with and without the cache.
# The uncached work grows with the square of the length, so the speed-up grows with it too.
# Timings on a shared machine vary, so we only check that the cache is not much slower and that
# both give the same tokens.

# %%
GENERATE = 32 if FAST else 96
mt.manual_seed(1)
big = nn.Transformer(VOCAB, VOCAB, d_model=64, n_heads=4, n_encoder_layers=1,
                     n_decoder_layers=3, d_ff=128, dropout=0.0, max_len=GENERATE + 8).double()
timings, generated = {}, {}
for use_cache in (True, False):
    start = time.perf_counter()
    generated[use_cache] = decoding.greedy(big, src[:8], max_len=GENERATE, bos_id=BOS_ID,
                                           eos_id=-1, use_cache=use_cache)
    timings[use_cache] = time.perf_counter() - start
speedup = timings[False] / timings[True]
print(f"{GENERATE} tokens for 8 sources: cached {timings[True]:.2f} s, uncached "
      f"{timings[False]:.2f} s, speed-up {speedup:.1f}x")
print(f"token passes: cached {GENERATE}, uncached {GENERATE * (GENERATE + 1) // 2}")
assert generated[True] == generated[False]
assert all(len(ids) == GENERATE for ids in generated[True])
assert timings[True] < 3 * timings[False]  # never much slower (timing noise aside)

# %% [markdown]
# ## 6. BLEU
#
# Exact match is too strict for translation: many outputs are right. **BLEU** (Papineni et al.
# 2002) counts n-grams (n = 1…4) of the output that also occur in the reference, each clipped
# to its count in the reference, summed over the corpus:
#
# $$p_n = \frac{\sum \min(\mathrm{count}_{hyp}(g), \mathrm{count}_{ref}(g))}
#              {\sum \mathrm{count}_{hyp}(g)}, \qquad
#   \mathrm{BP} = \begin{cases} 1 & c > r \\ e^{1 - r/c} & c \le r \end{cases}, \qquad
#   \mathrm{BLEU} = 100 \cdot \mathrm{BP} \cdot \exp\Big(\tfrac14 \sum_{n=1}^{4} \log p_n\Big)$$
#
# with c and r the total output and reference lengths. Clipping stops "the the the the" from
# scoring; precision alone would reward very short outputs, so the **brevity penalty** BP
# punishes outputs shorter than the references. Two sentences by hand:

# %%
hypotheses = ["the cat sat on the mat", "a dog is running in park"]
references = ["the cat sat on a mat today", "a dog is running in the park"]
matches, totals = [0] * 4, [0] * 4
for hyp, ref in zip(hypotheses, references):
    hyp, ref = hyp.split(), ref.split()
    for n in range(1, 5):
        hyp_grams = Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
        ref_grams = Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
        matches[n - 1] += sum(min(count, ref_grams[g]) for g, count in hyp_grams.items())
        totals[n - 1] += sum(hyp_grams.values())
precisions = [m / t for m, t in zip(matches, totals)]
c = sum(len(h.split()) for h in hypotheses)
r = sum(len(x.split()) for x in references)
brevity = 1.0 if c > r else math.exp(1 - r / c)
bleu = 100 * brevity * math.exp(sum(math.log(p) for p in precisions) / 4)
print("matches", matches, "of", totals, "-> precisions", np.round(precisions, 3))
print(f"c = {c}, r = {r}, brevity penalty {brevity:.3f}, BLEU {bleu:.2f}")

library = corpus_bleu(hypotheses, references)
print(f"corpus_bleu: BLEU {library['bleu']:.2f}, precisions "
      f"{np.round(library['precisions'], 1).tolist()}, brevity penalty "
      f"{library['brevity_penalty']:.3f}")
assert math.isclose(library["bleu"], bleu, rel_tol=1e-12)
np.testing.assert_allclose(library["precisions"], 100 * np.array(precisions))
assert math.isclose(library["brevity_penalty"], brevity) and brevity < 1  # c = 12 < r = 14

# %% [markdown]
# `corpus_bleu` takes strings (split like the standard "13a" tokenizer, so scores compare with
# published ones) or lists of tokens — ids work too. Score the reversal model's outputs, without
# `<eos>`:

# %%
def strip_eos(outputs):
    return [ids[:-1] if ids and ids[-1] == EOS_ID else ids for ids in outputs]


references_ids = [tgt for _, tgt in test_pairs]
for name, outputs in (("greedy", greedy_out), ("beam 4", beam_out)):
    score = corpus_bleu(strip_eos(outputs), references_ids)
    print(f"{name}: BLEU {score['bleu']:.1f}, unigram precision {score['precisions'][0]:.1f}, "
          f"brevity penalty {score['brevity_penalty']:.3f}")
    assert score["bleu"] > 50

# %% [markdown]
# ## 7. Real translation: Multi30k
#
# Multi30k (Elliott et al. 2016) pairs 29,000 English image captions with German and French
# translations. `mt.data.load_multi30k(folder, split, source, target)` reads its line-aligned
# files. The data is not part of the package: `minitransformer download multi30k` fetches it
# into `$MINITRANSFORMER_DATA` (default `~/.cache/minitransformer`), which is where we look
# first; then in a `shared/data` folder next to the repository.

# %%
folders = [default_data_dir(), Path(mt.__file__).resolve().parents[2] / "shared" / "data"]
MULTI30K = next((f / "multi30k" for f in folders if (f / "multi30k").is_dir()),
                folders[0] / "multi30k")
if MULTI30K.is_dir():
    pairs = mt.data.load_multi30k(MULTI30K, split="val", source="en", target="de")
    print(f"{len(pairs)} validation pairs in {MULTI30K}")
    for english, german in pairs[:3]:
        print(f"  en: {english}\n  de: {german}")
    assert len(pairs) == 1014 and all(english and german for english, german in pairs)
else:
    print(f"no Multi30k at {MULTI30K}: run `minitransformer download multi30k`")

# %% [markdown]
# Training a translator is one command. `configs/multi30k.toml` builds a shared byte-level BPE
# vocabulary of 8,000 tokens, an encoder-decoder of 3 + 3 pre-LN layers with d_model 128, and
# trains 1,500 steps of 64 pairs with label smoothing 0.1; evaluation decodes with a beam of 4
# and length penalty 0.6 and reports BLEU. `docs/results.md` records BLEU 26.25 on the 2016
# test set after about 44 minutes on one loaded CPU core — too long for a tutorial, so we only
# print the commands. `translate` loads the best checkpoint and decodes new sentences the way
# its config says (here a beam of 4), or with a beam of the width `--beam` gives.

# %%
commands = [
    f"minitransformer train-seq2seq --config configs/multi30k.toml --set data={MULTI30K}",
    'minitransformer translate runs/multi30k/best.npz "a man is riding a bike ."',
    "minitransformer translate runs/multi30k/best.npz --beam 5 < sentences.en",
]
print("\n".join(commands))

# %% [markdown]
# ## Summary
#
# - Decoding is a loop: encode once, then decode the prefix, take the last position's logits,
#   choose, append, until `<eos>` or `max_len`.
# - Greedy search takes the arg-max; beam search keeps the K best prefixes by total
#   log-probability, extends each by every token, ranks the best 2K candidates (an `<eos>`
#   within the top K finishes its hypothesis, the best K others continue), and ranks finished
#   outputs by $s(y)/|y|^{\alpha}$. Beam size 1 with α = 0
#   is greedy; α > 0 counters the raw sum's preference for short outputs.
# - Sampling draws from $\mathrm{softmax}(z/T)$, optionally cut to the top k tokens or to the
#   smallest set of mass ≥ p; a sampler is checked by comparing frequencies with probabilities.
# - A KV cache keeps each layer's keys and values so a step processes one token instead of the
#   whole prefix: the same logits (to 1e-10 in float64), T instead of T(T+1)/2 token passes.
# - BLEU: clipped n-gram precisions for n = 1…4, their geometric mean, times a brevity penalty
#   for outputs shorter than the references, over the whole corpus.
#
# ## Exercises
#
# ```{exercise} Where greedy and beam disagree
# :label: ch16-greedy-vs-beam
#
# Train the reversal model for fewer steps (say 100) so that it is unsure, and list the test
# sources on which greedy search and a beam of 4 give different outputs. For each, compare the
# model's total log-probability of the two outputs. Which is higher, and is it always the one
# that is right?
# ```
#
# ````{solution} ch16-greedy-vs-beam
# :class: dropdown
#
# With `log_prob` from section 3:
#
# ```python
# for i, (g, b) in enumerate(zip(greedy_out, beam_out)):
#     if g != b:
#         print(i, log_prob(model, src[i:i + 1], g), log_prob(model, src[i:i + 1], b),
#               g == targets[i], b == targets[i])
# ```
#
# After 100 steps (greedy exact match 24%), with length penalty 0 the beam of 4 differed from
# greedy on 35 of the 100 test sources, and on all 35 its output had the higher
# log-probability — that is what it searches for. Yet greedy was right on 7 of them and the beam
# on only 4: the beam's outputs were often *shorter* (19 of the 35; a stop at `<eos>` one token
# early is likely under a half-trained model). With α = 0.6 they differed on 28, the beam's raw
# log-probability was higher on 27 (it maximises the normalised score, not the raw one), and
# each was right on 5. Search fixes search errors, not model errors: a more probable output is
# better only when the model is good.
# ````
#
# ```{exercise} Temperature and exact match
# :label: ch16-temperature
#
# Decode the test set with `decoding.sample` at temperatures 0, 0.5, 1 and 2 (seed 0) and
# measure exact match and BLEU. Explain the trend.
# ```
#
# ```{solution} ch16-temperature
# :class: dropdown
#
# Temperature 0 is greedy, so it scores as greedy does. As T grows the distribution flattens and
# every step has a larger chance of drawing a wrong token; an output of L + 1 tokens is exactly
# right only if all L + 1 draws are, so exact match falls fast, and BLEU (which gives credit for
# partly right outputs) more slowly. With the fast-mode model we measured exact match / BLEU of
# 100% / 100.0 at T = 0, 99% / 99.1 at T = 0.5, 54% / 68.5 at T = 1 and 2% / 14.0 at T = 2.
# That T = 1 is already poor is partly label smoothing's doing: training towards a target that
# puts 0.1 on the wrong tokens teaches the model to leave them that mass. Sampling is for
# variety, not for a task with one right answer.
# ```
#
# ```{exercise} The cache's crossover
# :label: ch16-cache-crossover
#
# Time `decoding.greedy` with and without the cache for `GENERATE` = 4, 8, 16, 32, 64 and 128
# tokens. Plot both times against the length. Which grows linearly and which quadratically?
# Is the cache ever slower?
# ```
#
# ```{solution} ch16-cache-crossover
# :class: dropdown
#
# Without the cache step t processes t positions, so the total work grows like T²/2 (plus a
# per-step overhead); with the cache every step processes one position and the total grows
# like T (each step's attention still reads all t cached keys, a term that is small at these
# sizes). One run of the section-5 model, best of two, 8 sources, on a loaded two-core machine:
#
# | tokens | cached (s) | uncached (s) | ratio |
# |---:|---:|---:|---:|
# | 4 | 0.018 | 0.021 | 1.2 |
# | 8 | 0.030 | 0.043 | 1.4 |
# | 16 | 0.070 | 0.276 | 3.9 |
# | 32 | 0.120 | 2.408 | 20 |
# | 64 | 0.229 | 8.278 | 36 |
#
# The cached times double with the length; the uncached ones grow faster (here even faster than
# T², a sign of the machine's load). For a few tokens both cost about the same — the fixed cost
# of calling every layer dominates — and the cache was never slower.
# ```
