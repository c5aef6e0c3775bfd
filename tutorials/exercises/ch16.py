# %% setup
# Chapter 16's exercises, graded: write each answer in its cell; the check cell after it says
# what is wrong, if anything. `minitransformer grade` gives each exercise its points.
# Training the chapter's reversal model takes too long for a check, so the decoding exercises
# run on a hand-made model whose next-token probabilities are known (HandMadeReverser), and the
# cache exercise counts work instead of timing it.
import math

import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import decoding, nn
from minitransformer.data import BOS_ID, EOS_ID, PAD_ID
from minitransformer.metrics import corpus_bleu

VOCAB, MIN_LEN, MAX_LEN = 16, 3, 6  # the chapter's settings


def test_pairs():
    """The chapter's 100 test pairs of the reversal task and their padded sources (100, S)."""
    pairs = mt.data.reverse_task(100, vocab_size=VOCAB, min_len=MIN_LEN, max_len=MAX_LEN, seed=1)
    return pairs, mt.data.collate_seq2seq(pairs).src


class HandMadeReverser(nn.Module):
    """A stand-in for a trained reversal model, its next-token logits set by hand. For a source
    x (padding left out) the right output is x reversed, then <eos>; at every decoder position
    the right next token gets the logit ``right``, <eos> (where it is not the right token) the
    logit ``eos``, every other token 0, whatever the tokens decoded so far. It has the methods
    mt.decoding uses (encode, decode, project, new_cache), and model(src, tgt) -> logits
    (B, T, V) for teacher forcing, like nn.Transformer."""

    def __init__(self, vocab_size, right, eos=0.0):
        super().__init__()
        self.vocab_size, self.right, self.eos = vocab_size, right, eos

    def encode(self, src, src_mask=None):
        return src  # the "memory" is the source itself

    def decode(self, tgt, memory, tgt_mask=None, memory_mask=None, cache=None):
        rows, length = tgt.shape
        logits = np.zeros((rows, length, self.vocab_size))
        logits[:, :, EOS_ID] = self.eos
        for row, source in enumerate(memory.numpy().tolist()):
            wanted = [token for token in source if token != PAD_ID][::-1] + [EOS_ID]
            for t in range(length):
                logits[row, t, wanted[min(t, len(wanted) - 1)]] = self.right
        return mt.tensor(logits)

    def project(self, hidden):
        return hidden  # decode already gives the logits

    def new_cache(self):
        return None  # nothing to cache

    def forward(self, src, tgt, src_mask=None, tgt_mask=None):
        return self.project(self.decode(tgt, self.encode(src)))


# %% exercise ch16-greedy-vs-beam (3 points)
# The half-trained model is a HandMadeReverser(VOCAB, right=3.0, eos=1.0): it knows the right
#   token but is tempted to stop early, as a model trained for only 100 steps is.
# log_prob(model, src_row, ids) -> float: the model's total log-probability of the output ids
#   (without <bos>, ending with <eos>) for src_row (1, S), by teacher forcing: one call
#   model(src_row, <bos> + ids[:-1], src_mask=...) and the log-softmax of its logits.
# disagreements(model, src, targets) -> list of (i, greedy_log_prob, beam_log_prob,
#   greedy_right, beam_right), one per source row i on which decoding.greedy and
#   decoding.beam_search (beam_size=4, length_penalty=0.0) disagree, both with
#   max_len=MAX_LEN + 2; targets[i] is the right output of row i (ending with <eos>).
# report: disagreements of the half-trained model on the test sources (test_pairs()), the
#   targets being each pair's target + [EOS_ID].
# beam_more_probable: True or False: on every disagreement, does the beam's output have the
#   higher log-probability?
# more_probable_is_right: True or False: on every disagreement, is the more probable output
#   the right one?
# BEGIN SOLUTION
def log_prob(model, src_row, ids):
    with mt.no_grad():
        logits = model(src_row, mt.tensor([[BOS_ID] + ids[:-1]]),
                       src_mask=F.padding_mask(src_row, PAD_ID))  # (1, T, V)
        log_p = F.log_softmax(logits, axis=-1).numpy()[0]  # (T, V)
    return float(log_p[np.arange(len(ids)), ids].sum())


def disagreements(model, src, targets):
    greedy_out = decoding.greedy(model, src, max_len=MAX_LEN + 2, bos_id=BOS_ID, eos_id=EOS_ID)
    beam_out = decoding.beam_search(model, src, beam_size=4, max_len=MAX_LEN + 2,
                                    bos_id=BOS_ID, eos_id=EOS_ID, length_penalty=0.0)
    found = []
    for i, (g, b) in enumerate(zip(greedy_out, beam_out)):
        if g != b:
            row = src[i:i + 1]
            found.append((i, log_prob(model, row, g), log_prob(model, row, b),
                          g == targets[i], b == targets[i]))
    return found


pairs, src = test_pairs()
report = disagreements(HandMadeReverser(VOCAB, right=3.0, eos=1.0), src,
                       [tgt + [EOS_ID] for _, tgt in pairs])
beam_more_probable = all(beam > greedy for _, greedy, beam, _, _ in report)
more_probable_is_right = all((b_right if beam > greedy else g_right)
                             for _, greedy, beam, g_right, b_right in report)
# END SOLUTION

# %% check ch16-greedy-vs-beam
mt.manual_seed(0)
real = nn.Transformer(VOCAB, VOCAB, d_model=16, n_heads=2, n_encoder_layers=1,
                      n_decoder_layers=1, d_ff=32, dropout=0.0, max_len=16).double().eval()
check_pairs, check_src = test_pairs()
row, ids = check_src[:1], check_pairs[0][1] + [EOS_ID]
want, prefix = 0.0, [BOS_ID]
with mt.no_grad():
    memory = real.encode(row, F.padding_mask(row, PAD_ID))
    for token in ids:  # one step at a time, as decoding does
        hidden = real.decode(mt.tensor([prefix]), memory, None, F.padding_mask(row, PAD_ID))
        want += float(F.log_softmax(real.project(hidden[:, -1]), axis=-1).numpy()[0, token])
        prefix = prefix + [token]
got = log_prob(real, row, ids)
assert abs(got - want) < 1e-9, (
    f"log_prob gives {got:.4f} for an output of a small Transformer, whose step-by-step "
    "log-probability differs: take the log_softmax of the logits (not the logits) at each "
    "position and sum the entries of the output's ids")
half_trained = HandMadeReverser(VOCAB, right=3.0, eos=1.0)
check_targets = [tgt + [EOS_ID] for _, tgt in check_pairs]
greedy_out = decoding.greedy(half_trained, check_src, max_len=MAX_LEN + 2, bos_id=BOS_ID,
                             eos_id=EOS_ID)
beam_out = decoding.beam_search(half_trained, check_src, beam_size=4, max_len=MAX_LEN + 2,
                                bos_id=BOS_ID, eos_id=EOS_ID, length_penalty=0.0)
differ = [i for i, (g, b) in enumerate(zip(greedy_out, beam_out)) if g != b]
got = disagreements(half_trained, check_src, check_targets)
assert [entry[0] for entry in got] == differ, (
    f"disagreements lists {len(got)} rows, but greedy and a beam of 4 (length_penalty 0.0, "
    f"max_len MAX_LEN + 2) disagree on {len(differ)} of the test sources")
for i, greedy_lp, beam_lp, greedy_right, beam_right in got:
    assert abs(greedy_lp - log_prob(half_trained, check_src[i:i + 1], greedy_out[i])) < 1e-9 \
        and abs(beam_lp - log_prob(half_trained, check_src[i:i + 1], beam_out[i])) < 1e-9, (
            f"row {i}: the log-probabilities should be log_prob of the greedy and of the beam "
            "output, in that order")
    assert (greedy_right, beam_right) == (greedy_out[i] == check_targets[i],
                                          beam_out[i] == check_targets[i]), (
        f"row {i}: greedy_right and beam_right should say whether each output equals the "
        "target followed by <eos>")
assert len(report) == len(differ), f"report has {len(report)} rows, not {len(differ)}"
higher = sum(beam > greedy for _, greedy, beam, _, _ in report)
assert beam_more_probable is (higher == len(report)), (
    f"beam_more_probable is {beam_more_probable!r}, but the beam's output is more probable on "
    f"{higher} of the {len(report)} disagreements")
right = sum((b_right if beam > greedy else g_right) for _, greedy, beam, g_right, b_right in report)
assert more_probable_is_right is (right == len(report)), (
    f"more_probable_is_right is {more_probable_is_right!r}, but the more probable output is "
    f"right on {right} of the {len(report)} disagreements")

# %% wrong ch16-greedy-vs-beam
def log_prob(model, src_row, ids):  # noqa: F811  (sums the logits, not log-probabilities)
    with mt.no_grad():
        logits = model(src_row, mt.tensor([[BOS_ID] + ids[:-1]]),
                       src_mask=F.padding_mask(src_row, PAD_ID)).numpy()[0]
    return float(logits[np.arange(len(ids)), ids].sum())

# %% wrong ch16-greedy-vs-beam
more_probable_is_right = True  # "the search finds the best output"

# %% exercise ch16-temperature (2 points)
# The model is a HandMadeReverser(VOCAB, right=math.log(135)): at temperature 1 it gives the
#   right token probability 0.9 at every step (135 / (135 + 15)).
# sample_scores(model, src, pairs, temperature) -> (exact_match, bleu): decode src with
#   decoding.sample(max_len=MAX_LEN + 2, seed=0, the temperature given); exact_match is the
#   share of outputs equal to target + [EOS_ID], bleu the corpus_bleu score (its "bleu") of
#   the outputs without their final <eos> against the targets.
# scores: {temperature: sample_scores(...)} on the test pairs (test_pairs()) for the
#   temperatures 0, 0.5, 1.0 and 2.0.
# BEGIN SOLUTION
def sample_scores(model, src, pairs, temperature):
    outputs = decoding.sample(model, src, max_len=MAX_LEN + 2, bos_id=BOS_ID, eos_id=EOS_ID,
                              temperature=temperature, seed=0)
    targets = [tgt for _, tgt in pairs]
    exact = float(np.mean([out == tgt + [EOS_ID] for out, tgt in zip(outputs, targets)]))
    stripped = [out[:-1] if out and out[-1] == EOS_ID else out for out in outputs]
    return exact, corpus_bleu(stripped, targets)["bleu"]


pairs, src = test_pairs()
sure = HandMadeReverser(VOCAB, right=math.log(135))
scores = {t: sample_scores(sure, src, pairs, t) for t in (0, 0.5, 1.0, 2.0)}
# END SOLUTION

# %% check ch16-temperature
check_pairs, check_src = test_pairs()
model = HandMadeReverser(VOCAB, right=math.log(135))
assert sorted(scores) == [0, 0.5, 1.0, 2.0], f"scores has the keys {sorted(scores)}"
exact_0, bleu_0 = sample_scores(model, check_src, check_pairs, 0)
assert exact_0 == 1.0, (
    f"at temperature 0 (greedy) the model writes every target, yet exact_match is {exact_0}: "
    "compare each output with its target + [EOS_ID]")
assert abs(bleu_0 - 100) < 1e-9, (
    f"at temperature 0 every output is right, yet bleu is {bleu_0:.2f}: drop the final <eos> "
    "from each output before scoring, the targets have none")
lengths = np.array([len(tgt) + 1 for _, tgt in check_pairs])  # draws per output, <eos> included
for temperature in (0.5, 1.0, 2.0):
    exact, bleu = scores[temperature]
    p = 135 ** (1 / temperature) / (135 ** (1 / temperature) + 15)  # the right token's share
    expected = float(np.mean(p**lengths))  # every draw of an output must be right
    assert abs(exact - expected) < 4 * math.sqrt(expected * (1 - expected) / 100) + 0.01, (
        f"at temperature {temperature} exact_match is {exact:.2f}, far from what the model's "
        "probabilities allow: sample with decoding.sample(..., temperature=temperature, "
        "seed=0) and compare each output with target + [EOS_ID]")
    assert (exact, bleu) == tuple(sample_scores(model, check_src, check_pairs, temperature)), (
        f"scores[{temperature}] is not what sample_scores gives for the test pairs")
exacts = [scores[t][0] for t in (0, 0.5, 1.0, 2.0)]
bleus = [scores[t][1] for t in (0, 0.5, 1.0, 2.0)]
assert exacts == sorted(exacts, reverse=True) and bleus == sorted(bleus, reverse=True), (
    f"exact match {exacts} and BLEU {np.round(bleus, 1).tolist()} should fall as the "
    "temperature rises")

# %% wrong ch16-temperature
def sample_scores(model, src, pairs, temperature):  # noqa: F811  (scores the <eos> too)
    outputs = decoding.sample(model, src, max_len=MAX_LEN + 2, bos_id=BOS_ID, eos_id=EOS_ID,
                              temperature=temperature, seed=0)
    targets = [tgt for _, tgt in pairs]
    exact = float(np.mean([out == tgt + [EOS_ID] for out, tgt in zip(outputs, targets)]))
    return exact, corpus_bleu(outputs, targets)["bleu"]

# %% wrong ch16-temperature
def sample_scores(model, src, pairs, temperature):  # noqa: F811  (targets without <eos>)
    outputs = decoding.sample(model, src, max_len=MAX_LEN + 2, bos_id=BOS_ID, eos_id=EOS_ID,
                              temperature=temperature, seed=0)
    targets = [tgt for _, tgt in pairs]
    stripped = [out[:-1] if out and out[-1] == EOS_ID else out for out in outputs]
    exact = float(np.mean([out == tgt for out, tgt in zip(outputs, targets)]))
    return exact, corpus_bleu(stripped, targets)["bleu"]

# %% exercise ch16-cache-crossover (3 points)
# Timings on a shared machine are noisy, so this counts the work instead: the decoder
#   positions processed while generating.
# positions_processed(model, src, n_tokens, use_cache) -> int: the total number of decoder
#   positions (per source row) that model.decode processes while decoding.greedy generates
#   exactly n_tokens tokens (eos_id=-1, never produced) with or without the cache. Count them
#   by replacing model.decode, for the length of the call, with a function that adds up
#   tgt.shape[1] and calls the original; restore it afterwards (del model.decode).
# growth_exponent(lengths, counts) -> float: the slope of the straight line fitted to
#   log(count) against log(length) (np.polyfit): 1 for linear growth, 2 for quadratic.
# exponents: {"cached": ..., "uncached": ...}: growth_exponent of positions_processed for
#   n_tokens in 4, 8, 16, 32, 64, with the model below and src = test_pairs()[1][:2].
# quadratic: "cached" or "uncached": which one grows quadratically?
# BEGIN SOLUTION
def positions_processed(model, src, n_tokens, use_cache):
    counted = []
    original = model.decode

    def counting_decode(tgt, *args, **kwargs):
        counted.append(tgt.shape[1])
        return original(tgt, *args, **kwargs)

    model.decode = counting_decode
    try:
        decoding.greedy(model, src, max_len=n_tokens, bos_id=BOS_ID, eos_id=-1,
                        use_cache=use_cache)
    finally:
        del model.decode  # the class's decode again
    return sum(counted)


def growth_exponent(lengths, counts):
    return float(np.polyfit(np.log(lengths), np.log(counts), 1)[0])


mt.manual_seed(1)
model = nn.Transformer(VOCAB, VOCAB, d_model=16, n_heads=2, n_encoder_layers=1,
                       n_decoder_layers=2, d_ff=32, dropout=0.0, max_len=72)
src = test_pairs()[1][:2]
lengths = [4, 8, 16, 32, 64]
exponents = {name: growth_exponent(lengths, [positions_processed(model, src, n, use_cache)
                                             for n in lengths])
             for name, use_cache in (("cached", True), ("uncached", False))}
quadratic = "uncached"
# END SOLUTION

# %% check ch16-cache-crossover
mt.manual_seed(2)
small = nn.Transformer(VOCAB, VOCAB, d_model=16, n_heads=2, n_encoder_layers=1,
                       n_decoder_layers=1, d_ff=32, dropout=0.0, max_len=32)
rows = test_pairs()[1][:3]
for n in (1, 5, 12):
    for use_cache, want in ((True, n), (False, n * (n + 1) // 2)):
        got = positions_processed(small, rows, n, use_cache)
        assert got == want, (
            f"positions_processed(model, src, {n}, use_cache={use_cache}) is {got}: add up "
            "tgt.shape[1] over every call of model.decode during decoding.greedy(..., "
            f"max_len={n}, eos_id=-1, use_cache={use_cache})")
assert "decode" not in vars(small), "restore model.decode after counting (del model.decode)"
for counts, slope in (([3, 6, 12, 24], 1.0), ([1, 4, 16, 64], 2.0), ([5, 5, 5, 5], 0.0)):
    got = growth_exponent([1, 2, 4, 8], counts)
    assert abs(got - slope) < 1e-9, (
        f"growth_exponent([1, 2, 4, 8], {counts}) is {got:.3f}: fit a line to log(count) "
        "against log(length) and return its slope")
assert abs(exponents["cached"] - 1) < 0.05 and 1.8 < exponents["uncached"] < 2.0, (
    f"the exponents are {exponents}: measure positions_processed for 4, 8, 16, 32 and 64 "
    "tokens, with and without the cache")
assert quadratic == "uncached", (
    f"quadratic is {quadratic!r}, but the exponents you measured are {exponents}")

# %% wrong ch16-cache-crossover
def positions_processed(model, src, n_tokens, use_cache):  # noqa: F811  (counts calls)
    counted = []
    original = model.decode

    def counting_decode(tgt, *args, **kwargs):
        counted.append(1)
        return original(tgt, *args, **kwargs)

    model.decode = counting_decode
    try:
        decoding.greedy(model, src, max_len=n_tokens, bos_id=BOS_ID, eos_id=-1,
                        use_cache=use_cache)
    finally:
        del model.decode
    return sum(counted)

# %% wrong ch16-cache-crossover
quadratic = "cached"  # "the cache grows with every token"
