"""Fine-tuning a text classifier (e.g. IMDB sentiment), from one of three starts:

- a pretrained encoder (``init_from``: a masked-LM checkpoint of ``pretrain``);
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
    PAD_ID,
    DataLoader,
    collate_classification,
    glove_embedding_matrix,
    load_imdb,
    text_world,
)
from minitransformer.distributed import main_only, shard_collate
from minitransformer.metrics import accuracy, confusion_matrix
from minitransformer.tasks.common import (
    ModelSettings,
    Stopwatch,
    TrainingSettings,
    build_optimizer,
    build_tokenizer,
    model_settings,
    run_dir,
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
    init_from: a masked-LM checkpoint; its model sizes and tokenizer are used.
    tokenizer_from: a checkpoint whose tokenizer to use (weights not loaded), so runs from
    scratch or GloVe see the same tokens as a pretrained run.
    glove: GloVe vectors (.txt/.txt.gz); d_model becomes their dimension.
    pretrained_lr_scale: learning-rate factor for pretrained (or GloVe) weights.
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
    head_dropout: float = 0.1
    seq_len: int = 128
    valid_fraction: float = 0.1
    n_train: int | None = None
    n_test: int | None = None
    out_dir: str = "runs/finetune"


def load_classification_data(config):
    """(train, valid, test) lists of (text, label), and the unlabelled texts a tokenizer may
    learn from."""
    if config.data == "builtin":
        world = text_world(seed=config.seed)
        return world.train, world.valid, world.test, world.corpus + [t for t, _ in world.train]
    train = list(zip(*load_imdb(config.data, "train")))
    test = list(zip(*load_imdb(config.data, "test")))
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
    """Predicted classes for encoded (ids, label) examples, in order."""
    predictions = []
    training = model.training
    model.eval()
    with no_grad():
        for start in range(0, len(examples), batch_size):
            batch = collate_classification(examples[start:start + batch_size], max_len=seq_len)
            logits = model(batch.ids, batch.mask)
            xp = backend.array_module(logits.data)
            predictions += xp.argmax(logits.data, axis=-1).tolist()
    model.train(training)
    return predictions


def _start_from_checkpoint(config, classifier_sizes):
    state = checkpoint.load(config.init_from)
    if state.get("task") != "pretrain" or state["config"]["objective"] != "mlm":
        raise ValueError(f"finetune: init_from={config.init_from} is not a masked-LM pretraining "
                         "checkpoint (made by: minitransformer pretrain --set objective=mlm)")
    saved = state["config"]
    sizes = {key: saved[key] for key in classifier_sizes}
    encoder_weights = {k[len("encoder."):]: v for k, v in state["model"].items()
                       if k.startswith("encoder.")}
    return tokenizer_from_state(state["tokenizer"], config.init_from), sizes, encoder_weights


def build_classifier(config, tokenizer=None, log=print):
    """The SequenceClassifier, its tokenizer, which parameter prefixes are pretrained, and the
    model settings used (a checkpoint's or GloVe's sizes win over the config's)."""
    sizes = model_settings(config)
    encoder_weights, pretrained = None, []
    if config.init_from is not None:
        tokenizer, sizes, encoder_weights = _start_from_checkpoint(config, sizes)
        pretrained = ["encoder."]
    sizes["dropout"] = config.dropout
    glove = None
    if config.glove is not None:
        glove, coverage = glove_embedding_matrix(tokenizer, config.glove, seed=config.seed)
        sizes["d_model"] = glove.shape[1]
        if sizes["d_model"] % sizes["n_heads"]:
            raise ValueError(f"finetune: the GloVe vectors have {sizes['d_model']} dimensions, "
                             f"which n_heads={sizes['n_heads']} does not divide")
        pretrained = ["encoder.embed."]
        log(f"GloVe: {coverage}")
    encoder = nn.TextEncoder(tokenizer.vocab_size, pad_id=PAD_ID, **sizes)
    if encoder_weights is not None:
        encoder.load_state_dict(encoder_weights)
    if glove is not None:
        encoder.embed.weight.data[...] = glove.data.astype(encoder.embed.weight.dtype)
        encoder.embed.weight.data[PAD_ID] = 0
    model = nn.SequenceClassifier(encoder, 2, config.pooling, config.head_dropout)
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


def finetune(config, tokenizer=None, log=print):
    """Train and test a classifier; returns a dict of results (accuracies, confusion matrix,
    time, paths). ``tokenizer`` (optional) is used for runs that do not start from a
    checkpoint; otherwise one is fitted on the training text. Under ``mpiexec -n N`` each rank
    collates every N-th row of each batch (``distributed``); rank 0 alone logs."""
    log = main_only(log)
    select_device(config.device)
    clock = Stopwatch()
    train, valid, test, texts = load_classification_data(config)
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
    # seq_len counts the <cls> token that collate_classification puts first
    train_ids, valid_ids, test_ids = (_encode(tokenizer, data, config.seq_len - 1)
                                      for data in (train, valid, test))
    lr_scales = {prefix: config.pretrained_lr_scale for prefix in pretrained}
    optimizer = build_optimizer(model.named_parameters(), config, lr_scales)
    start = "pretrained" if config.init_from else "glove" if config.glove else "scratch"
    log(f"finetune ({start}): {len(train_ids)} training, {len(valid_ids)} validation, "
        f"{len(test_ids)} test examples; {model.num_parameters(trainable_only=True):,} "
        "trainable parameters")

    def batches(epoch):
        collate = shard_collate(lambda ex: collate_classification(ex, max_len=config.seq_len))
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

    out = run_dir(config)
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
        f"[[TN, FP], [FN, TP]] = {results['confusion']}")
    return results
