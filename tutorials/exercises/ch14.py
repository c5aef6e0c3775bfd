# %% setup
# Chapter 14's exercises, graded: write each answer in its cell; the check cell after it says
# what is wrong, if anything. `minitransformer grade` gives each exercise its points.
# Pretraining takes minutes, so the exercises grade the pieces of each experiment that need no
# training run: the masking statistics, the cost of the projection, the untrained denoiser,
# and sampling at several temperatures from a counting language model.
import math
import time
from collections import defaultdict

import numpy as np

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
    SEP_ID,
    WordTokenizer,
)

MODEL = dict(d_model=64, n_heads=4, n_layers=2, d_ff=128, dropout=0.1, max_len=32)


def world_and_tokenizer():
    """The chapter's text world (seed 0) and the word tokenizer trained on its corpus."""
    world = mt.data.text_world(seed=0)
    return world, WordTokenizer.train(world.corpus)


class NgramLM(nn.Module):
    """A causal language model made by counting, standing in for the chapter's trained one: the
    next-token logits after a context are the log-frequencies of what followed the last n - 1
    tokens in ``sentences`` (lists of ids), plus a little smoothing; a context never seen gives
    a uniform guess. ``decoding.generate`` can sample from it: model(ids) -> logits (B, T, V)."""

    def __init__(self, sentences, vocab_size, n=4, smoothing=0.01):
        super().__init__()
        self.n = n
        counts = defaultdict(lambda: np.full(vocab_size, smoothing))
        for ids in sentences:
            for t in range(1, len(ids)):
                counts[tuple(ids[max(0, t - n + 1):t])][ids[t]] += 1
        self.table = {context: np.log(c / c.sum()) for context, c in counts.items()}
        self.uniform = np.full(vocab_size, -math.log(vocab_size))

    def forward(self, ids, cache=None):
        rows = ids.numpy().tolist()
        return mt.tensor(np.array([[self.table.get(tuple(row[max(0, t - self.n + 2):t + 1]),
                                                   self.uniform) for t in range(len(row))]
                                   for row in rows]))

    def new_cache(self):
        return None  # nothing to cache: every step reads the whole context


# %% exercise ch14-mask-only (2 points)
# masking_shares(collate, rows) -> (chosen, mask, random, kept), four floats: collate the id
#   lists `rows` in batches of 50 with the MaskedLMCollator `collate` and measure, as in
#   section 2, the share of the real (non-special) tokens that were chosen, and the shares of
#   the chosen ones that became <mask>, became another token, or kept their id.
# mask_only: the shares measured with MaskedLMCollator(V, seed=0, replace_prob=1.0,
#   random_prob=0.0) on the first 1,000 corpus sentences, each framed as
#   [CLS_ID] + tokenizer.encode(sentence) + [SEP_ID] (world, tokenizer = world_and_tokenizer(),
#   V = tokenizer.vocab_size).
# BEGIN SOLUTION
def masking_shares(collate, rows):
    n_real = n_chosen = n_mask = n_kept = 0
    for start in range(0, len(rows), 50):
        part = rows[start:start + 50]
        batch = collate(part)
        original = np.array(mt.data.pad_sequences(part, PAD_ID))  # (B, T) before corruption
        corrupted, labels = batch.ids.numpy(), batch.labels.numpy()
        chosen = labels != IGNORE_INDEX
        n_real += int((original >= N_SPECIAL).sum())
        n_chosen += int(chosen.sum())
        n_mask += int((corrupted[chosen] == MASK_ID).sum())
        n_kept += int((corrupted[chosen] == original[chosen]).sum())
    n_random = n_chosen - n_mask - n_kept
    return n_chosen / n_real, n_mask / n_chosen, n_random / n_chosen, n_kept / n_chosen


world, tokenizer = world_and_tokenizer()
V = tokenizer.vocab_size
framed = [[CLS_ID] + tokenizer.encode(s) + [SEP_ID] for s in world.corpus[:1000]]
mask_only = masking_shares(
    mt.data.MaskedLMCollator(V, seed=0, replace_prob=1.0, random_prob=0.0), framed)
# END SOLUTION

# %% check ch14-mask-only
check_world, check_tokenizer = world_and_tokenizer()
check_v = check_tokenizer.vocab_size
rows = [[CLS_ID] + check_tokenizer.encode(s) + [SEP_ID] for s in check_world.corpus[1000:2000]]
bert = masking_shares(mt.data.MaskedLMCollator(check_v, seed=1), rows)
n_real = sum(len(row) - 2 for row in rows)
expected = (0.15, 0.8, 0.1 - 0.1 / (check_v - N_SPECIAL), 0.1 + 0.1 / (check_v - N_SPECIAL))
for name, got, want, count in zip(("chosen", "mask", "random", "kept"), bert, expected,
                                  (n_real, n_real * 0.15, n_real * 0.15, n_real * 0.15)):
    bound = 4 * math.sqrt(want * (1 - want) / count)
    assert abs(got - want) < bound, (
        f"with BERT's recipe masking_shares gives the {name} share {got:.3f}, expected about "
        f"{want:.3f}: 'chosen' counts over the real tokens (ids >= N_SPECIAL, not <cls>, <sep> "
        "or padding), the other three over the chosen tokens (labels != IGNORE_INDEX)")
assert len(mask_only) == 4 and abs(mask_only[0] - 0.15) < 0.02, (
    f"mask_only's chosen share is {mask_only[0]:.3f}: build the collator with replace_prob=1.0, "
    "random_prob=0.0 and measure it on the first 1,000 framed corpus sentences")
assert np.allclose(mask_only[1:], (1.0, 0.0, 0.0)), (
    f"mask_only's (mask, random, kept) shares are {tuple(round(s, 3) for s in mask_only[1:])}: "
    "with replace_prob=1.0 and random_prob=0.0 every chosen token becomes <mask>")

# %% wrong ch14-mask-only
def masking_shares(collate, rows):  # noqa: F811  (counts <cls>, <sep> and padding as real)
    n_real = n_chosen = n_mask = n_kept = 0
    for start in range(0, len(rows), 50):
        part = rows[start:start + 50]
        batch = collate(part)
        original = np.array(mt.data.pad_sequences(part, PAD_ID))
        corrupted, labels = batch.ids.numpy(), batch.labels.numpy()
        chosen = labels != IGNORE_INDEX
        n_real += original.size
        n_chosen += int(chosen.sum())
        n_mask += int((corrupted[chosen] == MASK_ID).sum())
        n_kept += int((corrupted[chosen] == original[chosen]).sum())
    n_random = n_chosen - n_mask - n_kept
    return n_chosen / n_real, n_mask / n_chosen, n_random / n_chosen, n_kept / n_chosen

# %% wrong ch14-mask-only
mask_only = masking_shares(  # replace_prob read as "the share that stays"
    mt.data.MaskedLMCollator(V, seed=0, replace_prob=0.0, random_prob=0.0), framed)

# %% exercise ch14-positions (3 points)
# For a masked LM over a vocabulary of 30,000 (nn.MaskedLanguageModel(nn.TextEncoder(30000,
#   pad_id=PAD_ID, **MODEL)) after mt.manual_seed(0), in eval mode, under mt.no_grad()) and a
#   MaskedLMCollator(30000, seed=0) batch of the first 16 corpus sentences, each framed as
#   [CLS_ID] + tokenizer.encode(sentence) + [SEP_ID] (world, tokenizer =
#   world_and_tokenizer()), with chosen = batch.labels.data != IGNORE_INDEX:
# best_seconds(function, repeats=5) -> float: the shortest of `repeats` timings of function().
# seconds_full, seconds_gathered, seconds_encoder: best_seconds of the forward pass with every
#   position projected (mlm(ids, mask)), with only the chosen ones (positions=chosen), and of
#   the encoder alone (mlm.encoder(ids, mask)).
# counted_share(n_tokens, n_projected, d_model, d_ff, n_layers, vocab_size) -> float: the share
#   of the forward's multiply-adds spent in the vocabulary projection, counting n_projected·d·V
#   for it and, per token and layer, 4·d² (the attention's four projections) plus 2·d·d_ff (the
#   feed-forward) for the encoder (ignore the rest).
# BEGIN SOLUTION
def best_seconds(function, repeats=5):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def counted_share(n_tokens, n_projected, d_model, d_ff, n_layers, vocab_size):
    projection = n_projected * d_model * vocab_size
    encoder = n_tokens * n_layers * (4 * d_model**2 + 2 * d_model * d_ff)
    return projection / (projection + encoder)


world, tokenizer = world_and_tokenizer()
framed = [[CLS_ID] + tokenizer.encode(s) + [SEP_ID] for s in world.corpus[:16]]
mt.manual_seed(0)
mlm = nn.MaskedLanguageModel(nn.TextEncoder(30000, pad_id=PAD_ID, **MODEL))
mlm.eval()
batch = mt.data.MaskedLMCollator(30000, seed=0)(framed)
chosen = batch.labels.data != IGNORE_INDEX
with mt.no_grad():
    seconds_full = best_seconds(lambda: mlm(batch.ids, batch.mask))
    seconds_gathered = best_seconds(lambda: mlm(batch.ids, batch.mask, positions=chosen))
    seconds_encoder = best_seconds(lambda: mlm.encoder(batch.ids, batch.mask))
# END SOLUTION

# %% check ch14-positions
calls = []
sleeps = [0.03, 0.02, 0.005]
best = best_seconds(lambda: calls.append(time.sleep(sleeps[len(calls)])), repeats=3)
assert len(calls) == 3 and 0.004 < best < 0.015, (
    f"best_seconds should call the function `repeats` times and return the shortest time; for "
    f"sleeps of 30, 20 and 5 ms it made {len(calls)} calls and returned {best * 1000:.1f} ms")
for args in [(960, 960, 64, 128, 2, 30000), (960, 90, 64, 128, 2, 30000),
             (512, 512, 512, 2048, 6, 37000)]:
    n_tokens, n_projected, d, d_ff, layers, vocab = args
    projection = n_projected * d * vocab
    want = projection / (projection + n_tokens * layers * (4 * d * d + 2 * d * d_ff))
    assert math.isclose(counted_share(*args), want, rel_tol=1e-9), (
        f"counted_share{args} is {counted_share(*args):.4f}, which does not follow the count: "
        "n_projected·d·V for the projection, n_tokens · n_layers · (4·d² + 2·d·d_ff) for the "
        "encoder")
assert seconds_full > 2 * seconds_gathered, (
    f"projecting every position took {seconds_full * 1000:.0f} ms, only the chosen ones "
    f"{seconds_gathered * 1000:.0f} ms: pass positions=chosen to the model itself, so that it "
    "gathers before projecting (indexing the full logits afterwards saves nothing)")
assert seconds_encoder < 0.5 * seconds_full, (
    f"the encoder alone took {seconds_encoder * 1000:.0f} ms of the full forward's "
    f"{seconds_full * 1000:.0f} ms: time mlm.encoder(batch.ids, batch.mask)")

# %% wrong ch14-positions
def counted_share(n_tokens, n_projected, d_model, d_ff, n_layers, vocab_size):  # noqa: F811
    projection = n_projected * d_model * vocab_size  # the encoder counted for one layer only
    encoder = n_tokens * (4 * d_model**2 + 2 * d_model * d_ff)
    return projection / (projection + encoder)

# %% wrong ch14-positions
with mt.no_grad():  # every position projected, then the chosen ones picked out
    seconds_gathered = best_seconds(lambda: mlm(batch.ids, batch.mask).numpy()[chosen])

# %% exercise ch14-denoise (2 points)
# The untrained denoiser of section 5: world, tokenizer = world_and_tokenizer(), V =
#   tokenizer.vocab_size; batch = mt.data.SpanCorruptionCollator(V, seed=0, n_sentinels=20) of
#   the first 64 corpus sentences (tokenizer.encode of each); after mt.manual_seed(0), the model
#   nn.Transformer(V + 20, V + 20, d_model=64, n_heads=4, n_encoder_layers=2,
#   n_decoder_layers=2, d_ff=128, dropout=0.0, max_len=32, share_embeddings=True,
#   tie_output=True, norm_first=True).
# untrained_loss: its cross-entropy on the batch (logits of model(src, tgt_in, src_mask,
#   tgt_mask) against tgt_out, ignoring IGNORE_INDEX), a float.
# uniform_loss: the loss of a uniform guess over the model's vocabulary, a float.
# predictable_share: the share of the decoder's real targets (tgt_out != IGNORE_INDEX) that
#   are sentinels or <eos>, the tokens a masked LM never has to predict.
# BEGIN SOLUTION
world, tokenizer = world_and_tokenizer()
V = tokenizer.vocab_size
batch = mt.data.SpanCorruptionCollator(V, seed=0, n_sentinels=20)(
    [tokenizer.encode(s) for s in world.corpus[:64]])
mt.manual_seed(0)
t5 = nn.Transformer(V + 20, V + 20, d_model=64, n_heads=4, n_encoder_layers=2,
                    n_decoder_layers=2, d_ff=128, dropout=0.0, max_len=32,
                    share_embeddings=True, tie_output=True, norm_first=True)
with mt.no_grad():
    logits = t5(batch.src, batch.tgt_in, batch.src_mask, batch.tgt_mask)
    untrained_loss = F.cross_entropy(logits, batch.tgt_out, ignore_index=IGNORE_INDEX).item()
uniform_loss = math.log(V + 20)  # the tokenizer's V words and the 20 sentinels
targets = batch.tgt_out.numpy()
real = targets[targets != IGNORE_INDEX]
predictable_share = float(np.mean((real >= V) | (real == EOS_ID)))
# END SOLUTION

# %% check ch14-denoise
check_world, check_tokenizer = world_and_tokenizer()
check_v = check_tokenizer.vocab_size
check_batch = mt.data.SpanCorruptionCollator(check_v, seed=0, n_sentinels=20)(
    [check_tokenizer.encode(s) for s in check_world.corpus[:64]])
mt.manual_seed(0)
check_model = nn.Transformer(check_v + 20, check_v + 20, d_model=64, n_heads=4,
                             n_encoder_layers=2, n_decoder_layers=2, d_ff=128, dropout=0.0,
                             max_len=32, share_embeddings=True, tie_output=True, norm_first=True)
with mt.no_grad():
    want = F.cross_entropy(check_model(check_batch.src, check_batch.tgt_in, check_batch.src_mask,
                                       check_batch.tgt_mask),
                           check_batch.tgt_out, ignore_index=IGNORE_INDEX).item()
assert math.isclose(untrained_loss, want, rel_tol=1e-4), (
    f"untrained_loss is {untrained_loss:.4f}, not the loss of the model and batch described: "
    "seed 0 just before building the model, the collator's first batch of corpus[:64], "
    "ignore_index=IGNORE_INDEX")
assert math.isclose(uniform_loss, math.log(check_v + 20)), (
    f"uniform_loss is {uniform_loss:.4f}: a uniform guess over the model's whole vocabulary "
    "(the words and the sentinels) costs ln of its size")
assert untrained_loss > uniform_loss, "the untrained loss should lie above the uniform guess"
check_targets = check_batch.tgt_out.numpy()
check_real = check_targets[check_targets != IGNORE_INDEX]
share = np.mean((check_real >= check_v) | (check_real == EOS_ID))
assert math.isclose(predictable_share, share, rel_tol=1e-6), (
    f"predictable_share is {predictable_share:.3f}: among the targets that count (tgt_out != "
    "IGNORE_INDEX, padding left out), the share of sentinels (ids >= V) and <eos>")

# %% wrong ch14-denoise
uniform_loss = math.log(V)  # the sentinels forgotten

# %% wrong ch14-denoise
predictable_share = float(np.mean((targets >= V) | (targets == EOS_ID)))  # padding counted

# %% exercise ch14-temperature (3 points)
# The chapter samples from its trained causal LM; here NgramLM (setup) stands in for it:
#   world, tokenizer = world_and_tokenizer(); lm = NgramLM(sentences, tokenizer.vocab_size),
#   sentences = [BOS_ID] + tokenizer.encode(s) + [EOS_ID] for every corpus sentence.
# sample_report(model, tokenizer, corpus, temperature) -> (in_corpus, finished), two ints: draw
#   200 sentences with mt.decoding.generate(model, [[BOS_ID]] * 200, max_new_tokens=20,
#   temperature=temperature, seed=0, eos_id=EOS_ID), decode each with the tokenizer
#   (skip_special=True), and count the samples that are sentences of `corpus` (a set) and the
#   samples that ended with <eos>.
# report: {temperature: sample_report(lm, tokenizer, set(world.corpus), temperature)} for the
#   temperatures 0.5, 1.0 and 2.0.
# cooler_gives_more_corpus: True or False: in your report, does each lower temperature give
#   more corpus sentences?
# BEGIN SOLUTION
def sample_report(model, tokenizer, corpus, temperature):
    samples = mt.decoding.generate(model, [[BOS_ID]] * 200, max_new_tokens=20,
                                   temperature=temperature, seed=0, eos_id=EOS_ID)
    texts = [tokenizer.decode(ids, skip_special=True) for ids in samples]
    in_corpus = sum(text in corpus for text in texts)
    finished = sum(bool(ids) and ids[-1] == EOS_ID for ids in samples)
    return in_corpus, finished


world, tokenizer = world_and_tokenizer()
lm = NgramLM([[BOS_ID] + tokenizer.encode(s) + [EOS_ID] for s in world.corpus],
             tokenizer.vocab_size)
report = {t: sample_report(lm, tokenizer, set(world.corpus), t) for t in (0.5, 1.0, 2.0)}
cooler_gives_more_corpus = report[0.5][0] > report[1.0][0] > report[2.0][0]
# END SOLUTION

# %% check ch14-temperature
check_world, check_tokenizer = world_and_tokenizer()
check_lm = NgramLM([[BOS_ID] + check_tokenizer.encode(s) + [EOS_ID] for s in check_world.corpus],
                   check_tokenizer.vocab_size)
assert sorted(report) == [0.5, 1.0, 2.0], f"report's keys are {sorted(report)}"
for temperature in (0.5, 1.0, 2.0):
    samples = mt.decoding.generate(check_lm, [[BOS_ID]] * 200, max_new_tokens=20,
                                   temperature=temperature, seed=0, eos_id=EOS_ID)
    texts = [check_tokenizer.decode(ids, skip_special=True) for ids in samples]
    want = (sum(text in set(check_world.corpus) for text in texts),
            sum(ids[-1] == EOS_ID for ids in samples))
    assert tuple(report[temperature]) == want, (
        f"report[{temperature}] is {report[temperature]}, not the counts of the samples "
        "described: generate with seed=0 and eos_id=EOS_ID, decode with skip_special=True (a "
        "corpus sentence has no '<eos>' in it), and count the samples ending with EOS_ID")
counts = [report[t][0] for t in (0.5, 1.0, 2.0)]
assert cooler_gives_more_corpus == (counts[0] > counts[1] > counts[2]), (
    f"cooler_gives_more_corpus is {cooler_gives_more_corpus!r}, but your report counts "
    f"{counts} corpus sentences at temperatures 0.5, 1.0 and 2.0")

# %% wrong ch14-temperature
def sample_report(model, tokenizer, corpus, temperature):  # noqa: F811  (keeps the "<eos>")
    samples = mt.decoding.generate(model, [[BOS_ID]] * 200, max_new_tokens=20,
                                   temperature=temperature, seed=0, eos_id=EOS_ID)
    texts = [tokenizer.decode(ids) for ids in samples]
    return sum(text in corpus for text in texts), sum(ids[-1] == EOS_ID for ids in samples)


report = {t: sample_report(lm, tokenizer, set(world.corpus), t) for t in (0.5, 1.0, 2.0)}

# %% wrong ch14-temperature
cooler_gives_more_corpus = False  # "more randomness finds more sentences"
