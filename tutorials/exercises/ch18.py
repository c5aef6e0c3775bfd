# %% setup
# Chapter 18's exercises, graded: write each answer in its cell; the check cell after it says
# what is wrong, if anything. `minitransformer grade` gives each exercise its points.
# The exercises' training runs take minutes; the checks grade the measurements on small untrained
# models instead, where the right numbers can be computed exactly.
import numpy as np

import minitransformer as mt
from minitransformer import explain, nn
from minitransformer.data import PAD_ID, UNK_ID


def as_array(x):
    """A Tensor or array-like as a float64 NumPy array (answers may use either)."""
    return np.asarray(x.numpy() if isinstance(x, mt.Tensor) else x, dtype=np.float64)


# %% exercise ch18-mixed-lengths (2 points)
# With sequences of mixed lengths, query i of an example of length L should look at source
# position L − 1 − i. For cross-attention weights cross (B, T, S) (NumPy; T = the longest
# length + 1 decoder positions, S = the longest source, padded) and lengths (B ints, each
# example's source length L_b):
# anti_diagonal_weight(cross, lengths) -> float: the mean over every example b and every query
#   i < L_b of cross[b, i, L_b − 1 − i] (the <eos> query i = L_b and padded queries left out);
# anti_diagonal_hits(cross, lengths) -> float: over the same (b, i), the fraction whose largest
#   weight is at L_b − 1 − i.
# length_comes_from: where the decoder can read L from: "its own input", "the memory" (the
#   encoder's output) or "its query positions".
# (The training run of the exercise is not graded: it takes minutes.)
# BEGIN SOLUTION
def anti_diagonal_weight(cross, lengths):
    return float(np.mean([cross[b, i, L - 1 - i] for b, L in enumerate(lengths)
                          for i in range(L)]))


def anti_diagonal_hits(cross, lengths):
    return float(np.mean([cross[b, i].argmax() == L - 1 - i for b, L in enumerate(lengths)
                          for i in range(L)]))


length_comes_from = "the memory"  # the decoder sees only earlier outputs, never the source
# END SOLUTION

# %% check ch18-mixed-lengths
lengths = [3, 5, 4]
exact = np.full((3, 6, 5), 0.01)  # every example attends to its own anti-diagonal
for b, L in enumerate(lengths):
    exact[b, :, L:] = 0.0  # padded keys get nothing
    for i in range(L):
        exact[b, i, L - 1 - i] = 1.0
got = anti_diagonal_weight(exact, lengths), anti_diagonal_hits(exact, lengths)
assert np.allclose(got, (1.0, 1.0)), (
    f"weights of 1 on each example's own anti-diagonal give (weight, hits) = "
    f"({got[0]:.3f}, {got[1]:.3f}), not (1, 1): query i of an example of length L looks at "
    "L − 1 − i, with L that example's length (not the padded S), for the L queries i < L only")
pairs = mt.data.reverse_task(8, vocab_size=16, min_len=3, max_len=8, seed=0)
batch = mt.data.collate_seq2seq(pairs)
mt.manual_seed(0)
model = nn.Transformer(16, 16, d_model=16, n_heads=1, n_encoder_layers=1, n_decoder_layers=1,
                       d_ff=32, dropout=0.0, max_len=16)
model.eval()
with mt.no_grad():
    model(batch.src, batch.tgt_in, src_mask=batch.src_mask)
cross = model.decoder.layers[0].cross_attn.attention_weights.numpy()[:, 0]  # (B, T, S)
lengths = [len(source) for source, _ in pairs]
positions = [(b, i, L - 1 - i) for b, L in enumerate(lengths) for i in range(L)]
want = (np.mean([cross[b, i, s] for b, i, s in positions]),
        np.mean([cross[b, i].argmax() == s for b, i, s in positions]))
got = anti_diagonal_weight(cross, lengths), anti_diagonal_hits(cross, lengths)
assert np.allclose(got, want, atol=1e-6), (
    f"on an untrained model's cross-attention {cross.shape} with lengths {lengths}, "
    f"(weight, hits) = ({got[0]:.4f}, {got[1]:.4f}) is wrong: average over the "
    f"{len(positions)} pairs (b, i < L_b) of each example's anti-diagonal")
assert length_comes_from == "the memory", (
    f"length_comes_from is {length_comes_from!r}: at step i the decoder has seen only its first "
    "i outputs, and a query's position is i whatever L is; what else does it read?")

# %% wrong ch18-mixed-lengths
def anti_diagonal_weight(cross, lengths):  # noqa: F811  (the padded length S for every example)
    padded = cross.shape[-1]
    return float(np.mean([cross[b, i, padded - 1 - i] for b, L in enumerate(lengths)
                          for i in range(L)]))

# %% wrong ch18-mixed-lengths
def anti_diagonal_hits(cross, lengths):  # noqa: F811  (the <eos> query i = L counted too)
    return float(np.mean([cross[b, i].argmax() == L - 1 - i for b, L in enumerate(lengths)
                          for i in range(L + 1)]))

# %% exercise ch18-value-norms (2 points)
# value_weighted_scores(layer, memory, weights) -> (B, T, S) NumPy array: Kobayashi's score
# ‖α_ts v_s W^O‖ of key s for query t, for a ONE-head nn.MultiHeadAttention `layer`, its keys
# and values `memory` (B, S, D) Tensor and its weights α (B, T, S) NumPy. Compute v_s W^O as
# layer.w_o(layer.w_v(memory)) (biases included, as in the chapter's solution).
# argmax_agreement(weights, scores) -> float: the fraction of queries (b, t) whose largest
# weight and largest score are at the same key s.
# BEGIN SOLUTION
def value_weighted_scores(layer, memory, weights):
    with mt.no_grad():
        passed = layer.w_o(layer.w_v(memory)).numpy()  # (B, S, D): v_s W^O
    contribution = weights[:, :, :, None] * passed[:, None, :, :]  # (B, T, S, D)
    return np.linalg.norm(contribution, axis=-1)  # (B, T, S)


def argmax_agreement(weights, scores):
    return float((weights.argmax(axis=-1) == scores.argmax(axis=-1)).mean())
# END SOLUTION

# %% check ch18-value-norms
mt.manual_seed(0)
layer = nn.MultiHeadAttention(d_model=8, n_heads=1)
queries, memory = mt.randn(2, 3, 8), mt.randn(2, 5, 8)
with mt.no_grad():
    layer(queries, memory, memory)
weights = layer.attention_weights.numpy()[:, 0]  # (B, T, S)
scores = as_array(value_weighted_scores(layer, memory, weights))
assert scores.shape == (2, 3, 5), f"the scores should be (B, T, S) = (2, 3, 5), not {scores.shape}"
with mt.no_grad():
    passed = layer.w_o(layer.w_v(memory)).numpy()
want = weights * np.linalg.norm(passed, axis=-1)[:, None, :]  # α_ts ‖v_s W^O‖
assert np.allclose(scores, want, rtol=1e-5, atol=1e-7), (
    f"score[0, 0] is {np.round(scores[0, 0], 4)}, not ‖α_ts v_s W^O‖: multiply each weight by "
    "the value vector of its key passed through w_v AND w_o, then take the norm over the "
    f"model dimension (largest error {np.abs(scores - want).max():.2e})")
picked = np.array([[[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]]])  # (1, 2, 3)
ranked = np.array([[[0.1, 0.9, 0.2], [0.1, 0.8, 0.3]]])
agreement = argmax_agreement(picked, ranked)
assert abs(agreement - 0.5) < 1e-12, (
    f"argmax_agreement gives {agreement} for weights {picked.tolist()} and scores "
    f"{ranked.tolist()}; query 0 picks key 0 against key 1, query 1 key 1 by both: compare "
    "the arg-max over the keys (the last axis), query by query")

# %% wrong ch18-value-norms
def value_weighted_scores(layer, memory, weights):  # noqa: F811  (W^O left out)
    with mt.no_grad():
        passed = layer.w_v(memory).numpy()
    return np.linalg.norm(weights[:, :, :, None] * passed[:, None, :, :], axis=-1)

# %% wrong ch18-value-norms
def argmax_agreement(weights, scores):  # noqa: F811  (arg-max over the queries)
    return float((weights.argmax(axis=1) == scores.argmax(axis=1)).mean())

# %% exercise ch18-classifier-saliency (3 points)
# occlusion(classifier, ids) -> (B, T) NumPy array, for an nn.SequenceClassifier and ids
# (B, T) Tensor padded with PAD_ID: entry [b, t] is y_b − y_b', where y_b is the logit of
# class 1 (the exercise's target) for row b and y_b' the same logit with token t of row b
# replaced by <unk> (UNK_ID), every other token kept; 0 at padding positions (never occluded).
# top_token_rate(scores, positions) -> float: for scores (B, T) and positions (B ints), the
# fraction of rows b whose largest |scores[b, t]| is at t = positions[b] (|·|: gradient × input
# and occlusion can be negative).
# (The exercise's training run is not graded; the check uses an untrained classifier.)
# BEGIN SOLUTION
def occlusion(classifier, ids):
    ids = ids.numpy()
    with mt.no_grad():
        base = classifier(mt.tensor(ids)).numpy()[:, 1]  # (B,)
        drop = np.zeros(ids.shape)
        for t in range(ids.shape[1]):
            occluded = ids.copy()
            occluded[:, t] = UNK_ID
            drop[:, t] = base - classifier(mt.tensor(occluded)).numpy()[:, 1]
    return np.where(ids == PAD_ID, 0.0, drop)


def top_token_rate(scores, positions):
    return float(np.mean(np.abs(scores).argmax(axis=-1) == np.asarray(positions)))
# END SOLUTION

# %% check ch18-classifier-saliency
world = mt.data.text_world()
tokenizer = mt.data.WordTokenizer.train([s for s, _ in world.train + world.test])
mt.manual_seed(0)
encoder = nn.TextEncoder(tokenizer.vocab_size, d_model=16, n_heads=2, n_layers=1, d_ff=32,
                         dropout=0.0, max_len=32)
classifier = nn.SequenceClassifier(encoder, 2, pooling="mean", dropout=0.0)
ids = mt.data.collate_classification([(tokenizer.encode(s), y)
                                      for s, y in world.valid[:6]]).ids  # (6, T), padded
scores = as_array(occlusion(classifier, ids))
rows = ids.numpy()
assert scores.shape == rows.shape, f"occlusion should be (B, T) = {rows.shape}, not {scores.shape}"
assert np.all(scores[rows == PAD_ID] == 0), (
    f"occlusion is {np.round(scores[rows == PAD_ID], 3)} at padding positions: leave them alone "
    "(0); replacing padding by <unk> adds a token to the sentence")
with mt.no_grad():
    base = classifier(ids).numpy()[:, 1]
    for b, t in [(0, 0), (1, 3), (5, 2)]:
        occluded = rows.copy()
        occluded[b, t] = UNK_ID
        change = base[b] - classifier(mt.tensor(occluded)).numpy()[b, 1]
        assert abs(scores[b, t] - change) < 1e-5, (
            f"occlusion[{b}, {t}] is {scores[b, t]:.5f}, but replacing that token by <unk> "
            f"(UNK_ID = {UNK_ID}) changes class 1's logit by {change:.5f} (original minus "
            "occluded)")
rate = top_token_rate(np.array([[0.1, -0.9, 0.3], [0.5, 0.2, 0.1]]), [1, 1])
assert abs(rate - 0.5) < 1e-12, (
    f"top_token_rate gives {rate} for scores [[0.1, -0.9, 0.3], [0.5, 0.2, 0.1]] and positions "
    "[1, 1]; row 0's largest |score| is at 1, row 1's at 0: compare the arg-max of |scores| "
    "over the tokens with each row's position")
result = explain.saliency(classifier, ids, target=1)
rate = top_token_rate(result.grad_times_input, [2] * 6)
want = np.mean(np.abs(result.grad_times_input).argmax(axis=-1) == 2)
assert abs(rate - want) < 1e-12, (
    f"top_token_rate of explain.saliency's grad_times_input {result.grad_times_input.shape} "
    f"gives {rate}, not the fraction of rows whose largest |score| is at the given position")

# %% wrong ch18-classifier-saliency
def occlusion(classifier, ids):  # noqa: F811  (padding occluded too)
    ids = ids.numpy()
    with mt.no_grad():
        base = classifier(mt.tensor(ids)).numpy()[:, 1]
        drop = np.zeros(ids.shape)
        for t in range(ids.shape[1]):
            occluded = ids.copy()
            occluded[:, t] = UNK_ID
            drop[:, t] = base - classifier(mt.tensor(occluded)).numpy()[:, 1]
    return drop

# %% wrong ch18-classifier-saliency
def occlusion(classifier, ids):  # noqa: F811  (tokens deleted as padding, not replaced by <unk>)
    ids = ids.numpy()
    with mt.no_grad():
        base = classifier(mt.tensor(ids)).numpy()[:, 1]
        drop = np.zeros(ids.shape)
        for t in range(ids.shape[1]):
            occluded = ids.copy()
            occluded[:, t] = PAD_ID
            drop[:, t] = base - classifier(mt.tensor(occluded)).numpy()[:, 1]
    return np.where(ids == PAD_ID, 0.0, drop)

# %% wrong ch18-classifier-saliency
def top_token_rate(scores, positions):  # noqa: F811  (the largest score, not the largest |score|)
    return float(np.mean(np.asarray(scores).argmax(axis=-1) == np.asarray(positions)))
