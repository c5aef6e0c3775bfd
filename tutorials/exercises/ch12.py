# %% setup
# Chapter 12's exercises, graded: write each answer in its cell; the check cell after it says
# what is wrong, if anything. `minitransformer grade` gives each exercise its points.
# Training the chapter's model takes too long for a check, so the exercises grade the pieces
# of each experiment that need no training run: the data, the alignment, the evaluation, the
# loss floor, the masks.
import math

import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn
from minitransformer.data import EOS_ID, N_SPECIAL

VOCAB, MIN_LEN, MAX_LEN = 16, 3, 8  # the chapter's settings


# %% exercise ch12-reverse (2 points)
# reverse_pairs: the chapter's training data for the reversal task: 2,000 (source, target)
#   pairs from mt.data.reverse_task with vocab_size=VOCAB, min_len=MIN_LEN, max_len=MAX_LEN,
#   seed=0.
# source_position(t, length, task) -> int: the source position that output position t must
#   read to write the right token, for a source of `length` tokens; task: "copy" or "reverse".
# reverse_depends_on_length: True or False: for the reversal task, does the source position
#   that output position 0 reads depend on the length of the source?
# BEGIN SOLUTION
reverse_pairs = mt.data.reverse_task(2000, vocab_size=VOCAB, min_len=MIN_LEN, max_len=MAX_LEN,
                                     seed=0)


def source_position(t, length, task):
    return t if task == "copy" else length - 1 - t


reverse_depends_on_length = True  # output 0 is the LAST source token: position length - 1
# END SOLUTION

# %% check ch12-reverse
assert len(reverse_pairs) == 2000, f"reverse_pairs has {len(reverse_pairs)} pairs, not 2,000"
for src, tgt in reverse_pairs[:200]:
    assert tgt == src[::-1], (
        f"the pair ({src}, {tgt}) is not a reversal (target = source reversed): build the pairs "
        "with mt.data.reverse_task, not copy_task")
    assert MIN_LEN <= len(src) <= MAX_LEN and min(src) >= N_SPECIAL and max(src) < VOCAB, (
        f"the source {src} is outside the chapter's settings: lengths {MIN_LEN} to {MAX_LEN}, "
        f"ids {N_SPECIAL} to {VOCAB - 1}")
rng = np.random.default_rng(0)
for S in range(MIN_LEN, MAX_LEN + 1):
    src = rng.integers(N_SPECIAL, VOCAB, size=S).tolist()
    for task, tgt in (("copy", src), ("reverse", src[::-1])):
        got = [source_position(t, S, task) for t in range(S)]
        assert all(0 <= p < S for p in got), (
            f"source_position(t, {S}, {task!r}) for t = 0..{S - 1} gives {got}: a source of "
            f"{S} tokens has positions 0 to {S - 1}")
        assert [src[p] for p in got] == tgt, (
            f"for the {task} task and the source {src}, reading the positions {got} writes "
            f"{[src[p] for p in got]}, not the target {tgt}")
firsts = sorted({source_position(0, S, "reverse") for S in range(MIN_LEN, MAX_LEN + 1)})
assert reverse_depends_on_length is (len(firsts) > 1), (
    f"reverse_depends_on_length is {reverse_depends_on_length!r}, but for sources of "
    f"{MIN_LEN} to {MAX_LEN} tokens output position 0 reads source positions {firsts}")

# %% wrong ch12-reverse
def source_position(t, length, task):  # noqa: F811  (off by one: no position `length`)
    return t if task == "copy" else length - t

# %% wrong ch12-reverse
reverse_depends_on_length = False  # as if the alignment were fixed, like copying

# %% wrong ch12-reverse
reverse_pairs = mt.data.copy_task(2000, vocab_size=VOCAB, min_len=MIN_LEN, max_len=MAX_LEN,
                                  seed=0)  # only one of the chapter's two data lines changed

# %% exercise ch12-longer (3 points)
# Without the trained model, this grades the two measurements that explain its failure.
# long_pairs: 100 copy-task pairs longer than any seen in training: mt.data.copy_task with
#   vocab_size=VOCAB, min_len=MAX_LEN + 1, max_len=MAX_LEN + 4, seed=2.
# latest_training_eos: the largest decoder position (column index of tgt_out) at which <eos>
#   is a target in the chapter's training data, measured: collate_seq2seq of
#   mt.data.copy_task(2000, vocab_size=VOCAB, min_len=MIN_LEN, max_len=MAX_LEN, seed=0).
# length_report(outputs, pairs) -> (exact_match, too_short), two floats in [0, 1]: for decoded
#   outputs (lists of ids, ending with <eos> when generation stopped on it) and their
#   (source, target) pairs, the share of outputs that are exactly target + [EOS_ID], and the
#   share that hold fewer tokens than their target (not counting the <eos>).
# BEGIN SOLUTION
long_pairs = mt.data.copy_task(100, vocab_size=VOCAB, min_len=MAX_LEN + 1,
                               max_len=MAX_LEN + 4, seed=2)
train_batch = mt.data.collate_seq2seq(
    mt.data.copy_task(2000, vocab_size=VOCAB, min_len=MIN_LEN, max_len=MAX_LEN, seed=0))
latest_training_eos = int(np.nonzero(train_batch.tgt_out.numpy() == EOS_ID)[1].max())


def length_report(outputs, pairs):
    exact = [out == tgt + [EOS_ID] for out, (_, tgt) in zip(outputs, pairs)]
    generated = [out[:-1] if out and out[-1] == EOS_ID else out for out in outputs]
    short = [len(ids) < len(tgt) for ids, (_, tgt) in zip(generated, pairs)]
    return float(np.mean(exact)), float(np.mean(short))
# END SOLUTION

# %% check ch12-longer
assert len(long_pairs) == 100, f"long_pairs has {len(long_pairs)} pairs, not 100"
lengths = sorted({len(src) for src, _ in long_pairs})
assert lengths[0] > MAX_LEN and lengths[-1] <= MAX_LEN + 4, (
    f"long_pairs has sources of lengths {lengths}: use min_len=MAX_LEN + 1 and "
    "max_len=MAX_LEN + 4, longer than every training sequence")
assert all(src == tgt for src, tgt in long_pairs), "long_pairs should be copy-task pairs"
assert latest_training_eos == MAX_LEN, (
    f"latest_training_eos is {latest_training_eos!r}: find the columns where tgt_out == EOS_ID "
    "in the collated training batch and take the largest (column indices count from 0)")
# Outputs like the trained model's: it copies about MAX_LEN tokens and stops.
pairs = long_pairs[:6]
targets = [tgt for _, tgt in pairs]
outputs = [
    targets[0] + [EOS_ID],  # right
    targets[1][:MAX_LEN] + [EOS_ID],  # stopped after MAX_LEN tokens
    targets[2][:-1] + [EOS_ID],  # one token short
    [targets[3][0] + 1 if targets[3][0] < VOCAB - 1 else N_SPECIAL] + targets[3][1:]
    + [EOS_ID],  # the right length, one token wrong
    targets[4] + [targets[4][-1]],  # did not stop within max_len
    targets[5][:MAX_LEN],  # stopped by max_len before its end
]
exact_match, too_short = length_report(outputs, pairs)
assert math.isclose(exact_match, 1 / 6), (
    f"length_report gives exact_match {exact_match:.3f} for six outputs of which one is its "
    "target followed by <eos>: compare each output with target + [EOS_ID]")
assert math.isclose(too_short, 3 / 6), (
    f"length_report gives too_short {too_short:.3f} for six outputs of which three hold fewer "
    "tokens than their target: drop a final <eos> before counting an output's tokens (and "
    "count outputs without one as they are)")

# %% wrong ch12-longer
def length_report(outputs, pairs):  # noqa: F811  (forgets the <eos> in the exact match)
    exact = [out == tgt for out, (_, tgt) in zip(outputs, pairs)]
    short = [len(out) - 1 < len(tgt) for out, (_, tgt) in zip(outputs, pairs)]
    return float(np.mean(exact)), float(np.mean(short))

# %% wrong ch12-longer
def length_report(outputs, pairs):  # noqa: F811  (counts the <eos> as one of the tokens)
    exact = [out == tgt + [EOS_ID] for out, (_, tgt) in zip(outputs, pairs)]
    short = [len(out) < len(tgt) for out, (_, tgt) in zip(outputs, pairs)]
    return float(np.mean(exact)), float(np.mean(short))

# %% wrong ch12-longer
latest_training_eos = train_batch.tgt_out.shape[1]  # the number of columns, not an index

# %% exercise ch12-no-smoothing (2 points)
# smoothing_floor(vocab_size, epsilon) -> float: the smallest value that F.cross_entropy with
#   label_smoothing=epsilon can take over vocab_size classes: the entropy (in nats) of its smoothed
#   target distribution (read F.cross_entropy's docstring for how it spreads ε).
# confident_losses: (plain, smoothed), two floats: F.cross_entropy of the (4, VOCAB) logits
#   that put 20.0 on the targets [7, 8, 9, 10] and 0.0 everywhere else (a model as sure as the
#   unsmoothed one becomes), without and with label_smoothing=0.1.
# BEGIN SOLUTION
def smoothing_floor(vocab_size, epsilon):
    smoothed = np.full(vocab_size, epsilon / vocab_size)  # ε spread evenly over all V ...
    smoothed[0] += 1 - epsilon  # ... and 1 - ε on the right one
    return float(-(smoothed * np.log(smoothed)).sum())


confident_targets = np.array([7, 8, 9, 10])
confident_logits = np.zeros((4, VOCAB))
confident_logits[np.arange(4), confident_targets] = 20.0
confident_losses = tuple(
    F.cross_entropy(mt.tensor(confident_logits), mt.tensor(confident_targets),
                    label_smoothing=epsilon).item()
    for epsilon in (0.0, 0.1))
# END SOLUTION

# %% check ch12-no-smoothing
for V, epsilon in [(16, 0.1), (16, 0.3), (1000, 0.1)]:
    floor = smoothing_floor(V, epsilon)
    targets = np.arange(3) % V
    best = np.full((3, V), epsilon / V)
    best[np.arange(3), targets] += 1 - epsilon  # the loss is smallest at p = smoothed target
    reached = F.cross_entropy(mt.tensor(np.log(best)), mt.tensor(targets),
                              label_smoothing=epsilon).item()
    assert math.isclose(floor, reached, rel_tol=1e-6), (
        f"smoothing_floor({V}, {epsilon}) is {floor:.4f}, but F.cross_entropy reaches "
        f"{reached:.4f} at the best logits: its target puts ε/V on every class, the right one "
        "included (1 - ε + ε/V there), not ε/(V - 1) on the others")
plain, smoothed = confident_losses
assert plain < 1e-6, (
    f"the plain loss of the confident logits is {plain:.3g}; it should be about 0: use "
    "label_smoothing=0.0 for the first number")
assert math.isclose(smoothed, 0.1 * (VOCAB - 1) / VOCAB * 20.0, rel_tol=1e-3), (
    f"the smoothed loss of the confident logits is {smoothed:.4f}; with label_smoothing=0.1 "
    "each wrong class expects 0.1/16 of the mass and costs 20 nats: build the logits with 20.0 "
    "at the targets [7, 8, 9, 10] and 0.0 elsewhere")
assert smoothed > smoothing_floor(VOCAB, 0.1) + 1, (
    "a confident model should score far above the smoothing floor")

# %% wrong ch12-no-smoothing
def smoothing_floor(vocab_size, epsilon):  # noqa: F811  (the other convention: ε/(V - 1))
    return float(-((1 - epsilon) * np.log(1 - epsilon)
                   + epsilon * np.log(epsilon / (vocab_size - 1))))

# %% exercise ch12-no-tgt-mask (3 points)
# future_influence(model, batch, tgt_mask) -> float: the largest absolute change of the
#   logits at decoder position 0 (all rows) when the LAST token of every row of batch.tgt_in is
#   replaced by another id, running model(batch.src, tgt_in, src_mask=batch.src_mask,
#   tgt_mask=tgt_mask) without a graph (mt.no_grad()).
# none_means: "causal" or "no mask": what nn.Transformer's decoder uses when tgt_mask is None.
# BEGIN SOLUTION
def future_influence(model, batch, tgt_mask):
    changed = batch.tgt_in.numpy().copy()
    changed[:, -1] = np.where(changed[:, -1] == N_SPECIAL, N_SPECIAL + 1, N_SPECIAL)
    with mt.no_grad():
        before = model(batch.src, batch.tgt_in, src_mask=batch.src_mask, tgt_mask=tgt_mask)
        after = model(batch.src, mt.tensor(changed), src_mask=batch.src_mask,
                      tgt_mask=tgt_mask)
    return float(np.abs(before.numpy()[:, 0] - after.numpy()[:, 0]).max())


none_means = "causal"
# END SOLUTION

# %% check ch12-no-tgt-mask
mt.manual_seed(0)
tiny = nn.Transformer(VOCAB, VOCAB, d_model=16, n_heads=2, n_encoder_layers=1,
                      n_decoder_layers=1, d_ff=32, dropout=0.0, max_len=16)
tiny_batch = mt.data.collate_seq2seq(
    mt.data.copy_task(4, vocab_size=VOCAB, min_len=5, max_len=5, seed=3))
T = tiny_batch.tgt_in.shape[1]
everything = mt.tensor(np.ones((T, T), dtype=bool))
influence = {name: future_influence(tiny, tiny_batch, mask) for name, mask in
             [("causal", tiny_batch.tgt_mask), ("None", None), ("all-True", everything)]}
assert influence["all-True"] > 1e-3, (
    f"with an all-True tgt_mask, position 0 sees the last token, yet future_influence gives "
    f"{influence['all-True']:.3g}: change the last column of tgt_in to a different id and "
    "compare the logits of position 0 (logits[:, 0])")
assert influence["causal"] < 1e-9, (
    f"with the causal mask, future_influence gives {influence['causal']:.3g}, but position 0 "
    "cannot see later tokens: change only the LAST token of each row and compare position "
    "0's logits")
assert none_means in ("causal", "no mask"), (
    f"none_means is {none_means!r}; answer 'causal' or 'no mask'")
none_is_causal = influence["None"] < 1e-9
assert (none_means == "causal") == none_is_causal, (
    f"none_means is {none_means!r}, but with tgt_mask=None the last token changes position "
    f"0's logits by {influence['None']:.3g} (all-True mask: {influence['all-True']:.3g}, "
    f"causal: {influence['causal']:.3g})")

# %% wrong ch12-no-tgt-mask
def future_influence(model, batch, tgt_mask):  # noqa: F811  (changes the FIRST token)
    changed = batch.tgt_in.numpy().copy()
    changed[:, 0] = N_SPECIAL
    with mt.no_grad():
        before = model(batch.src, batch.tgt_in, src_mask=batch.src_mask, tgt_mask=tgt_mask)
        after = model(batch.src, mt.tensor(changed), src_mask=batch.src_mask,
                      tgt_mask=tgt_mask)
    return float(np.abs(before.numpy()[:, 0] - after.numpy()[:, 0]).max())

# %% wrong ch12-no-tgt-mask
none_means = "no mask"  # None read as "nothing hidden"
