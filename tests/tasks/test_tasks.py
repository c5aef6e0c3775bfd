"""The main job's pieces: every objective can overfit a batch, losses fall on the built-in
corpus, fine-tuning options do what they say, settings files parse."""

from dataclasses import replace

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import checkpoint, optim
from minitransformer.data import DataLoader, WordTokenizer, text_world
from minitransformer.tasks.config import ConfigError, load_config
from minitransformer.tasks.finetune import FinetuneConfig, build_classifier, finetune
from minitransformer.tasks.pretrain import (
    PretrainConfig,
    _collator,
    build_pretraining_model,
    loss_function,
    pretrain,
)
from minitransformer.tasks.seq2seq import Seq2SeqConfig, train_seq2seq

SMALL = dict(d_model=32, n_heads=2, n_layers=1, d_ff=64, dropout=0.0, max_len=32,
             progress=False)


@pytest.mark.parametrize("objective", ["mlm", "clm", "denoise"])
def test_each_objective_overfits_one_batch(objective):
    config = PretrainConfig(objective=objective, seq_len=12, **SMALL)
    world = text_world()
    tokenizer = WordTokenizer.train(world.corpus)
    ids = [tokenizer.encode(s) for s in world.corpus[:8]]
    if objective == "clm":
        stream = [t for s in world.corpus[:30] for t in tokenizer.encode(s)]
        ids = [stream[i:i + 13] for i in range(0, 8 * 13, 13)]
    vocab = tokenizer.vocab_size
    collator = _collator(config, vocab, seed=0)
    if objective == "denoise":
        vocab = collator.model_vocab_size
    batch = next(iter(DataLoader(ids, 8, collator)))  # one batch, the same masks every step
    mt.manual_seed(0)
    model = build_pretraining_model(objective, vocab, config)
    opt = optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = loss_function(objective)
    first = None
    for _ in range(150):
        loss, _ = loss_fn(model, batch)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 < first


@pytest.mark.parametrize("objective, steps", [("mlm", 300), ("clm", 150)])
def test_pretraining_losses_fall_on_the_built_in_corpus(objective, steps):
    result = pretrain(PretrainConfig(objective=objective, steps=steps, eval_every=steps // 2,
                                     log_every=10, batch_size=32, lr=3e-3, warmup=20,
                                     out_dir="p", **SMALL))
    losses = [row["loss"] for row in result["history"]]
    assert losses[-1] < 0.5 * losses[0]
    evaluations = [row["eval_loss"] for row in result["history"] if "eval_loss" in row]
    assert evaluations[-1] < evaluations[0] and result["perplexity"] < 25
    state = checkpoint.load("p/last.npz")
    assert state["task"] == "pretrain" and state["tokenizer"]["type"] == "word"


def test_fine_tuning_freezes_what_it_is_told_and_scales_learning_rates():
    pretrain(PretrainConfig(steps=5, out_dir="mlm", **SMALL))
    config = FinetuneConfig(init_from="mlm/last.npz", freeze_embeddings=True, freeze_layers=1,
                            steps=10, eval_every=5, seq_len=16, pretrained_lr_scale=0.1,
                            out_dir="ft", **SMALL)
    model, tokenizer, pretrained, _ = build_classifier(config)
    frozen = model.encoder.embed.weight.numpy()
    assert not model.encoder.embed.weight.requires_grad
    assert not any(p.requires_grad for p in model.encoder.encoder.layers[0].parameters())
    assert pretrained == ["encoder."]
    stored = checkpoint.load("mlm/last.npz")["model"]["encoder.embed.weight"]
    np.testing.assert_array_equal(frozen, stored)  # the pretrained weights were loaded
    result = finetune(config)
    np.testing.assert_array_equal(result["model"].encoder.embed.weight.numpy(), frozen)
    assert 0.0 <= result["test_accuracy"] <= 1.0


def test_fine_tuning_from_glove_vectors(tmp_path):
    words = ["the", "film", "was", "good", "bad", "great", "awful"]
    lines = [f"{w} " + " ".join(str(0.1 * (i + 1) * (j + 1)) for j in range(4))
             for i, w in enumerate(words)]
    (tmp_path / "glove.txt").write_text("\n".join(lines) + "\n")
    config = FinetuneConfig(glove="glove.txt", n_heads=2, steps=5, eval_every=5, seq_len=16,
                            out_dir="g", **{k: v for k, v in SMALL.items() if k != "n_heads"})
    tokenizer = WordTokenizer.train([t for t, _ in text_world().train])
    model, _, pretrained, sizes = build_classifier(config, tokenizer, log=lambda *_: None)
    assert sizes["d_model"] == 4 and pretrained == ["encoder.embed."]
    row = model.encoder.embed.weight.numpy()[tokenizer.encode("good")[0]]
    np.testing.assert_allclose(row, [0.4 * (j + 1) for j in range(4)], rtol=1e-6)
    # under sinusoidal codes the table is scaled by √d_model in the forward: stored divided
    model, *_ = build_classifier(replace(config, positional="sinusoidal"), tokenizer,
                                 log=lambda *_: None)
    ids = mt.tensor([tokenizer.encode("good")])
    np.testing.assert_allclose(model.encoder.embed(ids).numpy()[0, 0] * 2.0,
                               [0.4 * (j + 1) for j in range(4)], rtol=1e-6)


@pytest.mark.slow
def test_copy_task_is_learned():
    result = train_seq2seq(Seq2SeqConfig(data="copy", steps=600, batch_size=64, lr=2e-3,
                                         eval_every=600, label_smoothing=0.0, n_examples=4000,
                                         out_dir="copy", **{**SMALL, "d_model": 48,
                                                            "n_layers": 2}))
    assert result["test"] >= 0.95


def test_settings_files_are_checked(tmp_path):
    (tmp_path / "a.toml").write_text('steps = "many"\n')
    with pytest.raises(ConfigError, match="steps = 'many' should be int"):
        load_config(PretrainConfig, "a.toml")
    (tmp_path / "b.toml").write_text("steps = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(PretrainConfig, "b.toml")
    config = load_config(PretrainConfig, None, ["lr=3e-4", "grad_clip=none", "norm_first=false"])
    assert config.lr == 3e-4 and config.grad_clip is None and config.norm_first is False
