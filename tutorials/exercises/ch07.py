# %% setup
# Chapter 7's exercises, graded: write each answer in its cell; the check cell after it says
# what is wrong, if anything. `minitransformer grade` gives each exercise its points.
import math

import numpy as np

import minitransformer as mt
import minitransformer.functional as F


def as_array(x):
    """A Tensor or array-like as a float64 NumPy array (answers may use either)."""
    return np.asarray(x.numpy() if isinstance(x, mt.Tensor) else x, dtype=np.float64)


# %% exercise ch07-interpretable (2 points)
# X_hand, W_Q_hand, W_K_hand: (4, 4) each, Tensors or arrays. The tokens are, in order,
# "the", "cat", "sat", "down"; keys and values are both X_hand @ W_K_hand.
# BEGIN SOLUTION
X_hand = mt.tensor(np.eye(4, dtype=np.float32))
W_K_hand = mt.tensor(np.eye(4, dtype=np.float32))
w_q = 5.0 * np.eye(4, dtype=np.float32)
w_q[2] = 5.0 * np.eye(4, dtype=np.float32)[1]  # "sat" asks for "cat"
W_Q_hand = mt.tensor(w_q)
# END SOLUTION

# %% check ch07-interpretable
for name in ("X_hand", "W_Q_hand", "W_K_hand"):
    assert as_array(globals()[name]).shape == (4, 4), \
        f"{name} should have shape (4, 4), not {as_array(globals()[name]).shape}"
keys = mt.tensor(as_array(X_hand) @ as_array(W_K_hand))
_, hand_weights = F.scaled_dot_product_attention(
    mt.tensor(as_array(X_hand) @ as_array(W_Q_hand)), keys, keys)
hand_weights = hand_weights.numpy()
tokens = ["the", "cat", "sat", "down"]
for i, token in enumerate(tokens):
    want = 1 if token == "sat" else i
    got = int(hand_weights[i].argmax())
    assert got == want, (f"'{token}' (row {i}) attends most to '{tokens[got]}', not to "
                         f"'{tokens[want]}': row {i} of W_Q_hand picks the key it looks for")
    assert hand_weights[i, want] > 0.5, (
        f"'{token}' gives '{tokens[want]}' only weight {hand_weights[i, want]:.2f}; make the "
        "matching score larger (scale W_Q_hand) so that it gets most of the weight (> 0.5)")

# %% wrong ch07-interpretable
W_Q_hand = mt.tensor(5.0 * np.eye(4, dtype=np.float32))  # "sat" still looks for itself

# %% exercise ch07-variance-two (2 points)
# divisor(d_k): what to divide q·k by when the components of q and k have variance 2.
# measured_variance: var(q·k / divisor(64)) over 20,000 samples of such q and k.
# BEGIN SOLUTION
def divisor(d_k):
    return 2 * math.sqrt(d_k)


rng = np.random.default_rng(0)
q_samples = rng.standard_normal((20000, 64)) * np.sqrt(2)
k_samples = rng.standard_normal((20000, 64)) * np.sqrt(2)
measured_variance = float(((q_samples * k_samples).sum(axis=1) / divisor(64)).var())
# END SOLUTION

# %% check ch07-variance-two
for d_k in (4, 64, 512):
    # var(q·k) = d_k · var(q_i) · var(k_i) = 4 d_k, so the scores have variance 4 d_k / divisor²
    scaled_variance = 4 * d_k / divisor(d_k) ** 2
    assert abs(scaled_variance - 1) < 1e-6, (
        f"with components of variance 2, q·k has variance 4·d_k, so dividing by divisor({d_k}) "
        f"= {divisor(d_k):.4g} leaves variance {scaled_variance:.3g}, not 1")
assert 0.9 < measured_variance < 1.1, (
    f"measured_variance is {measured_variance:.3g}; the scaled scores should have variance "
    "close to 1 (draw q and k with standard deviation √2, not 2)")

# %% wrong ch07-variance-two
def divisor(d_k):  # noqa: F811  (the chapter's √d_k, right only for unit variance)
    return math.sqrt(d_k)

# %% exercise ch07-mask-after-softmax (2 points)
# attend_mask_after(q, k, v, mask) -> (output (T, d_v), weights (T, S)): attention with the
# mask applied AFTER the softmax (weights multiplied by the mask); q, k, v are Tensors.
# causality_holds: True or False: with the mask after the softmax, do the earlier outputs stay
# unchanged whatever the later tokens' keys and values are?
# BEGIN SOLUTION
def attend_mask_after(q, k, v, mask):
    weights = ((q @ k.T) / math.sqrt(q.shape[-1])).softmax(axis=-1) * mask
    return weights @ v, weights


causality_holds = False  # a later key still sits in every earlier softmax's normaliser
# END SOLUTION

# %% check ch07-mask-after-softmax
rng = np.random.default_rng(7)
T = 4
Q, K, V = (mt.tensor(rng.standard_normal((T, 8))) for _ in range(3))
causal = F.causal_mask(T)
out_after, w_after = attend_mask_after(Q, K, V, causal)
sums = as_array(w_after).sum(axis=-1)
assert as_array(w_after).shape == (T, T), f"weights should be (T, S) = ({T}, {T})"
assert np.all(as_array(w_after)[~causal] == 0), "masked weights (the future) should be 0"
assert abs(sums[-1] - 1) < 1e-9 and np.all(sums[:-1] < 1 - 1e-6), (
    f"the rows of the weights sum to {np.round(sums, 3)}; multiplying the softmax by the mask "
    "leaves only the last row (which masks nothing) summing to 1. Is the mask applied after "
    "the softmax?")
K_later = mt.concat([K[: T - 1], K[T - 1:] + 10.0], axis=0)
change = np.abs(as_array(attend_mask_after(Q, K_later, V, causal)[0])[: T - 1]
                - as_array(out_after)[: T - 1]).max()
assert change > 1e-3, "changing the last key should change the earlier outputs (its softmax term)"
assert causality_holds is False, (
    f"causality_holds is {causality_holds!r}, but changing the last key changed the earlier "
    f"outputs by up to {change:.2f}: the later key sits in every earlier row's normaliser")

# %% wrong ch07-mask-after-softmax
def attend_mask_after(q, k, v, mask):  # noqa: F811  (the mask applied before, as in the chapter)
    return F.scaled_dot_product_attention(q, k, v, mask=mask)

# %% exercise ch07-causal-rectangle (1 point)
# my_causal_mask(size, key_size) -> (T, S) bool NumPy array, T = size, S = key_size, written
# with NumPy only (not F.causal_mask): the T queries are the LAST T of S positions, as when
# decoding with a cache.
# BEGIN SOLUTION
def my_causal_mask(size, key_size):
    return np.tril(np.ones((size, key_size), dtype=bool), k=key_size - size)
# END SOLUTION

# %% check ch07-causal-rectangle
for T, S in [(2, 5), (1, 7), (4, 4), (3, 6)]:
    mine, want = np.asarray(my_causal_mask(T, S)), np.asarray(F.causal_mask(T, S))
    assert mine.shape == (T, S), f"my_causal_mask({T}, {S}) has shape {mine.shape}, not ({T}, {S})"
    assert np.array_equal(mine.astype(bool), want), (
        f"my_causal_mask({T}, {S}) is\n{mine.astype(int)}\nbut query i (position i + {S - T}) "
        f"may see keys 0..i + {S - T}:\n{want.astype(int)}")

# %% wrong ch07-causal-rectangle
def my_causal_mask(size, key_size):  # noqa: F811  (the queries taken as the FIRST T positions)
    return np.tril(np.ones((size, key_size), dtype=bool))
