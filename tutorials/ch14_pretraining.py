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
# # Chapter 14 — Pretraining: masked, causal and denoising language models
#
# Labelled data is scarce; unlabelled text is plentiful. **Pretraining** turns raw text into its
# own supervision: hide part of a sentence and train the model to recover it. No one has to label
# anything, and a model that can fill in "the film was ___ and i loved it" has learned which
# words go with "loved". Three objectives dominate, and minitransformer implements all three:
#
# - **masked language modelling** (BERT): hide 15% of the tokens, predict them from both sides;
# - **causal language modelling** (GPT): predict every token from the ones before it;
# - **denoising by span corruption** (T5): cut out spans, replace each by a *sentinel*, and let
#   an encoder-decoder write the missing spans.
#
# This chapter builds each objective's batch, checks it against the definition, pretrains small
# models on the built-in text world, samples text, and saves a checkpoint that chapter 15
# fine-tunes.
#
# **Learning objectives.** After this chapter you can
#
# 1. state BERT's masking recipe (15%, then 80/10/10) and measure that `MaskedLMCollator`
#    follows it, never choosing special tokens or padding;
# 2. compute the masked-LM loss from the logits of the masked positions only;
# 3. explain the causal LM's shifted targets and tied output layer, perplexity = e^loss, and why
#    an untrained model's loss is about ln V;
# 4. read a T5 span-corruption example and undo it;
# 5. pretrain with `pretrain(PretrainConfig(...))` and with `Trainer`, sample text with
#    `mt.decoding.generate`, and save a checkpoint for fine-tuning.

# %%
import math
import os
import shutil
import time
from importlib.util import find_spec
from pathlib import Path

import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn, train
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
from minitransformer.tasks.config import load_config
from minitransformer.tasks.pretrain import PretrainConfig, loss_function, pretrain

FAST = os.environ.get("MINITRANSFORMER_FAST") == "1"  # shorter pretraining when set
MLM_STEPS = 300 if FAST else 1500
CLM_STEPS = 300 if FAST else 1500
MODEL = dict(d_model=64, n_heads=4, n_layers=2, d_ff=128, dropout=0.1, max_len=32)

world = mt.data.text_world(seed=0)
tokenizer = WordTokenizer.train(world.corpus)
V = tokenizer.vocab_size
print(world)
print("corpus:", world.corpus[:3])
print(f"{tokenizer!r}: V = {V}, ln V = {math.log(V):.3f}")

# %% [markdown]
# ## 1. Three objectives, one idea
#
# Write a sentence as tokens $x_1, \dots, x_T$ and a model's predicted distribution as $p_\theta$.
#
# - **Masked LM.** Corrupt the input into $\tilde x$; over the set $M$ of chosen positions,
#   $\mathcal{L}_{\text{MLM}} = -\frac{1}{|M|}\sum_{i \in M} \log p_\theta(x_i \mid \tilde x)$.
#   Every position sees the whole (corrupted) sentence, left and right.
# - **Causal LM.** $\mathcal{L}_{\text{CLM}} = -\frac{1}{T-1}\sum_{t=1}^{T-1}
#   \log p_\theta(x_{t+1} \mid x_1, \dots, x_t)$: each position sees only the past, so the
#   model can *generate*, one token after another.
# - **Span corruption.** An encoder reads the sentence with spans replaced by sentinels
#   $\langle s_0\rangle, \langle s_1\rangle, \dots$; a decoder writes
#   $\langle s_0\rangle\,\text{span}_0\,\langle s_1\rangle\,\text{span}_1 \dots$ with the
#   ordinary sequence-to-sequence loss of chapter 12.
#
# All three are cross-entropies in nats, so $e^{\mathcal{L}}$ is a **perplexity**: the number of
# equally likely choices the model is, on average, hesitating between.

# %% [markdown]
# ## 2. BERT's masking recipe
#
# `mask_tokens` (and the batch-level `MaskedLMCollator`) choose each non-special token with
# probability 15%, independently. A chosen token is replaced by `<mask>` 80% of the time, by a
# random non-special token 10%, and left as it is 10%: if the model only ever had to predict at
# `<mask>`, it could ignore the representations of all other tokens, and at fine-tuning time
# there is no `<mask>` at all. The **label** of a chosen position is its original id; every
# other label is `IGNORE_INDEX` (−100), so the loss skips it. Special tokens (`<cls>`, `<sep>`,
# `<pad>`, …, ids below 7) are never chosen.

# %%
ids = [CLS_ID] + tokenizer.encode(world.corpus[0]) + [SEP_ID]
collate = mt.data.MaskedLMCollator(V, seed=3)
batch = collate([ids, ids[:5]])
print("tokens: ", [tokenizer.id_to_token(i) for i in ids])
print("input:  ", [tokenizer.id_to_token(i) for i in batch.ids.numpy()[0]])
print("labels: ", batch.labels.numpy()[0].tolist())
print("mask of row 1 (True = real token):", batch.mask.numpy()[1, 0, 0].tolist())
assert batch.ids.shape == batch.labels.shape == (2, len(ids))
assert batch.mask.shape == (2, 1, 1, len(ids))

# %% [markdown]
# One sentence shows the format; statistics need many. We collate 2,000 corpus sentences, each
# framed by `<cls>` … `<sep>` and padded to the longest of its batch of 50, and count. A chosen
# token that became a random token may by chance get its own id back (probability 1/(V − 7));
# those count as "kept", so the kept share should be $0.1 + 0.1/(V-7)$.

# %%
framed = [[CLS_ID] + tokenizer.encode(s) + [SEP_ID] for s in world.corpus[:2000]]
collate = mt.data.MaskedLMCollator(V, seed=0)
n_real = n_chosen = n_mask = n_random = n_kept = 0
for start in range(0, len(framed), 50):
    rows = framed[start:start + 50]
    batch = collate(rows)
    original = np.array(mt.data.pad_sequences(rows, PAD_ID))  # (B, T) before corruption
    corrupted, labels = batch.ids.numpy(), batch.labels.numpy()
    special = original < N_SPECIAL  # <cls>, <sep> and the padding
    assert (labels[special] == IGNORE_INDEX).all(), "a special token or padding was chosen"
    assert (corrupted[special] == original[special]).all()
    chosen = labels != IGNORE_INDEX
    assert (labels[chosen] == original[chosen]).all()  # the label is the original id
    n_real += int((~special).sum())
    n_chosen += int(chosen.sum())
    n_mask += int((corrupted[chosen] == MASK_ID).sum())
    n_kept += int((corrupted[chosen] == original[chosen]).sum())
    n_random += int(((corrupted != MASK_ID) & (corrupted != original) & chosen).sum())

p_chosen = n_chosen / n_real
shares = np.array([n_mask, n_random, n_kept]) / n_chosen
print(f"{n_real} real tokens, chosen {p_chosen:.3f}; of the chosen: <mask> {shares[0]:.3f}, "
      f"random {shares[1]:.3f}, kept {shares[2]:.3f}")
# Tolerances of about 4 standard deviations of a binomial share at these counts.
assert abs(p_chosen - 0.15) < 4 * math.sqrt(0.15 * 0.85 / n_real)
expected = np.array([0.8, 0.1 - 0.1 / (V - N_SPECIAL), 0.1 + 0.1 / (V - N_SPECIAL)])
assert (abs(shares - expected) < 4 * np.sqrt(expected * (1 - expected) / n_chosen)).all()

# %% [markdown]
# ## 3. The masked-LM loss reads only the masked positions
#
# `MaskedLanguageModel` puts BERT's head (Linear, GELU, LayerNorm, then the vocabulary
# projection) on a `TextEncoder`. The projection to V logits is the most expensive layer, and
# only about 15% of its outputs enter the loss, so `forward(ids, mask, positions=chosen)`
# gathers the chosen positions' hidden states first and returns logits of shape (N, V), N the
# number of chosen tokens. Write the loss that way; it must equal the cross-entropy of the full
# (B, T, V) logits with `ignore_index`.

# %%
mt.manual_seed(0)
mlm = nn.MaskedLanguageModel(nn.TextEncoder(V, pad_id=PAD_ID, **MODEL))
mlm.eval()  # no dropout, so the two computations below see the same network
batch = mt.data.MaskedLMCollator(V, seed=1)(framed[:64])
# BEGIN SOLUTION
chosen = batch.labels.data != IGNORE_INDEX  # (B, T) bool: the positions to predict
logits = mlm(batch.ids, batch.mask, positions=chosen)  # (N, V)
loss = F.cross_entropy(logits, batch.labels[chosen])
# END SOLUTION
full = mlm(batch.ids, batch.mask)  # (B, T, V): every position
full_loss = F.cross_entropy(full, batch.labels, ignore_index=IGNORE_INDEX)
share = logits.shape[0] / (full.shape[0] * full.shape[1])
print(f"logits {logits.shape} instead of {full.shape}: {share:.1%} of the projection's work")
print(f"loss {loss.item():.4f} = {full_loss.item():.4f} (ln V = {math.log(V):.4f})")
assert logits.shape == (int(chosen.sum()), V), (
    f"logits should be (chosen positions, V) = {(int(chosen.sum()), V)}, got {logits.shape}: "
    "pass positions=chosen to mlm, so that it projects only those positions"
)
assert np.allclose(logits.numpy(), full.numpy()[chosen], atol=1e-5), (
    "logits differ from the full model's logits at the chosen positions: call "
    "mlm(batch.ids, batch.mask, positions=chosen) with the corrupted ids and the padding mask"
)
assert abs(loss.item() - full_loss.item()) < 1e-5, (
    f"loss {loss.item():.6f} differs from the full loss {full_loss.item():.6f}: chosen should "
    "be labels != IGNORE_INDEX and loss = F.cross_entropy(logits, batch.labels[chosen])"
)

# %% [markdown]
# **Why ln V?** An untrained model's logits are small: the embeddings start at
# N(0, 0.02²), so each logit $h \cdot e_w$ is a sum of 64 products of size ~0.02 and the
# softmax is nearly uniform, $p \approx 1/V$. The cross-entropy of a uniform guess is
# $-\log(1/V) = \ln V$, and the perplexity is V: the model hesitates between every word. Any
# loss below ln V is something learned.

# %%
assert abs(loss.item() - math.log(V)) < 0.1, (
    f"an untrained model's loss should be close to ln V = {math.log(V):.3f}, got "
    f"{loss.item():.3f}: loss should be F.cross_entropy(logits, batch.labels[chosen]), over the "
    "chosen positions only (labels != IGNORE_INDEX)"
)

# %% [markdown]
# ## 4. The causal language model
#
# `CausalLanguageModel` is a `TextEncoder` run with a causal mask (position t attends to
# 0..t) and an output layer **tied** to the input embeddings: logits $= h E^\top + b$, the
# paper's weight sharing (section 3.4). Tying saves V·d_model parameters and makes a word's
# input vector and its output vector the same. For the targets, `collate_causal_lm` shifts by
# one: inputs are `seq[:-1]`, targets `seq[1:]`, padding in the targets is `IGNORE_INDEX`. We
# frame each sentence as `<bos> … <eos>`, so the model learns to start and to stop.

# %%
mt.manual_seed(0)
clm = nn.CausalLanguageModel(V, **MODEL)
untied = nn.CausalLanguageModel(V, tie_weights=False, **MODEL)
print(f"tied {clm.num_parameters():,} parameters, untied {untied.num_parameters():,}")
assert untied.num_parameters() - clm.num_parameters() == V * MODEL["d_model"]
assert not any("output.linear" in name for name, _ in clm.named_parameters())

sentences = [[BOS_ID] + tokenizer.encode(s) + [EOS_ID] for s in world.corpus]
lm_batch = mt.data.collate_causal_lm(sentences[:3])
print("inputs \n", lm_batch.inputs.numpy())
print("targets\n", lm_batch.targets.numpy())
for row, seq in enumerate(sentences[:3]):
    n = len(seq) - 1  # each sentence gives n (input, next token) pairs
    assert lm_batch.inputs.numpy()[row, :n].tolist() == seq[:-1]
    assert lm_batch.targets.numpy()[row, :n].tolist() == seq[1:]
    assert (lm_batch.targets.numpy()[row, n:] == IGNORE_INDEX).all()

# %% [markdown]
# Causality, checked: changing a later token must not change an earlier position's logits.
# And the untrained loss is again about ln V.

# %%
clm.eval()
ids = lm_batch.inputs[:1]  # (1, T)
changed = ids.numpy().copy()
changed[0, 5] = tokenizer.encode("superb")[0]
before, after = clm(ids).numpy(), clm(mt.tensor(changed)).numpy()
assert np.allclose(before[0, :5], after[0, :5], atol=1e-6)  # positions 0-4 cannot see 5
assert not np.allclose(before[0, 5:], after[0, 5:])
lm_loss = F.cross_entropy(clm(lm_batch.inputs), lm_batch.targets, ignore_index=IGNORE_INDEX)
print(f"untrained causal LM: loss {lm_loss.item():.3f}, perplexity "
      f"{mt.metrics.perplexity(lm_loss.item()):.1f} (V = {V})")
assert abs(lm_loss.item() - math.log(V)) < 0.1

# %% [markdown]
# ## 5. T5's span corruption
#
# `corrupt_spans` cuts about 15% of a sentence's tokens, in spans of mean length 3, and puts
# sentinel k in place of span k. Sentinels are *extra* ids after the tokenizer's vocabulary
# (sentinel k is V + k), so the model needs `model_vocab_size` = V + `n_sentinels` outputs. The
# target lists each sentinel followed by the tokens it hid. Undoing the corruption must give
# the sentence back; write `uncorrupt`.

# %%
def uncorrupt(inputs, targets, sentinel_start):
    """The original ids from a corrupted input and its target (both lists of ids)."""
    # BEGIN SOLUTION
    spans, current = {}, None
    for token in targets:
        if token >= sentinel_start:
            current = token
            spans[current] = []
        else:
            spans[current].append(token)
    restored = []
    for token in inputs:
        restored.extend(spans[token] if token >= sentinel_start else [token])
    return restored
    # END SOLUTION


span_collate = mt.data.SpanCorruptionCollator(V, seed=0, n_sentinels=20)


def show(ids):
    return " ".join(f"<s{i - V}>" if i >= V else tokenizer.id_to_token(i) for i in ids)


sentence = tokenizer.encode("my friends thought the concert was really superb and thanked me")
inputs, targets = mt.data.corrupt_spans(sentence, span_collate.rng, V, noise_density=0.3)
print("input: ", show(inputs))
print("target:", show(targets))
assert uncorrupt(inputs, targets, V) == sentence, (
    f"uncorrupt should restore {sentence}, got {uncorrupt(inputs, targets, V)}: replace each "
    "sentinel (id ≥ sentinel_start) in inputs by the tokens after that sentinel in targets"
)
for s in world.corpus[:500]:
    ids = tokenizer.encode(s)
    inputs, targets = mt.data.corrupt_spans(ids, span_collate.rng, V)
    assert uncorrupt(inputs, targets, V) == ids, (
        "uncorrupt should replace each sentinel in inputs by the tokens after that sentinel in "
        f"targets: for inputs {inputs} and targets {targets} it should give {ids}, got "
        f"{uncorrupt(inputs, targets, V)}"
    )
    assert len(inputs) <= len(ids) and targets[0] == V  # the target starts with <s0>
print("model vocabulary:", span_collate.model_vocab_size)
assert span_collate.model_vocab_size == V + 20

# %% [markdown]
# A batch of span corruption is an ordinary `Seq2SeqBatch` (chapter 12): the decoder reads
# `<bos>` + target and predicts target + `<eos>`. The package pretrains it with a
# `Transformer` whose encoder, decoder and output share one embedding table
# (`share_embeddings=True, tie_output=True`), as T5 does.

# %%
denoise_batch = span_collate([tokenizer.encode(s) for s in world.corpus[:8]])
print("src   ", show(denoise_batch.src.numpy()[0]))
print("tgt_in", show(denoise_batch.tgt_in.numpy()[0]))
assert denoise_batch.tgt_in.numpy()[0, 0] == BOS_ID
assert denoise_batch.tgt_in.numpy()[0, 1] == V  # the decoder starts by writing <s0>
mt.manual_seed(0)
t5 = nn.Transformer(V + 20, V + 20, d_model=64, n_heads=4, n_encoder_layers=2,
                    n_decoder_layers=2, d_ff=128, dropout=0.0, max_len=32,
                    share_embeddings=True, tie_output=True, norm_first=True)
t5_logits = t5(denoise_batch.src, denoise_batch.tgt_in, denoise_batch.src_mask,
               denoise_batch.tgt_mask)
t5_loss = F.cross_entropy(t5_logits, denoise_batch.tgt_out, ignore_index=IGNORE_INDEX)
print(f"untrained denoiser: logits {t5_logits.shape}, loss {t5_loss.item():.3f}, "
      f"ln(V + 20) = {math.log(V + 20):.3f}")
assert t5_logits.shape[-1] == V + 20

# %% [markdown]
# ## 6. Pretraining a masked LM
#
# `pretrain(PretrainConfig(...))` does what sections 2–3 did, in a loop: it fits a word
# tokenizer on the text world's corpus, cuts 5% of the sentences off for validation, collates
# batches with fresh masks every epoch, trains with AdamW under a warm-up and cosine schedule,
# and writes `last.npz` (with the settings and the tokenizer inside) and `metrics.jsonl` to
# `out_dir`. Because masks are random, the validation set is masked once with a fixed seed, so
# its loss is comparable from step to step.

# %%
mlm_config = PretrainConfig(objective="mlm", data="builtin", tokenizer="word", seq_len=24,
                            steps=MLM_STEPS, batch_size=64, lr=2e-3, warmup=50,
                            eval_every=MLM_STEPS // 3, log_every=50, progress=False,
                            out_dir="ch14_runs/mlm", seed=0, **MODEL)
start = time.perf_counter()
mlm_run = pretrain(mlm_config)
evals = [row for row in mlm_run["history"] if "eval_loss" in row]
for row in evals:
    print(f"step {row['step']:>5}  validation loss {row['eval_loss']:.3f}  "
          f"perplexity {row['eval_perplexity']:.2f}")
print(f"{time.perf_counter() - start:.1f} s; ln V = {math.log(V):.3f}")
assert mlm_run["valid_loss"] < 0.5 * math.log(mlm_run["tokenizer"].vocab_size)
assert mlm_run["perplexity"] == math.exp(mlm_run["valid_loss"])

# %% [markdown]
# The loss fell from ln V ≈ 4.7 to about 2 (after 1,500 steps: 0.8). It cannot reach 0: the
# corpus draws its nouns and adjectives at random, so "the ___ was superb" has 16 equally good
# answers, and the best possible loss on such a slot is ln 16 ≈ 2.8. What the model *can*
# learn is which answers fit: asked to fill "the film was really ___ and i loved it", it should
# spend more and more of its probability on the 24 sentiment adjectives, rather than on the
# other 80-odd words (0.46 after 300 steps, 0.99 after 1,500).

# %%
mlm_model, mlm_tok = mlm_run["model"], mlm_run["tokenizer"]
mlm_model.eval()
slot_words = [w for group in (world.seen_words, world.unseen_words) for ws in group.values()
              for w in ws]  # the 24 sentiment adjectives


def slot_probability(model, tok, ids, position):
    """P(the token at ``position`` is a sentiment adjective) under an LM's logits."""
    with mt.no_grad():
        probs = F.softmax(model(mt.tensor([ids])), axis=-1).numpy()[0, position]
    return probs[[tok.encode(w)[0] for w in slot_words]].sum()


ids = mlm_tok.encode("the film was really") + [MASK_ID] + mlm_tok.encode("and i loved it")
p_mlm = slot_probability(mlm_model, mlm_tok, ids, position=4)
print(f"masked LM: P(adjective | 'the film was really <mask> and i loved it') = {p_mlm:.3f} "
      f"(uniform guess: {len(slot_words) / V:.3f})")
assert p_mlm > 1.5 * len(slot_words) / V  # 0.46 after 300 steps, twice the uniform guess

# %% [markdown]
# ## 7. Pretraining a causal LM with the Trainer
#
# The causal LM trains with chapter 12's `Trainer` and the package's loss: cross-entropy over
# every next token. (`pretrain` with `objective="clm"` would do the same on a stream of text cut
# into blocks; here sentences keep their `<bos>` and `<eos>`, so that generation knows where a
# sentence starts and ends.)

# %%
train_sentences, valid_sentences = sentences[:-200], sentences[-200:]
loader = mt.data.DataLoader(train_sentences, batch_size=64, collate_fn=mt.data.collate_causal_lm,
                            shuffle=True, seed=0)


def batches(epoch):
    loader.set_epoch(epoch)
    return loader


def clm_loss(model, batch):
    logits = model(batch.inputs)  # (B, T, V)
    n_targets = int((batch.targets.numpy() != IGNORE_INDEX).sum())
    return F.cross_entropy(logits, batch.targets, ignore_index=IGNORE_INDEX), n_targets


valid_batch = mt.data.collate_causal_lm(valid_sentences)


def evaluate(model):
    loss = clm_loss(model, valid_batch)[0].item()
    return {"loss": loss, "perplexity": math.exp(loss)}


mt.manual_seed(0)
clm = nn.CausalLanguageModel(V, **MODEL)
optimizer = mt.optim.AdamW(clm.parameters(), lr=2e-3, weight_decay=0.01)
schedule = mt.optim.warmup_cosine(2e-3, warmup=50, total=CLM_STEPS, min_lr=2e-4)
config = train.TrainConfig(steps=CLM_STEPS, eval_every=CLM_STEPS // 3, log_every=50,
                           grad_clip=1.0, progress=False)
start = time.perf_counter()
clm_history = train.Trainer(clm, optimizer, clm_loss, batches, config, schedule=schedule,
                            evaluate=evaluate).fit()
final = evaluate(clm)
print(f"{CLM_STEPS} steps in {time.perf_counter() - start:.1f} s: validation loss "
      f"{final['loss']:.3f}, perplexity {final['perplexity']:.2f} (untrained: about {V})")
assert final["loss"] < 0.5 * math.log(V)

# %% [markdown]
# The same test for the causal LM, which reads only the past: after "the film was" the next
# word must be an adjective.

# %%
clm.eval()
prompt = [BOS_ID] + tokenizer.encode("the film was really")
p_clm = slot_probability(clm, tokenizer, prompt, position=len(prompt) - 1)
print(f"causal LM: P(adjective | 'the film was really') = {p_clm:.3f}")
assert p_clm > 0.5

# %% [markdown]
# ## 8. Sampling text
#
# `mt.decoding.generate(model, prompt, max_new_tokens, temperature, top_k, seed, eos_id)`
# continues a prompt with a decoder-only model, using the key/value cache so that each new
# token costs one position's work. `temperature=0` is greedy; a temperature near 1 with
# `top_k` samples from the k most likely tokens.

# %%
prompts = ["", "the meal was", "what a", "i warn all my friends"]
for text in prompts:
    prompt = [BOS_ID] + tokenizer.encode(text)
    for temperature in (0.0, 0.8):
        new = mt.decoding.generate(clm, [prompt], max_new_tokens=14, temperature=temperature,
                                   top_k=10, seed=1, eos_id=EOS_ID)[0]
        print(f"T={temperature}: {tokenizer.decode(prompt + new, skip_special=True)}")
        assert all(0 <= t < V for t in new)
samples = mt.decoding.generate(clm, [[BOS_ID]] * 20, max_new_tokens=20, temperature=0.8,
                               top_k=10, seed=2, eos_id=EOS_ID)
finished = [s for s in samples if s and s[-1] == EOS_ID]
print(f"{len(finished)} of 20 samples ended with <eos> within 20 tokens")
assert len(finished) >= 15  # it learned where sentences end

# %% [markdown]
# ## 9. A checkpoint for fine-tuning
#
# `pretrain` saved the masked LM to `out_dir/last.npz`: parameters, optimizer state, the
# generator state, the step, and in the metadata the settings (`config`) and the tokenizer's
# JSON. That is everything chapter 15 needs to rebuild the encoder and encode text exactly as
# in pretraining. We load it back into a fresh model and check that it computes the same loss,
# and copy it to `ch14_mlm.npz`, where chapter 15 looks first (it uses a checkpoint of at
# least 600 steps, such as the full run's 1,500).

# %%
path = mlm_run["checkpoint"]
state = mt.checkpoint.load(path)
print(sorted(state), f"step {state['step']}, objective {state['config']['objective']}")
assert state["task"] == "pretrain" and state["step"] == MLM_STEPS
restored_tok = mt.data.Tokenizer.from_dict(state["tokenizer"])
assert restored_tok.encode(world.corpus[0]) == mlm_tok.encode(world.corpus[0])

sizes = {key: state["config"][key] for key in MODEL}  # the encoder's settings, as saved
fresh = nn.MaskedLanguageModel(nn.TextEncoder(restored_tok.vocab_size, pad_id=PAD_ID, **sizes))
mt.checkpoint.load(path, fresh)
check = mt.data.MaskedLMCollator(restored_tok.vocab_size, seed=5)(
    [restored_tok.encode(s) for s in world.corpus[:64]])
with mt.no_grad():
    fresh.eval()
    a = loss_function("mlm")(fresh, check)[0].item()
    b = loss_function("mlm")(mlm_model, check)[0].item()
print(f"reloaded model's loss {a:.4f}, trained model's {b:.4f}")
assert a == b
shutil.copyfile(path, "ch14_mlm.npz")

# %% [markdown]
# **Plots.** When matplotlib is installed, `mt.viz.plot_history` draws the loss and
# learning-rate curves from the metrics file that `pretrain` wrote. Look at the eval loss: it
# should follow the training loss down; a gap that opens up late in the run is overfitting.

# %%
if find_spec("matplotlib") is not None:
    png = mt.viz.plot_history(mlm_run["out_dir"] / "metrics.jsonl", "ch14_mlm.png",
                              title="masked-LM pretraining")
    assert Path(png).exists()
    mt.viz.show(png)
else:
    print("matplotlib is not installed: no plot (pip install 'minitransformer[plot]')")

# %% [markdown]
# **Real text.** With the real data sets in place (see `minitransformer download`, or a
# `shared/data` folder next to the repository), the same task pretrains on the 25,000 IMDB
# training reviews, from the command line:
#
# ```bash
# minitransformer pretrain --config configs/imdb_pretrain_mlm.toml \
#     --set data=PATH/aclImdb_v1.tar.gz
# ```
#
# Its settings (d_model 128, sinusoidal positions, no dropout for a single pass over the text)
# are those of docs/results.md, where masked LM, causal LM and replaced-token detection are
# compared on the same reviews. It runs for 2,000 steps: tens of minutes on a laptop's CPU, so
# we only show the
# command here.

# %%
data_folder = Path(os.environ.get("MINITRANSFORMER_DATA")
                   or Path(mt.__file__).resolve().parents[2] / "shared" / "data")
imdb = data_folder / "aclImdb_v1.tar.gz"
toml = Path(mt.__file__).resolve().parents[1] / "configs" / "imdb_pretrain_mlm.toml"
if imdb.exists() and toml.exists():
    print(f"minitransformer pretrain --config {toml} --set data={imdb}")
    settings = load_config(PretrainConfig, toml, [f"data={imdb}"])
    print(f"objective {settings.objective}, d_model {settings.d_model}, {settings.n_heads} "
          f"heads, {settings.steps} steps of {settings.batch_size} reviews")
    assert settings.objective == "mlm" and settings.d_model % settings.n_heads == 0
else:
    print("(no IMDB copy found: the command above needs one)")

# %% [markdown]
# ## 10. Replaced-token detection (ELECTRA)
#
# A masked LM learns from the 15% of tokens it hides; the other 85% cost compute and teach
# nothing. **Replaced-token detection** (Clark et al. 2020) learns from every token:
#
# 1. a small masked-LM *generator* fills each `<mask>` with a token sampled from its softmax;
# 2. the *discriminator* (the encoder we keep) reads the result and says, for every token,
#    original (0) or replaced (1); a sample that happens to equal the original counts as
#    original;
# 3. $\mathcal{L} = \mathcal{L}_{\text{gen}} + \lambda\,\mathcal{L}_{\text{det}}$ with
#    $\lambda = 50$: the detection loss is a per-token binary cross-entropy, far smaller than
#    the generator's, hence the weight. No gradient flows through the sampling.
#
# The generator shares the discriminator's embeddings and is shallower: a generator as good as
# the discriminator would make replacements undetectable. A detector that always answers
# "original" is right on every token that was not replaced: that is the line to beat.

# %%
rtd_run = pretrain(PretrainConfig(objective="rtd", data="builtin", seq_len=24,
                                  steps=200 if FAST else 800, batch_size=64, lr=2e-3, warmup=20,
                                  eval_every=100 if FAST else 400, progress=False, seed=0,
                                  out_dir="ch14_runs/rtd", **MODEL), log=lambda *_: None)
rtd = rtd_run["metrics"]
print(f"generator: masked-LM loss {rtd['generator_loss']:.3f} (ln V = {math.log(V):.3f})")
print(f"detector: {rtd['detector_accuracy']:.1%} right; {rtd['replaced_fraction']:.1%} of the "
      f"tokens were replaced, so 'always original' scores {1 - rtd['replaced_fraction']:.1%}")
assert rtd["generator_loss"] < math.log(V)
assert rtd["detector_accuracy"] > 1 - rtd["replaced_fraction"]
model_rtd = rtd_run["model"]
assert model_rtd.generator.encoder.embed is model_rtd.encoder.embed  # one shared table

# %% [markdown]
# ## 11. Token vectors and position codes must be the same size
#
# The first layer reads $x_t = e(\text{token}_t) + p_t$. BERT starts both tables at
# $\mathcal{N}(0, 0.02^2)$: comparable sizes. The sinusoidal codes of chapter 9 have
# amplitude 1, so their entries have variance 1/2; next to them, 0.02-vectors carry almost
# nothing: after the layer norm the model sees mostly *where* a token is, hardly *which*
# token. A masked LM then cannot tell which words surround a gap, and its loss stays at the
# unigram line (the loss of guessing by word frequency alone). The paper's remedy (section
# 3.4): start the embeddings at $\mathcal{N}(0, 1/d)$ and multiply them by $\sqrt{d}$, which
# `TextEncoder` does whenever its positions are sinusoidal. On the IMDB reviews this is the
# difference between a masked LM stuck at the unigram line and one that learns
# (docs/results.md has the measured curves).

# %%
for scale, std in ((1.0, 0.02), (math.sqrt(MODEL["d_model"]), MODEL["d_model"] ** -0.5)):
    encoder = nn.TextEncoder(V, positional="sinusoidal", **MODEL)
    codes = encoder.positional.table.numpy()[:24]
    tokens = np.random.default_rng(0).normal(0.0, std, size=(5000, MODEL["d_model"])) * scale
    share = tokens.var() / (tokens.var() + codes.var())
    print(f"embeddings N(0, {std:.3f}²) × {scale:.0f}: the token carries {share:.1%} of the "
          "first layer's input variance")
    assert (share < 0.01) if scale == 1.0 else (share > 0.5)
assert encoder.embed_scale == math.sqrt(MODEL["d_model"])

# %% [markdown]
# ## Summary
#
# - Masked LM: choose 15% of the non-special tokens; of those 80% `<mask>`, 10% random, 10%
#   unchanged; labels are the original ids there and `IGNORE_INDEX` elsewhere. Measured on
#   2,000 sentences, `MaskedLMCollator` follows the recipe within sampling error.
# - The MLM loss needs logits only at the chosen positions: `model(ids, mask, positions=chosen)`.
# - Causal LM: inputs `seq[:-1]`, targets `seq[1:]`, a causal mask, output tied to the
#   embeddings (V·d_model fewer parameters). Untrained, every objective's loss is ≈ ln V;
#   perplexity = e^loss.
# - Span corruption: spans become sentinels V + k; the target lists sentinel and span; the
#   model's vocabulary is V + n_sentinels.
# - `pretrain(PretrainConfig(...))` runs any of the four (mlm, clm, denoise, rtd) and saves a
#   checkpoint with its settings and tokenizer; `decoding.generate` samples from a causal LM.
# - Replaced-token detection learns from every token: a small generator fills the masks, the
#   encoder spots the replacements; "always original" is the score to beat.
# - Token vectors and position codes are added, so they must be of one size: with sinusoidal
#   codes, embeddings N(0, 1/d) times √d.
#
# ## Exercises
#
# ```{exercise} No random replacements
# :label: ch14-mask-only
#
# Build `MaskedLMCollator(V, replace_prob=1.0, random_prob=0.0)` and rerun the statistics of
# section 2. Which shares change? Why does BERT not do this?
# ```
#
# ```{solution} ch14-mask-only
# :class: dropdown
#
# Every chosen token becomes `<mask>`: the shares are 1.0, 0.0, 0.0, and the chosen share stays
# 0.15. The model is then only ever asked about `<mask>` positions, so nothing forces it to
# build useful vectors for the tokens it can see (it never has to check whether a visible
# token is wrong), and a fine-tuned model never sees `<mask>` at all: a mismatch between
# pretraining and fine-tuning. The 10% random and 10% kept tokens make every position a
# possible question.
# ```
#
# ```{exercise} The cost of the full projection
# :label: ch14-positions
#
# Time `mlm(batch.ids, batch.mask)` against `mlm(batch.ids, batch.mask, positions=chosen)` for
# a batch of 64 sentences, with a vocabulary of 30,000 (make a `TextEncoder(30000, ...)`). How
# much of the forward pass is the vocabulary projection?
# ```
#
# ````{solution} ch14-positions
# :class: dropdown
#
# The projection costs B·T·d·V multiply-adds for all positions and N·d·V for the chosen ones,
# with N ≈ 0.15·B·T; for V = 30,000 it dwarfs the encoder layers (about 12·d² per token per
# layer), so gathering first makes the forward (and backward) several times faster:
#
# ```python
# import time
# big = nn.MaskedLanguageModel(nn.TextEncoder(30000, pad_id=PAD_ID, **MODEL)); big.eval()
# b = mt.data.MaskedLMCollator(30000, seed=0)(framed[:64])
# chosen = b.labels.data != IGNORE_INDEX
# for kwargs in ({}, {"positions": chosen}):
#     start = time.perf_counter(); big(b.ids, b.mask, **kwargs)
#     print(kwargs.keys(), time.perf_counter() - start)
# ```
# ````
#
# ```{exercise} Pretrain the denoiser
# :label: ch14-denoise
#
# Run `pretrain(replace(mlm_config, objective="denoise", out_dir="ch14_runs/denoise"))`. What
# is the untrained loss, and what does it reach? Why is the denoiser's loss per target token
# not comparable with the masked LM's?
# ```
#
# ```{solution} ch14-denoise
# :class: dropdown
#
# Untrained it is 5.3 here, above ln(V + 20) = 4.84: the `Transformer` scales its embeddings
# by √d_model, so its first logits are larger than the other models'. The decoder's targets mix
# sentinels, which are fully predictable (after `<s0>`'s span comes `<s1>`, in order), the
# span tokens, and `<eos>`; the masked LM predicts only corrupted tokens. Different targets,
# different averages, so compare each objective with its own baseline (ln of its vocabulary)
# or, better, by what a fine-tuned model reaches with it.
# ```
#
# ```{exercise} Temperature
# :label: ch14-temperature
#
# Sample 200 sentences at temperatures 0.5, 1.0 and 2.0 and count how many are sentences of the
# corpus (`set(world.corpus)`). Explain the trend.
# ```
#
# ````{solution} ch14-temperature
# :class: dropdown
#
# Dividing the logits by T < 1 sharpens the distribution toward the most likely token, so low
# temperatures should give mostly well-formed corpus sentences (and the same few, again and
# again); T = 2 flattens it toward uniform, words from different templates get mixed, and you
# should count fewer corpus sentences and more samples that run out of tokens before `<eos>`.
#
# ```python
# corpus = set(world.corpus)
# for t in (0.5, 1.0, 2.0):
#     out = mt.decoding.generate(clm, [[BOS_ID]] * 200, 20, temperature=t, seed=0,
#                                eos_id=EOS_ID)
#     texts = [tokenizer.decode(s, skip_special=True) for s in out]
#     print(t, sum(text in corpus for text in texts), len(set(texts)))
# ```
# ````
