"""Fine-tuning a text classifier (e.g. IMDB sentiment), from one of three starts:

- a pretrained encoder (``init_from``: a checkpoint of ``pretrain`` with objective mlm, rtd
  (the discriminator is kept) or clm (the classifier then stays causal: mean or last-token
  pooling, as GPT and ULMFiT));
- GloVe word vectors as the embedding table (``glove``), the rest random;
- nothing: every weight random ("from scratch").

Options a demanding user expects: CLS or mean pooling, freezing the embeddings or the first k
layers, and a lower learning rate for pretrained weights than for the new head (discriminative
fine-tuning). Reports validation and test accuracy and a confusion matrix; keeps the best
checkpoint by validation accuracy and tests that one.
"""

import random
from dataclasses import asdict, dataclass, replace

import minitransformer.functional as F
from minitransformer import backend, checkpoint, nn
from minitransformer.autograd import no_grad
from minitransformer.data import (
    CLS_ID,
    PAD_ID,
    DataLoader,
    collate_classification,
    glove_embedding_matrix,
    load_imdb,
    text_world,
)
from minitransformer.distributed import main_only, shard_collate
from minitransformer.metrics import accuracy, confusion_matrix
from minitransformer.nn.models import CausalLanguageModel
from minitransformer.nn.settings import build_model
from minitransformer.tasks.common import (
    ModelSettings,
    Stopwatch,
    TrainingSettings,
    build_optimizer,
    build_tokenizer,
    check_run_settings,
    model_settings,
    prepare_run,
    read_pretrained,
    schedule_for,
    select_device,
    tokenizer_from_state,
    tokenizer_state,
    train_config,
)
from minitransformer.train import Trainer

__all__ = ["FinetuneConfig", "finetune", "load_classification_data", "predict"]


@dataclass
class FinetuneConfig(ModelSettings, TrainingSettings):
    """Settings of ``finetune`` (and of ``minitransformer finetune``).

    data: "builtin" (the text world) or an IMDB ``aclImdb`` folder or ``aclImdb_v1.tar.gz``.
    init_from: a pretraining checkpoint (mlm, rtd or clm); its model sizes and tokenizer are
    used.
    tokenizer_from: a checkpoint whose tokenizer to use (weights not loaded), so runs from
    scratch or GloVe see the same tokens as a pretrained run.
    glove: GloVe vectors (.txt/.txt.gz); d_model becomes their dimension.
    pretrained_lr_scale: learning-rate factor for pretrained (or GloVe) weights.
    layer_lr_decay: discriminative learning rates per layer (ULMFiT): pretrained layer k of L
    (0 = lowest) runs at pretrained_lr_scale · decay^(L-1-k), the embeddings at · decay^L.
    unfreeze_every: gradual unfreezing (ULMFiT): the head trains from the start, the top layer
    after this many steps, each lower layer that many steps later, the embeddings last (0: all
    at once). freeze_embeddings_steps: the embeddings stay frozen for this many steps.
    schedule: "cosine" (warm-up, cosine decay to a tenth) or "linear" (warm-up, linear to 0).
    seq_len: tokens kept per example; n_train/n_test: use only that many examples (None: all).
    """

    data: str = "builtin"
    init_from: str | None = None
    tokenizer_from: str | None = None
    glove: str | None = None
    tokenizer: str = "word"
    vocab_size: int = 20000
    min_freq: int = 1
    pooling: str = "cls"
    freeze_embeddings: bool = False
    freeze_layers: int = 0
    pretrained_lr_scale: float = 0.1
    layer_lr_decay: float = 1.0
    unfreeze_every: int = 0
    freeze_embeddings_steps: int = 0
    schedule: str = "cosine"
    head_dropout: float = 0.1
    seq_len: int = 128
    valid_fraction: float = 0.1
    n_train: int | None = None
    n_test: int | None = None
    out_dir: str = "runs/finetune"


def load_classification_data(config, reviews=None):
    """(train, valid, test) lists of (text, label), and the unlabelled texts a tokenizer may
    learn from. ``reviews``: the (train, test) lists of (text, label) of ``config.data``, when
    already read (a sweep of many runs reads them once)."""
    if config.data == "builtin":
        world = text_world(seed=config.seed)
        train = world.train if config.n_train is None else world.train[:config.n_train]
        return train, world.valid, world.test, world.corpus + [t for t, _ in world.train]
    if reviews is None:
        reviews = (list(zip(*load_imdb(config.data, "train"))),
                   list(zip(*load_imdb(config.data, "test"))))
    train, test = list(reviews[0]), list(reviews[1])
    random.Random(config.seed).shuffle(train)
    random.Random(config.seed + 1).shuffle(test)
    n_valid = max(1, int(len(train) * config.valid_fraction))
    valid, train = train[:n_valid], train[n_valid:]
    if config.n_train is not None:
        train = train[:config.n_train]
    if config.n_test is not None:
        test = test[:config.n_test]
    return train, valid, test, [text for text, _ in train]


def _encode(tokenizer, examples, seq_len):
    return [(tokenizer.encode(text)[:seq_len], label) for text, label in examples]


def predict(model, examples, batch_size=64, seq_len=None):
    """Predicted classes for encoded (ids, label) examples, in order (a <cls> first unless the
    model is causal)."""
    cls_id = None if getattr(model, "causal", False) else CLS_ID
    predictions = []
    training = model.training
    model.eval()
    with no_grad():
        for start in range(0, len(examples), batch_size):
            batch = collate_classification(examples[start:start + batch_size], max_len=seq_len,
                                           cls_id=cls_id)
            logits = model(batch.ids, batch.mask)
            xp = backend.array_module(logits.data)
            predictions += xp.argmax(logits.data, axis=-1).tolist()
    model.train(training)
    return predictions


PRETRAINED_PREFIXES = {"mlm": "encoder.", "rtd": "encoder.", "clm": "encoder."}


def _start_from_checkpoint(config, classifier_sizes):
    """(tokenizer, sizes, encoder weights, causal) of an mlm, rtd or clm pretraining
    checkpoint: the masked-LM encoder, the rtd discriminator, or the causal LM's encoder."""
    state, tokenizer, saved = read_pretrained(config.init_from, "finetune",
                                              tuple(PRETRAINED_PREFIXES))
    objective = state["config"]["objective"]
    sizes = {key: saved[key] for key in classifier_sizes}
    prefix = PRETRAINED_PREFIXES[objective]
    model = CausalLanguageModel.upgrade_state(state["model"]) if objective == "clm" else \
        state["model"]
    encoder_weights = {k[len(prefix):]: v for k, v in model.items() if k.startswith(prefix)}
    return tokenizer, sizes, encoder_weights, objective == "clm"


def build_classifier(config, tokenizer=None, log=print):
    """The SequenceClassifier, its tokenizer, which parameter prefixes are pretrained, and the
    model settings used (a checkpoint's or GloVe's sizes win over the config's)."""
    sizes = model_settings(config)
    encoder_weights, pretrained, causal = None, [], False
    if config.init_from is not None:
        tokenizer, sizes, encoder_weights, causal = _start_from_checkpoint(config, sizes)
        pretrained = ["encoder."]
        if causal and config.pooling == "cls":
            raise ValueError(f"finetune: init_from={config.init_from} is a causal language "
                             "model, whose first token sees only itself: set pooling=mean or "
                             "pooling=last")
    sizes["dropout"], sizes["recompute"] = config.dropout, config.recompute
    glove = None
    if config.glove is not None:
        glove, coverage = glove_embedding_matrix(tokenizer, config.glove, seed=config.seed)
        sizes["d_model"] = glove.shape[1]
        if sizes["d_model"] % sizes["n_heads"]:
            raise ValueError(f"finetune: the GloVe vectors have {sizes['d_model']} dimensions, "
                             f"which n_heads={sizes['n_heads']} does not divide")
        pretrained = ["encoder.embed."]
        log(f"GloVe: {coverage}")
    encoder = build_model("text_encoder", tokenizer.vocab_size, sizes, pad_id=PAD_ID)
    if encoder_weights is not None:
        encoder.load_state_dict(encoder_weights)
    if glove is not None:
        # the encoder multiplies its table by embed_scale (√d under sinusoidal codes): store
        # the vectors divided by it, so that the first layer reads GloVe's own vectors
        table = glove.data / encoder.embed_scale
        encoder.embed.weight.data[...] = table.astype(encoder.embed.weight.dtype)
        encoder.embed.weight.data[PAD_ID] = 0
    model = nn.SequenceClassifier(encoder, 2, config.pooling, config.head_dropout, causal)
    _freeze(model, config)
    return model, tokenizer, pretrained, sizes


def _freeze(model, config):
    encoder = model.encoder
    if config.freeze_layers > len(encoder.encoder.layers):
        raise ValueError(f"finetune: freeze_layers={config.freeze_layers} but the encoder has "
                         f"{len(encoder.encoder.layers)} layers")
    frozen = [encoder.embed, encoder.positional] if config.freeze_embeddings else []
    frozen += list(encoder.encoder.layers)[:config.freeze_layers]
    for module in frozen:
        for parameter in module.parameters():
            parameter.requires_grad = False


EMBEDDINGS = ("encoder.embed.", "encoder.positional.")
SCHEDULES = ("cosine", "linear")


def check_schedule_settings(config):
    """Refuse fine-tuning schedule settings that mean nothing, before any data is read."""
    if config.schedule not in SCHEDULES:
        raise ValueError(f"finetune: schedule must be one of {SCHEDULES}, got "
                         f"{config.schedule!r}")
    if not 0.0 < config.layer_lr_decay <= 1.0:
        raise ValueError(f"finetune: layer_lr_decay must lie in (0, 1], got "
                         f"{config.layer_lr_decay}")
    for name in ("unfreeze_every", "freeze_embeddings_steps"):
        if getattr(config, name) < 0:
            raise ValueError(f"finetune: {name} must be >= 0, got {getattr(config, name)}")


def fine_tuning_groups(config, n_layers, pretrained):
    """(lr_scales, start_steps): name prefix -> learning-rate factor, and name prefix -> the
    step after which it trains, for ``build_optimizer`` (first matching prefix wins).

    Pretrained weights (``pretrained``: prefixes) run at ``pretrained_lr_scale``, times
    ``layer_lr_decay`` per layer below the top; gradual unfreezing starts layer k of n_layers
    at step ``unfreeze_every · (n_layers - k)`` and the embeddings one stage after the lowest
    layer. The new head (and the final LayerNorm) train from step 0 at the full rate."""
    layers = [f"encoder.encoder.layers.{k}." for k in range(n_layers)]
    lr_scales, start_steps = {}, {}
    for depth, prefix in enumerate(layers):  # depth 0 = the lowest layer
        if any(prefix.startswith(p) for p in pretrained):
            lr_scales[prefix] = config.pretrained_lr_scale * \
                config.layer_lr_decay ** (n_layers - 1 - depth)
        start_steps[prefix] = config.unfreeze_every * (n_layers - depth)
    for prefix in EMBEDDINGS:
        if any(prefix.startswith(p) for p in pretrained):
            lr_scales[prefix] = config.pretrained_lr_scale * config.layer_lr_decay ** n_layers
        start_steps[prefix] = max(config.unfreeze_every * (n_layers + 1),
                                  config.freeze_embeddings_steps)
    for prefix in pretrained:  # what no layer prefix covers (the final norm)
        lr_scales.setdefault(prefix, config.pretrained_lr_scale)
    return lr_scales, start_steps


def finetune(config, tokenizer=None, log=print, reviews=None):
    """Train and test a classifier; returns a dict of results (accuracies, confusion matrix,
    time, paths). ``tokenizer`` (optional) is used for runs that do not start from a
    checkpoint; otherwise one is fitted on the training text. Under ``mpiexec -n N`` each rank
    collates every N-th row of each batch (``distributed``); rank 0 alone logs."""
    log = main_only(log)
    check_run_settings(config, "finetune")
    check_schedule_settings(config)
    out = prepare_run(config, "finetune")
    select_device(config.device)
    clock = Stopwatch()
    train, valid, test, texts = load_classification_data(config, reviews)
    if tokenizer is None and config.init_from is None and config.tokenizer_from is not None:
        tokenizer = tokenizer_from_state(checkpoint.load(config.tokenizer_from)["tokenizer"],
                                         config.tokenizer_from)
    elif tokenizer is None and config.init_from is None:
        tokenizer = build_tokenizer(config.tokenizer, texts, config.vocab_size, config.min_freq)
    backend.manual_seed(config.seed)
    model, tokenizer, pretrained, sizes = build_classifier(config, tokenizer, log)
    config = replace(config, **sizes)  # what was built is what a checkpoint must describe
    if config.seq_len > model.encoder.positional.max_len:
        raise ValueError(f"finetune: seq_len={config.seq_len} exceeds the model's max_len="
                         f"{model.encoder.positional.max_len}")
    # seq_len counts the <cls> token that collate_classification puts first (none for a causal
    # encoder, whose pooling reads the mean or the last token)
    cls_id = None if model.causal else CLS_ID
    text_len = config.seq_len - (cls_id is not None)
    train_ids, valid_ids, test_ids = (_encode(tokenizer, data, text_len)
                                      for data in (train, valid, test))
    lr_scales, start_steps = fine_tuning_groups(config, len(model.encoder.encoder.layers),
                                                pretrained)
    optimizer = build_optimizer(model.named_parameters(), config, lr_scales, start_steps)
    start = "pretrained" if config.init_from else "glove" if config.glove else "scratch"
    log(f"finetune ({start}): {len(train_ids)} training, {len(valid_ids)} validation, "
        f"{len(test_ids)} test examples; {model.num_parameters(trainable_only=True):,} "
        "trainable parameters")

    def batches(epoch):
        collate = shard_collate(lambda ex: collate_classification(ex, max_len=config.seq_len,
                                                                  cls_id=cls_id))
        loader = DataLoader(train_ids, config.batch_size, collate, shuffle=True, seed=config.seed,
                            sort_key=lambda ex: len(ex[0]))
        loader.set_epoch(epoch)
        return loader

    def loss_fn(model, batch):
        return F.cross_entropy(model(batch.ids, batch.mask), batch.labels, reuse_logits=True), \
            int(batch.mask.data.sum())

    def evaluate(model):
        predictions = predict(model, valid_ids, seq_len=config.seq_len)
        return {"accuracy": accuracy(predictions, [label for _, label in valid_ids])}

    trainer = Trainer(model, optimizer, loss_fn, batches,
                      train_config(config, "accuracy", "max"), schedule=schedule_for(config),
                      evaluate=evaluate,
                      extra_state={"task": "finetune", "config": asdict(config),
                                   "tokenizer": tokenizer_state(tokenizer)})
    history = trainer.fit(resume=config.resume)
    if (out / "best.npz").exists():
        checkpoint.load(out / "best.npz", model)  # test the model validation liked best
    predictions = predict(model, test_ids, seq_len=config.seq_len)
    labels = [label for _, label in test_ids]
    results = {
        "start": start, "model": model, "tokenizer": tokenizer, "history": history,
        "valid_accuracy": trainer.best if trainer.best is not None else evaluate(model)["accuracy"],
        "test_accuracy": accuracy(predictions, labels),
        "confusion": confusion_matrix(predictions, labels, 2),
        "seconds": clock.elapsed(), "out_dir": out,
    }
    log(f"finetune ({start}): test accuracy {results['test_accuracy']:.1%} (validation "
        f"{results['valid_accuracy']:.1%}), {results['seconds']:.0f} s; confusion "
        f"[[TN, FP], [FN, TP]] = {results['confusion']} (rows: true negative, positive; "
        "columns: predicted)")
    return results
