"""Sequence-to-sequence training with the encoder-decoder Transformer: the copy and reverse
tasks (built in) and translation (Multi30k).

Training uses teacher forcing: the decoder reads <bos> + the reference and predicts the
reference + <eos> at every position at once, under a causal mask, with label-smoothed
cross-entropy (the paper: ε = 0.1). Evaluation decodes for real, one token at a time (greedy or
beam search, with the key/value cache), and scores exact matches (synthetic tasks) or corpus
BLEU (translation).
"""

from dataclasses import asdict, dataclass

import minitransformer.functional as F
from minitransformer import backend, checkpoint, decoding
from minitransformer.data import (
    BOS_ID,
    EOS_ID,
    IGNORE_INDEX,
    N_SPECIAL,
    DataLoader,
    collate_seq2seq,
    copy_task,
    load_multi30k,
    reverse_task,
)
from minitransformer.distributed import main_only, shard_collate
from minitransformer.metrics import corpus_bleu
from minitransformer.nn.settings import build_model
from minitransformer.tasks.common import (
    ModelSettings,
    Stopwatch,
    TrainingSettings,
    build_optimizer,
    build_tokenizer,
    check_run_settings,
    prepare_run,
    require,
    schedule_for,
    select_device,
    tokenizer_from_state,
    tokenizer_state,
    train_config,
    unknown_tokens,
)
from minitransformer.train import Trainer

__all__ = ["Seq2SeqConfig", "decode_batch", "load_translator", "train_seq2seq", "translate"]

SYNTHETIC = {"copy": copy_task, "reverse": reverse_task}


@dataclass
class Seq2SeqConfig(ModelSettings, TrainingSettings):
    """Settings of ``train_seq2seq`` (and of ``minitransformer train-seq2seq``).

    data: "copy", "reverse" (built-in, ids from a ``task_vocab`` of symbols) or a Multi30k
    folder (``source`` -> ``target`` languages, a shared BPE vocabulary of ``vocab_size``).
    decode: "greedy" or "beam" (``beam_size``, ``length_penalty``) for evaluation.
    n_eval: validation sentences decoded at each evaluation.
    """

    data: str = "copy"
    source: str = "en"
    target: str = "de"
    tokenizer: str = "bpe"
    vocab_size: int = 8000
    task_vocab: int = 16
    n_examples: int = 5000
    min_len: int = 4
    seq_max_len: int = 10
    label_smoothing: float = 0.1
    decode: str = "greedy"
    beam_size: int = 4
    length_penalty: float = 0.6
    max_decode_len: int = 64
    n_eval: int = 200
    n_train: int | None = None
    positional: str = "sinusoidal"
    out_dir: str = "runs/seq2seq"


def check_seq2seq_settings(config):
    """Refuse settings that cannot work, before any data is read."""
    command = "train-seq2seq"
    check_run_settings(config, command)
    require(config.decode in ("greedy", "beam"), command,
            f"decode must be 'greedy' or 'beam', got decode={config.decode!r}")
    for name in ("beam_size", "max_decode_len", "n_eval", "n_examples", "min_len"):
        value = getattr(config, name)
        require(value >= 1, command, f"{name} must be >= 1, got {name}={value}")
    require(0.0 <= config.label_smoothing < 1.0, command,
            f"label_smoothing must lie in [0, 1), got label_smoothing={config.label_smoothing}")
    if config.data in SYNTHETIC:
        require(config.task_vocab > N_SPECIAL, command, f"task_vocab={config.task_vocab} leaves "
                f"no room beside the {N_SPECIAL} special tokens")
        require(config.min_len <= config.seq_max_len, command,
                f"min_len={config.min_len} exceeds seq_max_len={config.seq_max_len}")


def load_pairs(config):
    """(train, valid, test) lists of (source ids, target ids) and the tokenizer (None for the
    synthetic tasks, whose ids are their own vocabulary)."""
    if config.data in SYNTHETIC:
        make = SYNTHETIC[config.data]
        sizes = dict(vocab_size=config.task_vocab, min_len=config.min_len,
                     max_len=config.seq_max_len)
        return (make(config.n_examples, seed=config.seed, **sizes),
                make(200, seed=config.seed + 1, **sizes),
                make(200, seed=config.seed + 2, **sizes), None)
    train = load_multi30k(config.data, "train", config.source, config.target)
    if config.n_train is not None:
        train = train[:config.n_train]
    valid = load_multi30k(config.data, "val", config.source, config.target)
    test = load_multi30k(config.data, "test", config.source, config.target)
    tokenizer = build_tokenizer(config.tokenizer, [s for pair in train for s in pair],
                                config.vocab_size)

    def encode(pairs):
        return [(tokenizer.encode(s)[:config.max_len], tokenizer.encode(t)[:config.max_len - 1],
                 t) for s, t in pairs]

    return encode(train), encode(valid), encode(test), tokenizer


def build_translator(config, vocab_size):
    """The encoder-decoder Transformer of ``config``'s size, one vocabulary for both sides."""
    return build_model("encoder_decoder", vocab_size, config)


def decode_batch(model, sources, config):
    """Decoded id lists (without <eos>) for a list of source id lists."""
    src = collate_seq2seq([(s, [0]) for s in sources]).src
    max_len = min(config.max_decode_len, config.max_len)  # the decoder's positions
    if config.decode == "beam":
        outputs = decoding.beam_search(model, src, config.beam_size, max_len, BOS_ID, EOS_ID,
                                       config.length_penalty)
    elif config.decode == "greedy":
        outputs = decoding.greedy(model, src, max_len, BOS_ID, EOS_ID)
    else:
        raise ValueError(f"decode: expected 'greedy' or 'beam', got {config.decode!r}")
    return [ids[:-1] if ids and ids[-1] == EOS_ID else ids for ids in outputs]


def score(model, examples, config, tokenizer, batch_size=50):
    """Exact-match accuracy (synthetic) or corpus BLEU (translation) of decoding ``examples``."""
    hypotheses = []
    for start in range(0, len(examples), batch_size):
        hypotheses += decode_batch(model, [ex[0] for ex in examples[start:start + batch_size]],
                                   config)
    if tokenizer is None:
        exact = sum(h == list(ex[1]) for h, ex in zip(hypotheses, examples)) / len(examples)
        return {"exact_match": exact}
    texts = [tokenizer.decode(h, skip_special=True) for h in hypotheses]
    return {"bleu": corpus_bleu(texts, [ex[2] for ex in examples])["bleu"]}


def train_seq2seq(config, log=print):
    """Train (or resume) and evaluate; returns a dict of results. Under ``mpiexec -n N`` each
    rank collates every N-th pair of each batch (``distributed``); rank 0 alone logs."""
    log = main_only(log)
    check_seq2seq_settings(config)
    out = prepare_run(config, "train-seq2seq")
    select_device(config.device)
    clock = Stopwatch()
    train, valid, test, tokenizer = load_pairs(config)
    vocab = config.task_vocab if tokenizer is None else tokenizer.vocab_size
    if vocab <= N_SPECIAL:
        raise ValueError(f"train-seq2seq: a vocabulary of {vocab} leaves no room beside the "
                         f"{N_SPECIAL} special tokens")
    backend.manual_seed(config.seed)
    model = build_translator(config, vocab)
    optimizer = build_optimizer(model.named_parameters(), config)
    metric = "exact_match" if tokenizer is None else "bleu"
    log(f"train-seq2seq ({config.data}): {len(train)} training pairs, vocabulary {vocab}, "
        f"{model.num_parameters():,} parameters")

    def batches(epoch):
        collate = shard_collate(lambda pairs: collate_seq2seq(
            [(p[0], p[1]) for p in pairs], max_tgt_len=config.max_len))
        loader = DataLoader(train, config.batch_size, collate, shuffle=True, seed=config.seed,
                            sort_key=lambda p: len(p[0]))
        loader.set_epoch(epoch)
        return loader

    def loss_fn(model, batch):
        logits = model(batch.src, batch.tgt_in, batch.src_mask, batch.tgt_mask)
        loss = F.cross_entropy(logits, batch.tgt_out, ignore_index=IGNORE_INDEX,
                               label_smoothing=config.label_smoothing, reuse_logits=True)
        return loss, int((batch.tgt_out.data != IGNORE_INDEX).sum())

    def evaluate(model):
        return score(model, valid[:config.n_eval], config, tokenizer)

    trainer = Trainer(model, optimizer, loss_fn, batches, train_config(config, metric, "max"),
                      schedule=schedule_for(config), evaluate=evaluate,
                      extra_state={"task": "seq2seq", "config": asdict(config),
                                   "tokenizer": tokenizer_state(tokenizer) if tokenizer else None})
    history = trainer.fit(resume=config.resume)
    if (out / "best.npz").exists():
        checkpoint.load(out / "best.npz", model)
    result = score(model, test, config, tokenizer)
    log(f"train-seq2seq ({config.data}): test {metric} {result[metric]:.2f} with "
        f"{config.decode} decoding, {clock.elapsed():.0f} s")
    return {"model": model, "tokenizer": tokenizer, "history": history, "metric": metric,
            "test": result[metric], "seconds": clock.elapsed(), "out_dir": out}


def load_translator(path):
    """(model, tokenizer or None, config) from a train-seq2seq checkpoint."""
    state = checkpoint.load(path)
    if state.get("task") != "seq2seq":
        raise ValueError(f"translate: {path} is not a train-seq2seq checkpoint")
    config = Seq2SeqConfig(**state["config"])
    tokenizer = tokenizer_from_state(state["tokenizer"], str(path)) if state["tokenizer"] \
        else None
    vocab = config.task_vocab if tokenizer is None else tokenizer.vocab_size
    model = build_translator(config, vocab)
    checkpoint.load(path, model)
    return model, tokenizer, config


def translate(path, sentences, decode=None, beam_size=None, warn=None):
    """Translate ``sentences`` (strings; for the synthetic tasks, space-separated ids) with a
    train-seq2seq checkpoint; returns the outputs as strings. ``beam_size`` >= 1 (with decode
    "beam"); words the vocabulary lacks are read as <unk> and named through ``warn`` (a
    function of one line; None: not reported); an id outside a synthetic task's vocabulary is
    refused."""
    if beam_size is not None and (isinstance(beam_size, bool) or not isinstance(beam_size, int)
                                  or beam_size < 1):
        raise ValueError(f"translate: the beam size must be an integer >= 1, got {beam_size!r}")
    model, tokenizer, config = load_translator(path)
    if decode is not None:
        config.decode = decode
    if beam_size is not None:
        config.beam_size = beam_size
    for number, sentence in enumerate(sentences, 1):
        if not sentence.split():
            raise ValueError(f"translate: sentence {number} is empty")
    if tokenizer is None:
        sources = [_task_ids(s, config) for s in sentences]
    else:
        sources = [tokenizer.encode(s)[:config.max_len] for s in sentences]
        unknown = [w for s in sentences for w in unknown_tokens(tokenizer, s)]
        if unknown and warn is not None:
            warn("translate: not in the vocabulary (read as <unk>): " +
                 ", ".join(repr(w) for w in dict.fromkeys(unknown)))
    outputs = decode_batch(model, sources, config)
    if tokenizer is None:
        return [" ".join(str(i) for i in ids) for ids in outputs]
    return [tokenizer.decode(ids, skip_special=True) for ids in outputs]


def _task_ids(sentence, config):
    """The ids of a copy/reverse sentence ("7 8 9"): integers in N_SPECIAL..task_vocab - 1."""
    low, high = N_SPECIAL, config.task_vocab - 1
    ids = []
    for token in sentence.split():
        if not token.isdigit() or not low <= int(token) <= high:
            raise ValueError(f"translate: token {token!r} is not in the vocabulary: the "
                             f"{config.data} task reads ids {low}..{high} separated by spaces")
        ids.append(int(token))
    return ids[:config.max_len]
