"""Pretraining on unlabelled text, with one of three objectives:

- ``mlm`` (masked language modelling, BERT): hide 15% of the tokens, predict them from both
  sides. Trains a TextEncoder, the backbone a classifier fine-tunes.
- ``clm`` (causal language modelling, GPT): predict every next token from the ones before.
  Trains a decoder-only CausalLanguageModel.
- ``denoise`` (span corruption, T5): replace random spans by sentinels, generate the spans with
  an encoder-decoder Transformer.

Each reports the validation loss and perplexity (e^loss), writes checkpoints (with the settings
and the tokenizer) and a metrics file, and can resume.
"""

from dataclasses import asdict, dataclass
from pathlib import Path

import minitransformer.functional as F
from minitransformer import backend, nn
from minitransformer.data import (
    EOS_ID,
    IGNORE_INDEX,
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
from minitransformer.tasks.common import (
    ModelSettings,
    Stopwatch,
    TrainingSettings,
    build_optimizer,
    build_tokenizer,
    mean_loss,
    model_settings,
    perplexity_of,
    run_dir,
    schedule_for,
    select_device,
    tokenizer_state,
    train_config,
)
from minitransformer.train import Trainer

__all__ = ["OBJECTIVES", "PretrainConfig", "build_pretraining_model", "pretrain"]

OBJECTIVES = ("mlm", "clm", "denoise")


@dataclass
class PretrainConfig(ModelSettings, TrainingSettings):
    """Settings of ``pretrain`` (and of ``minitransformer pretrain``).

    data: "builtin" (the text world's unlabelled corpus), a path to .txt/.txt.gz file(s), or an
    IMDB aclImdb folder or tarball (its training reviews, labels unused).
    tokenizer: "word", "char" or "bpe" (vocab_size: the BPE size or the word vocabulary cap).
    seq_len: tokens per training example. max_chars: read at most this much of a large file.
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


def build_pretraining_model(objective, vocab_size, settings):
    """The model an objective trains: MaskedLanguageModel, CausalLanguageModel or Transformer."""
    if objective not in OBJECTIVES:
        raise ValueError(f"pretrain: objective must be one of {OBJECTIVES}, got {objective!r}")
    sizes = model_settings(settings)
    if objective == "mlm":
        return nn.MaskedLanguageModel(nn.TextEncoder(vocab_size, pad_id=PAD_ID, **sizes))
    if objective == "clm":
        return nn.CausalLanguageModel(vocab_size, **sizes)
    layers = sizes.pop("n_layers")
    return nn.Transformer(vocab_size, vocab_size, n_encoder_layers=layers,
                          n_decoder_layers=layers, share_embeddings=True, tie_output=True,
                          **sizes)


def _collator(config, vocab_size, seed):
    if config.objective == "mlm":
        return MaskedLMCollator(vocab_size, seed=seed, mask_prob=config.mask_prob)
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

    return {"mlm": mlm, "clm": clm, "denoise": denoise}[objective]


def pretrain(config, log=print):
    """Run pretraining; returns a dict of results (losses, perplexity, time, paths).

    Under ``mpiexec -n N`` each rank collates every N-th row of each batch, with masks of its own
    (``distributed``); rank 0 alone logs."""
    log = main_only(log)
    select_device(config.device)
    clock = Stopwatch()
    texts = load_texts(config)
    tokenizer = build_tokenizer(config.tokenizer, texts, config.vocab_size, config.min_freq)
    examples = make_examples(config, tokenizer, texts)
    n_valid = max(1, int(len(examples) * config.valid_fraction))
    train, valid = examples[:-n_valid], examples[-n_valid:]
    vocab = tokenizer.vocab_size
    if config.objective == "denoise":
        vocab = _collator(config, vocab, 0).model_vocab_size
    log(f"pretrain ({config.objective}): {len(train)} training and {len(valid)} validation "
        f"examples, {tokenizer!r}")
    backend.manual_seed(config.seed)
    model = build_pretraining_model(config.objective, vocab, config)
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
        loss = mean_loss(model, valid_batches, loss_fn)
        return {"loss": loss, "perplexity": perplexity_of(loss)}

    out = run_dir(config)
    trainer = Trainer(model, optimizer, loss_fn, batches, train_config(config, "loss", "min"),
                      schedule=schedule_for(config), evaluate=evaluate,
                      extra_state={"task": "pretrain", "config": asdict(config),
                                   "tokenizer": tokenizer_state(tokenizer),
                                   "model_vocab_size": vocab})
    history = trainer.fit(resume=config.resume)
    final = evaluate(model)
    log(f"pretrain ({config.objective}): validation loss {final['loss']:.4f}, perplexity "
        f"{final['perplexity']:.2f} after {trainer.step} steps ({clock.elapsed():.0f} s)")
    return {"model": model, "tokenizer": tokenizer, "history": history,
            "valid_loss": final["loss"], "perplexity": final["perplexity"],
            "train_loss": history[-1]["loss"] if history else None,
            "seconds": clock.elapsed(), "checkpoint": out / "last.npz", "out_dir": out}
