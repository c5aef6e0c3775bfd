"""Scoring a checkpoint on its task's held-out data (``minitransformer evaluate``)."""

import dataclasses

from minitransformer import checkpoint
from minitransformer.data import DataLoader, load_multi30k
from minitransformer.metrics import accuracy, confusion_matrix
from minitransformer.tasks.common import (
    mean_loss,
    perplexity_of,
    select_device,
    tokenizer_from_state,
)
from minitransformer.tasks.config import parse_value

__all__ = ["evaluate_checkpoint"]


def _config(config_class, stored, overrides):
    config = config_class(**stored)
    for override in overrides:
        key, _, text = override.partition("=")
        setattr(config, key.strip(), parse_value(config_class, key.strip(), text.strip()))
    return config


def evaluate_checkpoint(path, overrides=(), device="cpu"):
    """A dict of metrics for a checkpoint of pretrain, finetune or train-seq2seq."""
    select_device(device)
    state = checkpoint.load(path)
    task = state.get("task")
    if task == "pretrain":
        return _evaluate_pretraining(path, state, overrides)
    if task == "finetune":
        return _evaluate_classifier(path, state, overrides)
    if task == "seq2seq":
        return _evaluate_seq2seq(path, state, overrides)
    raise ValueError(f"evaluate: {path} was not written by pretrain, finetune or train-seq2seq")


NOTES = {
    "perplexity": "perplexity = e^(validation loss): the model is as unsure of each held-out "
                  "token as a uniform choice among that many tokens would be",
    "confusion [[TN, FP], [FN, TP]]": "confusion matrix: row = the true class (negative, "
                                      "positive), column = the predicted one; TN and TP are "
                                      "right, FP and FN are the two kinds of mistake",
}


def _evaluate_pretraining(path, state, overrides):
    from minitransformer.tasks import pretrain as task

    config = _config(task.PretrainConfig, state["config"], overrides)
    tokenizer = tokenizer_from_state(state["tokenizer"], str(path))
    model = task.build_pretraining_model(config.objective, state["model_vocab_size"], config)
    checkpoint.load(path, model)
    examples = task.make_examples(config, tokenizer, task.load_texts(config))
    valid = examples[-max(1, int(len(examples) * config.valid_fraction)):]
    batches = DataLoader(valid, config.batch_size,
                         task._collator(config, tokenizer.vocab_size, 12345))
    loss = mean_loss(model, list(batches), task.loss_function(config.objective))
    return {"task": f"pretrain ({config.objective})", "examples": len(valid),
            "validation loss": loss, "perplexity": perplexity_of(loss)}


def _evaluate_classifier(path, state, overrides):
    from minitransformer.tasks import finetune as task

    config = _config(task.FinetuneConfig, state["config"], overrides)
    tokenizer = tokenizer_from_state(state["tokenizer"], str(path))
    stored = dataclasses.replace(config, init_from=None, glove=None)
    model, *_ = task.build_classifier(stored, tokenizer, log=lambda *_: None)
    checkpoint.load(path, model)
    _, _, test, _ = task.load_classification_data(config)
    encoded = [(tokenizer.encode(text)[:config.seq_len - 1], label) for text, label in test]
    predictions = task.predict(model, encoded, seq_len=config.seq_len)
    labels = [label for _, label in encoded]
    return {"task": "finetune", "examples": len(encoded),
            "test accuracy": accuracy(predictions, labels),
            "confusion [[TN, FP], [FN, TP]]": confusion_matrix(predictions, labels, 2)}


def _evaluate_seq2seq(path, state, overrides):
    from minitransformer.tasks import seq2seq as task

    model, tokenizer, config = task.load_translator(path)
    config = _config(task.Seq2SeqConfig, dataclasses.asdict(config), overrides)
    if tokenizer is None:  # copy/reverse: the test pairs are regenerated from the seed
        _, _, test, _ = task.load_pairs(config)
    else:  # text: encoded with the stored vocabulary, scored against the raw references
        pairs = load_multi30k(config.data, "test", config.source, config.target)
        test = [(tokenizer.encode(source)[:config.max_len], None, reference)
                for source, reference in pairs]
    result = task.score(model, test, config, tokenizer)
    return {"task": f"seq2seq ({config.data})", "examples": len(test), **result}
