"""Pretraining strategies beyond masked LM: replaced-token detection (ELECTRA), fine-tuning from
a causal LM (GPT, ULMFiT), and continued pretraining from another checkpoint."""

from pathlib import Path

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import checkpoint, nn, optim
from minitransformer.data import IGNORE_INDEX, MASK_ID, DataLoader, WordTokenizer, text_world
from minitransformer.tasks.finetune import (
    FinetuneConfig,
    build_classifier,
    fine_tuning_groups,
    finetune,
)
from minitransformer.tasks.pretrain import (
    PretrainConfig,
    _collator,
    build_pretraining_model,
    loss_function,
    pretrain,
    unigram_cross_entropy,
)

SMALL = dict(d_model=32, n_heads=2, n_layers=1, d_ff=64, dropout=0.0, max_len=32,
             progress=False)


def _rtd_batch(config, seed=0):
    world = text_world()
    tokenizer = WordTokenizer.train(world.corpus)
    ids = [tokenizer.encode(s) for s in world.corpus[:8]]
    return tokenizer, next(iter(DataLoader(ids, 8, _collator(config, tokenizer.vocab_size,
                                                             seed))))


def test_rtd_masks_only_with_the_mask_token_and_shares_the_embeddings():
    config = PretrainConfig(objective="rtd", mask_prob=0.3, **SMALL)
    tokenizer, batch = _rtd_batch(config)
    chosen = batch.labels.numpy() != IGNORE_INDEX
    assert chosen.any() and (batch.ids.numpy()[chosen] == MASK_ID).all()
    model = build_pretraining_model("rtd", tokenizer.vocab_size, config)
    assert model.generator.encoder.embed is model.encoder.embed
    assert len(model.generator.encoder.encoder.layers) == config.generator_layers
    names = list(model.state_dict())
    assert sum(name.endswith("embed.weight") for name in names) == 1  # saved once


def test_rtd_labels_say_which_tokens_the_generator_replaced():
    config = PretrainConfig(objective="rtd", mask_prob=0.3, **SMALL)
    tokenizer, batch = _rtd_batch(config)
    mt.manual_seed(0)
    model = build_pretraining_model("rtd", tokenizer.vocab_size, config)
    out = model(batch.ids, batch.labels, batch.mask)
    ids, labels = batch.ids.numpy(), batch.labels.numpy()
    chosen = labels != IGNORE_INDEX
    original = np.where(chosen, labels, ids)
    np.testing.assert_array_equal(out.corrupted[~chosen], ids[~chosen])  # untouched elsewhere
    np.testing.assert_array_equal(out.replaced, out.corrupted != original)
    assert not out.replaced[~chosen].any() and out.replaced.any()
    assert (out.corrupted[chosen] >= 7).all()  # samples are never special tokens
    assert out.real.sum() == (ids != 0).sum()
    total = out.generator_loss.item() + model.weight * out.detector_loss.item()
    assert out.loss.item() == pytest.approx(total, rel=1e-6)


def test_rtd_samples_repeat_under_a_seed_and_differ_across_seeds():
    config = PretrainConfig(objective="rtd", mask_prob=0.3, **SMALL)
    tokenizer, batch = _rtd_batch(config)
    mt.manual_seed(0)
    model = build_pretraining_model("rtd", tokenizer.vocab_size, config)
    runs = []
    for seed in (1, 1, 2):
        mt.manual_seed(seed)
        runs.append(model(batch.ids, batch.labels, batch.mask).corrupted)
    np.testing.assert_array_equal(runs[0], runs[1])
    assert (runs[0] != runs[2]).any()


def test_rtd_overfits_one_batch():
    config = PretrainConfig(objective="rtd", mask_prob=0.3, **SMALL)
    tokenizer, batch = _rtd_batch(config)
    mt.manual_seed(0)
    model = build_pretraining_model("rtd", tokenizer.vocab_size, config)
    opt = optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = loss_function("rtd")
    losses = []
    for _ in range(150):
        loss, count = loss_fn(model, batch)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert count == int((batch.ids.numpy() != 0).sum())
    # the generator learns the masked words, so it stops replacing and the detector is right
    assert np.mean(losses[-10:]) < 0.2 * losses[0]


def test_rtd_pretraining_learns_on_the_built_in_corpus():
    result = pretrain(PretrainConfig(objective="rtd", steps=200, eval_every=100, log_every=10,
                                     lr=3e-3, warmup=10, out_dir="rtd", **SMALL))
    evaluations = [row for row in result["history"] if "eval_loss" in row]
    assert evaluations[-1]["eval_loss"] < evaluations[0]["eval_loss"]
    metrics = result["metrics"]
    # better than always answering "original" (right on the tokens that were not replaced)
    assert metrics["detector_accuracy"] > 1 - metrics["replaced_fraction"] + 0.02
    assert metrics["generator_loss"] < np.log(result["tokenizer"].vocab_size)


@pytest.mark.parametrize("objective, pooling", [("rtd", "cls"), ("clm", "mean"),
                                                 ("clm", "last")])
def test_fine_tuning_starts_from_rtd_and_clm_checkpoints(objective, pooling):
    pretrain(PretrainConfig(objective=objective, steps=5, out_dir="p", **SMALL))
    config = FinetuneConfig(init_from="p/last.npz", pooling=pooling, steps=5, eval_every=5,
                            seq_len=16, out_dir="ft", **SMALL)
    model, _, pretrained, _ = build_classifier(config, log=lambda *_: None)
    assert pretrained == ["encoder."] and model.causal == (objective == "clm")
    stored = checkpoint.load("p/last.npz")["model"]["encoder.encoder.layers.0.ff.linear1.weight"]
    np.testing.assert_array_equal(model.encoder.encoder.layers[0].ff.linear1.weight.numpy(),
                                  stored)
    assert 0.0 <= finetune(config, log=lambda *_: None)["test_accuracy"] <= 1.0


def test_a_causal_classifier_cannot_pool_the_first_token():
    pretrain(PretrainConfig(objective="clm", steps=2, out_dir="p", **SMALL))
    with pytest.raises(ValueError, match="pooling=mean or pooling=last"):
        build_classifier(FinetuneConfig(init_from="p/last.npz", pooling="cls", **SMALL))


def test_a_causal_classifier_never_reads_later_tokens():
    mt.manual_seed(0)
    encoder = nn.TextEncoder(20, 8, 2, 1, 16, dropout=0.0, max_len=8)
    model = nn.SequenceClassifier(encoder, 2, "last", dropout=0.0, causal=True).eval()
    a = mt.tensor([[7, 8, 9, 10, 0], [7, 8, 9, 11, 12]])
    b = mt.tensor([[7, 8, 9, 10, 0], [7, 8, 9, 11, 13]])  # only the last token differs
    hidden_a = encoder(a, causal=True).numpy()
    hidden_b = encoder(b, causal=True).numpy()
    np.testing.assert_array_equal(hidden_a[:, :4], hidden_b[:, :4])
    # "last" pools the last real token: row 0 ends at position 3, row 1 at position 4
    logits = model(a).numpy()
    expected = model.classifier(mt.tensor(hidden_a[[0, 1], [3, 4]])).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)


def test_continued_pretraining_starts_from_the_checkpoint():
    first = pretrain(PretrainConfig(objective="mlm", steps=60, lr=3e-3, eval_every=60,
                                    out_dir="general", **SMALL))
    logs = []
    second = pretrain(PretrainConfig(objective="rtd", steps=1, init_from="general/last.npz",
                                     lr=1e-9, warmup=0, eval_every=1, out_dir="domain",
                                     **{**SMALL, "d_model": 16}), log=logs.append)
    assert second["tokenizer"].to_dict() == first["tokenizer"].to_dict()
    assert second["model"].encoder.d_model == 32  # the checkpoint's sizes win
    np.testing.assert_allclose(second["model"].encoder.embed.weight.numpy(),
                               first["model"].encoder.embed.weight.numpy(), atol=1e-6)
    assert any("continuing from general/last.npz" in line for line in logs)
    assert any(line.startswith("pretrain: loaded") for line in logs)


def test_continued_pretraining_refuses_a_checkpoint_of_another_task():
    finetune(FinetuneConfig(steps=2, eval_every=2, seq_len=16, out_dir="ft", **SMALL),
             log=lambda *_: None)
    with pytest.raises(ValueError, match="is not a pretraining checkpoint"):
        pretrain(PretrainConfig(init_from="ft/last.npz", steps=1, **SMALL))


def test_discriminative_rates_and_gradual_unfreezing_per_layer():
    config = FinetuneConfig(pretrained_lr_scale=0.5, layer_lr_decay=0.5, unfreeze_every=10,
                            freeze_embeddings_steps=5)
    scales, starts = fine_tuning_groups(config, 2, ["encoder."])
    assert scales["encoder.encoder.layers.1."] == 0.5  # the top layer
    assert scales["encoder.encoder.layers.0."] == 0.25
    assert scales["encoder.embed."] == scales["encoder.positional."] == 0.125
    assert scales["encoder."] == 0.5  # the final LayerNorm
    assert starts["encoder.encoder.layers.1."] == 10 and starts["encoder.encoder.layers.0."] == 20
    assert starts["encoder.embed."] == 30
    _, starts = fine_tuning_groups(FinetuneConfig(freeze_embeddings_steps=7), 2, [])
    assert starts["encoder.embed."] == 7 and starts["encoder.encoder.layers.0."] == 0


def test_gradual_unfreezing_keeps_lower_layers_still_until_their_turn():
    pretrain(PretrainConfig(objective="mlm", steps=2, out_dir="p", **{**SMALL, "n_layers": 2}))
    config = FinetuneConfig(init_from="p/last.npz", unfreeze_every=3, steps=4, eval_every=4,
                            seq_len=16, warmup=0, out_dir="ft", **{**SMALL, "n_layers": 2})
    stored = checkpoint.load("p/last.npz")["model"]
    result = finetune(config, log=lambda *_: None)
    encoder = result["model"].encoder
    # steps 1-3: the head; step 4: the top layer too; layer 0 and the embeddings not yet
    np.testing.assert_array_equal(encoder.encoder.layers[0].ff.linear1.weight.numpy(),
                                  stored["encoder.encoder.layers.0.ff.linear1.weight"])
    np.testing.assert_array_equal(encoder.embed.weight.numpy(), stored["encoder.embed.weight"])
    assert not np.array_equal(encoder.encoder.layers[1].ff.linear1.weight.numpy(),
                              stored["encoder.encoder.layers.1.ff.linear1.weight"])


@pytest.mark.parametrize("setting, message", [("schedule='step'", "schedule must be one of"),
                                              ("layer_lr_decay=0.0", "layer_lr_decay must lie"),
                                              ("unfreeze_every=-1", "unfreeze_every must be")])
def test_fine_tuning_schedule_settings_are_checked(setting, message):
    key, value = setting.split("=")
    with pytest.raises(ValueError, match=message):
        finetune(FinetuneConfig(**{key: eval(value)}, **SMALL), log=lambda *_: None)


def test_the_unigram_line_is_the_cross_entropy_of_smoothed_frequencies():
    train, valid = [[7, 7, 8], [7]], [[7, 8, 0]]  # 0 (padding) is left out
    expected = -(np.log(4 / 14) + np.log(2 / 14)) / 2  # counts 3 and 1, 4 tokens, V = 10
    assert unigram_cross_entropy(train, valid, 10) == pytest.approx(expected)
    result = pretrain(PretrainConfig(objective="clm", steps=150, lr=3e-3, eval_every=150,
                                     out_dir="clm", **SMALL))
    assert result["valid_loss"] < result["unigram_loss"] - 1.0  # context was learned
    assert checkpoint.load("clm/last.npz")["unigram_loss"] == result["unigram_loss"]


@pytest.mark.parametrize("positional, scale, std", [("learned", 1.0, 0.02),
                                                    ("sinusoidal", 16.0, 1 / 16)])
def test_token_vectors_match_the_size_of_the_position_codes(positional, scale, std):
    mt.manual_seed(0)
    encoder = nn.TextEncoder(4000, 256, 4, 1, 64, max_len=64, positional=positional)
    assert encoder.embed_scale == scale
    table = encoder.embed.weight.numpy()[1:]  # the padding row is zero
    assert table.std() == pytest.approx(std, rel=0.02)
    tokens = table.std() * scale  # what enters the first layer, beside the position codes
    codes = (encoder.positional.table.numpy() if positional == "sinusoidal"
             else encoder.positional.weight.numpy()).std()
    assert 0.5 < tokens / codes < 2.0  # neither drowns the other


def test_pretraining_runs_plot_against_tokens_seen_with_their_unigram_line():
    pytest.importorskip("matplotlib")
    for objective in ("clm", "rtd"):
        pretrain(PretrainConfig(objective=objective, steps=4, eval_every=2, out_dir=objective,
                                **SMALL), log=lambda *_: None)
    png = mt.viz.plot_pretraining({"causal LM": "clm", "ELECTRA": "rtd"}, "curves.png")
    assert png.stat().st_size > 1000
    with pytest.raises(ValueError, match="has no eval_loss rows"):
        pretrain(PretrainConfig(objective="clm", steps=2, eval_every=0, out_dir="bare",
                                **SMALL), log=lambda *_: None)
        (Path("bare") / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0, "lr": 0.1}\n')
        mt.viz.plot_pretraining({"bare": "bare"}, "bare.png")


@pytest.mark.parametrize("settings, message", [
    (dict(objective="electra"), "objective must be one of"),
    (dict(objective="rtd", generator_layers=0), "generator_layers >= 1"),
    (dict(objective="rtd", rtd_weight=0.0), "rtd_weight > 0"),
    (dict(mask_prob=1.5), "mask_prob must lie in"),
])
def test_pretraining_settings_are_checked_before_any_text_is_read(settings, message):
    with pytest.raises(ValueError, match=message):
        pretrain(PretrainConfig(data="no/such/file.txt", **settings, **SMALL))


def test_fine_tuning_refuses_a_checkpoint_it_cannot_start_from():
    pretrain(PretrainConfig(objective="denoise", steps=1, out_dir="t5", **SMALL),
             log=lambda *_: None)
    with pytest.raises(ValueError, match=r"is not an mlm, rtd, clm pretraining checkpoint "
                                         r"\(made by: minitransformer pretrain --set "
                                         r"objective=mlm\|rtd\|clm\)"):
        build_classifier(FinetuneConfig(init_from="t5/last.npz", **SMALL))


def test_causal_lm_checkpoints_that_named_the_encoder_backbone_still_load():
    # written before CausalLanguageModel's text encoder took the name all models use: "encoder"
    mt.manual_seed(0)
    sizes = dict(d_model=16, n_heads=2, n_layers=1, d_ff=32)
    saved = nn.CausalLanguageModel(40, **sizes).state_dict()
    legacy = {key.replace("encoder.", "backbone.", 1) if key.startswith("encoder.") else key:
              value for key, value in saved.items()}
    assert any(key.startswith("backbone.") for key in legacy)
    model = nn.CausalLanguageModel(40, **sizes)
    model.load_state_dict(legacy)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(np.asarray(value), np.asarray(saved[key]))
