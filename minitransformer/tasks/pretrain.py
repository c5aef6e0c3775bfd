"""Pretraining on unlabelled text, with one of four objectives:

- ``mlm`` (masked language modelling, BERT): hide 15% of the tokens, predict them from both
  sides. Trains a TextEncoder, the encoder a classifier fine-tunes.
- ``clm`` (causal language modelling, GPT): predict every next token from the ones before.
  Trains a decoder-only CausalLanguageModel.
- ``denoise`` (span corruption, T5): replace random spans by sentinels, generate the spans with
  an encoder-decoder Transformer.
- ``rtd`` (replaced-token detection, ELECTRA): a small masked-LM generator fills the masked
  positions with plausible samples; the encoder learns to tell, for every token, whether it was
  replaced. It learns from every token, so it is the most compute-efficient of the four for
  small models; the encoder is what fine-tuning keeps.

``init_from`` continues from another pretraining checkpoint (continued, or domain-adaptive,
pretraining: a general corpus first, then the task's own unlabelled text): its tokenizer and
sizes are kept, and every weight the new model shares with it by name and shape is loaded.

Each reports the validation loss and perplexity (e^loss), writes checkpoints (with the settings
and the tokenizer) and a metrics file, and can resume.
"""

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import minitransformer.functional as F
from minitransformer import backend, nn
from minitransformer.autograd import no_grad
from minitransformer.data import (
    EOS_ID,
    IGNORE_INDEX,
    N_SPECIAL,
    PAD_ID,
    DataLoader,
    MaskedLMCollator,
    SpanCorruptionCollator,
    collate_causal_lm,
    load_imdb,
    read_text,
    text_world,
)
from minitransformer.distributed import main_only, rank_seed, shard_collate
from minitransformer.nn.settings import build_model
from minitransformer.tasks.common import (
    ModelSettings,
    Stopwatch,
    TrainingSettings,
    build_optimizer,
    build_tokenizer,
    check_run_settings,
    mean_loss,
    perplexity_of,
    prepare_run,
    read_pretrained,
    schedule_for,
    select_device,
    tokenizer_state,
    train_config,
)
from minitransformer.train import Trainer

__all__ = ["OBJECTIVES", "PretrainConfig", "build_pretraining_model", "pretrain"]

OBJECTIVES = ("mlm", "clm", "denoise", "rtd")


@dataclass
class PretrainConfig(ModelSettings, TrainingSettings):
    """Settings of ``pretrain`` (and of ``minitransformer pretrain``).

    data: "builtin" (the text world's unlabelled corpus), a path to .txt/.txt.gz file(s), or an
    IMDB aclImdb folder or tarball (its training reviews, labels unused).
    tokenizer: "word", "char" or "bpe" (vocab_size: the BPE size or the word vocabulary cap).
    seq_len: tokens per training example. max_chars: read at most this much of a large file.
    mask_prob: the share of tokens masked (mlm, rtd) or cut out in spans (denoise).
    generator_layers, rtd_weight: the rtd generator's depth and the weight of the detection loss.
    init_from: a pretraining checkpoint to continue from (its tokenizer and sizes are used).
    """

    objective: str = "mlm"
    data: str = "builtin"
    tokenizer: str = "word"
    vocab_size: int = 8000
    min_freq: int = 1
    seq_len: int = 32
    mask_prob: float = 0.15
    valid_fraction: float = 0.05
    max_chars: int | None = None
    generator_layers: int = 1
    rtd_weight: float = 50.0
    init_from: str | None = None
    out_dir: str = "runs/pretrain"


def _is_imdb(path):
    path = Path(path)
    return path.name.endswith(".tar.gz") or (path / "train").is_dir()


def load_texts(config):
    """The unlabelled text: a list of sentences (built-in), of IMDB training reviews (an aclImdb
    folder or tarball: labels unused), or a file's text: whole for the char and BPE tokenizers
    (newlines are tokens too), as lines for the word tokenizer (which drops white space)."""
    if config.data == "builtin":
        return text_world(seed=config.seed).corpus
    if _is_imdb(config.data):
        return load_imdb(config.data, "train")[0]
    text = read_text(config.data)
    if config.max_chars is not None:
        text = text[:config.max_chars]
    if not text.strip():
        raise ValueError(f"pretrain: {config.data} holds no text")
    if config.tokenizer in ("char", "bpe"):
        return [text]
    return [line for line in text.splitlines() if line.strip()]


def make_examples(config, tokenizer, texts):
    """Id lists: sentences for mlm/denoise on the built-in corpus; otherwise the whole text as one
    stream (pieces joined by <eos>) cut into blocks of seq_len (+1 for the next-token target)."""
    encoded = [tokenizer.encode(text) for text in texts]
    if config.data == "builtin" and config.objective != "clm":
        return [ids[:config.seq_len] for ids in encoded if len(ids) >= 2]
    if len(encoded) == 1:
        stream = encoded[0]
    else:
        stream = [token for ids in encoded for token in ids + [EOS_ID]]
    block = config.seq_len + (1 if config.objective == "clm" else 0)
    if len(stream) < 2 * block:
        raise ValueError(f"pretrain: the text gives {len(stream)} tokens, too few for blocks of "
                         f"{block}; lower seq_len or give more text")
    return [stream[i:i + block] for i in range(0, len(stream) - block + 1, block)]


def unigram_cross_entropy(train, valid, vocab_size):
    """The loss of a model that ignores context: the cross-entropy (nats) of the validation
    tokens under the training tokens' frequencies, add-one smoothed,

        H = -(1/N) Σ_valid log((count(t) + 1) / (n_train + V)).

    A masked or causal LM's validation loss must fall below this line to have learned anything
    from context. Special tokens (ids below N_SPECIAL) are left out."""
    counts = {}
    for ids in train:
        for token in ids:
            counts[token] = counts.get(token, 0) + 1
    total = sum(counts.values())
    tokens = [token for ids in valid for token in ids if token >= N_SPECIAL]
    if not tokens:
        return float("nan")
    return -sum(math.log((counts.get(t, 0) + 1) / (total + vocab_size)) for t in tokens) / \
        len(tokens)


def build_pretraining_model(objective, vocab_size, settings):
    """The model an objective trains: MaskedLanguageModel, CausalLanguageModel, Transformer or
    ReplacedTokenDetection."""
    if objective not in OBJECTIVES:
        raise ValueError(f"pretrain: objective must be one of {OBJECTIVES}, got {objective!r}")
    if objective == "mlm":
        return build_model("masked_lm", vocab_size, settings, pad_id=PAD_ID)
    if objective == "rtd":
        generator = build_model("text_encoder", vocab_size, settings, pad_id=PAD_ID,
                                n_layers=settings.generator_layers)
        return nn.ReplacedTokenDetection(
            build_model("text_encoder", vocab_size, settings, pad_id=PAD_ID), generator,
            weight=settings.rtd_weight)
    if objective == "clm":
        return build_model("causal_lm", vocab_size, settings)
    return build_model("encoder_decoder", vocab_size, settings)


def _collator(config, vocab_size, seed):
    if config.objective == "mlm":
        return MaskedLMCollator(vocab_size, seed=seed, mask_prob=config.mask_prob)
    if config.objective == "rtd":  # the generator reads <mask> at every chosen position
        return MaskedLMCollator(vocab_size, seed=seed, mask_prob=config.mask_prob,
                                replace_prob=1.0, random_prob=0.0)
    if config.objective == "denoise":
        return SpanCorruptionCollator(vocab_size, seed=seed, noise_density=config.mask_prob,
                                      n_sentinels=20)
    return collate_causal_lm


def loss_function(objective):
    """loss_fn(model, batch) -> (mean cross-entropy over predicted tokens, their count)."""

    def mlm(model, batch):
        chosen = batch.labels.data != IGNORE_INDEX  # (B, T): the positions to predict
        logits = model(batch.ids, batch.mask, positions=chosen)  # (N, V)
        return F.cross_entropy(logits, batch.labels[chosen], reuse_logits=True), \
            int(chosen.sum())

    def clm(model, batch):
        logits = model(batch.inputs)  # (B, T, V)
        return F.cross_entropy(logits, batch.targets, ignore_index=IGNORE_INDEX,
                               reuse_logits=True), \
            int((batch.targets.data != IGNORE_INDEX).sum())

    def denoise(model, batch):
        logits = model(batch.src, batch.tgt_in, batch.src_mask, batch.tgt_mask)
        return F.cross_entropy(logits, batch.tgt_out, ignore_index=IGNORE_INDEX,
                               reuse_logits=True), \
            int((batch.tgt_out.data != IGNORE_INDEX).sum())

    def rtd(model, batch):
        out = model(batch.ids, batch.labels, batch.mask)
        return out.loss, int(out.real.sum())

    return {"mlm": mlm, "clm": clm, "denoise": denoise, "rtd": rtd}[objective]


def rtd_metrics(model, batches):
    """The rtd model's validation metrics: the summed loss, the generator's masked-LM loss (in
    the units of mlm's loss), the detection loss, how often the detector is right, and the
    share of real tokens replaced (a detector that always answers "original" scores 1 - that).
    """
    totals = {"loss": 0.0, "generator_loss": 0.0, "detector_loss": 0.0}
    right = real = replaced = 0
    training = model.training
    model.eval()
    with no_grad():
        for batch in batches:
            out = model(batch.ids, batch.labels, batch.mask)
            n = int(out.real.sum())
            for key in totals:
                totals[key] += getattr(out, key).item() * n
            predicted = out.detector_logits.data.argmax(axis=-1) == 1  # (B, T)
            right += int((predicted == out.replaced)[out.real].sum())
            replaced += int(out.replaced[out.real].sum())
            real += n
    model.train(training)
    metrics = {key: value / max(real, 1) for key, value in totals.items()}
    metrics["detector_accuracy"] = right / max(real, 1)
    metrics["replaced_fraction"] = replaced / max(real, 1)  # 1 - this: "never replaced"'s score
    return metrics


def _continue_from(config, log):
    """(tokenizer, config with the checkpoint's sizes, weights) of ``config.init_from``."""
    state, tokenizer, sizes = read_pretrained(config.init_from, "pretrain")
    log(f"pretrain: continuing from {config.init_from} ({state['config']['objective']}, step "
        f"{state['step']})")
    return tokenizer, replace(config, **sizes), state["model"]


def _load_shared(model, weights, source, log):
    """Load every tensor of ``weights`` that ``model`` has under the same name and shape."""
    own = model.state_dict()
    fitting = {key: value for key, value in weights.items()
               if key in own and own[key].shape == value.shape}
    if not any(key.endswith("embed.weight") for key in fitting):
        raise ValueError(f"pretrain: init_from={source} shares no embedding table with this "
                         "model: was it made with another objective family or size?")
    model.load_state_dict({**own, **fitting})
    log(f"pretrain: loaded {len(fitting)} of {len(own)} tensors from {source}")


def check_settings(config):
    """Refuse settings that cannot work, before any text is read."""
    check_run_settings(config, "pretrain")
    if config.objective not in OBJECTIVES:
        raise ValueError(f"pretrain: objective must be one of {OBJECTIVES}, got "
                         f"{config.objective!r}")
    if config.objective == "rtd" and (config.generator_layers < 1 or config.rtd_weight <= 0):
        raise ValueError(f"pretrain: rtd needs generator_layers >= 1 and rtd_weight > 0, got "
                         f"generator_layers={config.generator_layers}, "
                         f"rtd_weight={config.rtd_weight}")
    if not 0.0 < config.mask_prob < 1.0:
        raise ValueError(f"pretrain: mask_prob must lie in (0, 1), got {config.mask_prob}")


def pretrain(config, log=print):
    """Run pretraining; returns a dict of results (losses, perplexity, time, paths).

    Under ``mpiexec -n N`` each rank collates every N-th row of each batch, with masks of its own
    (``distributed``); rank 0 alone logs."""
    log = main_only(log)
    check_settings(config)
    out = prepare_run(config, "pretrain")
    select_device(config.device)
    clock = Stopwatch()
    texts = load_texts(config)
    weights = None
    if config.init_from is not None:
        tokenizer, config, weights = _continue_from(config, log)
    else:
        tokenizer = build_tokenizer(config.tokenizer, texts, config.vocab_size, config.min_freq)
    examples = make_examples(config, tokenizer, texts)
    n_valid = max(1, int(len(examples) * config.valid_fraction))
    train, valid = examples[:-n_valid], examples[-n_valid:]
    vocab = tokenizer.vocab_size
    if config.objective == "denoise":
        vocab = _collator(config, vocab, 0).model_vocab_size
    unigram = unigram_cross_entropy(train, valid, tokenizer.vocab_size)
    log(f"pretrain ({config.objective}): {len(train)} training and {len(valid)} validation "
        f"examples, {tokenizer!r}; a unigram model (no context) scores {unigram:.3f} nats")
    backend.manual_seed(config.seed)
    model = build_pretraining_model(config.objective, vocab, config)
    if weights is not None:
        _load_shared(model, weights, config.init_from, log)
    optimizer = build_optimizer(model.named_parameters(), config)
    loss_fn = loss_function(config.objective)

    def batches(epoch):
        collate = _collator(config, tokenizer.vocab_size, rank_seed(config.seed * 7919 + epoch))
        loader = DataLoader(train, config.batch_size, shard_collate(collate), shuffle=True,
                            seed=config.seed, sort_key=len)
        loader.set_epoch(epoch)
        return loader

    valid_batches = list(DataLoader(valid, config.batch_size,
                                    _collator(config, tokenizer.vocab_size, 12345)))

    def evaluate(model):
        if config.objective == "rtd":
            return rtd_metrics(model, valid_batches)
        loss = mean_loss(model, valid_batches, loss_fn)
        return {"loss": loss, "perplexity": perplexity_of(loss)}

    trainer = Trainer(model, optimizer, loss_fn, batches, train_config(config, "loss", "min"),
                      schedule=schedule_for(config), evaluate=evaluate,
                      extra_state={"task": "pretrain", "config": asdict(config),
                                   "tokenizer": tokenizer_state(tokenizer),
                                   "model_vocab_size": vocab, "unigram_loss": unigram})
    history = trainer.fit(resume=config.resume)
    final = evaluate(model)
    final.setdefault("perplexity", perplexity_of(final.get("generator_loss", final["loss"])))
    log(f"pretrain ({config.objective}): validation loss {final['loss']:.4f}, perplexity "
        f"{final['perplexity']:.2f} after {trainer.step} steps ({clock.elapsed():.0f} s); "
        f"perplexity = e^loss: as unsure of each held-out token as a uniform choice among "
        f"{final['perplexity']:.0f} tokens")
    return {"model": model, "tokenizer": tokenizer, "history": history, "metrics": final,
            "unigram_loss": unigram,
            "valid_loss": final["loss"], "perplexity": final["perplexity"],
            "train_loss": history[-1]["loss"] if history else None,
            "seconds": clock.elapsed(), "checkpoint": out / "last.npz", "out_dir": out}
