"""What every task shares: settings for the training run (the model's are nn.ModelSettings),
the device switch, tokenizers in checkpoints, optimizers with sensible groups, and evaluation
helpers."""

import math
import time
from dataclasses import dataclass, fields
from pathlib import Path

from minitransformer import backend
from minitransformer.autograd import no_grad
from minitransformer.data import BPETokenizer, CharTokenizer, WordTokenizer
from minitransformer.data.tokenizer import Tokenizer
from minitransformer.nn.settings import ModelSettings
from minitransformer.optim import AdamW, warmup_cosine, warmup_linear
from minitransformer.precision import PRECISIONS
from minitransformer.train import TrainConfig

__all__ = [
    "TrainingSettings",
    "build_optimizer",
    "build_tokenizer",
    "check_run_settings",
    "mean_loss",
    "model_settings",
    "prepare_run",
    "require",
    "read_pretrained",
    "select_device",
    "tokenizer_from_state",
    "tokenizer_state",
    "unknown_tokens",
]


@dataclass
class TrainingSettings:
    """How long and how to train, and where the results go.

    checkpoint_every: write out_dir/last.npz every this many steps (0: only at the end and on
    Ctrl-C/SIGTERM). keep_every: also keep out_dir/step_N.npz every this many steps (0: none),
    to fine-tune from the checkpoints along the way. resume: continue the run in out_dir from
    its last.npz. overwrite: start a new run in an out_dir that holds one (its last.npz,
    best.npz, step_N.npz and metrics.jsonl are replaced); without it such a folder is refused.

    precision: "float32" (the default) or "float16": forward and backward in float16 on copies
    of float32 master weights, with dynamic loss scaling (the loss, softmax and layer-norm
    statistics stay float32; checkpoints hold the float32 weights). For a GPU (device="gpu"):
    on the CPU a float16 step is 70-170 times slower than a float32 one, since NumPy has no
    float16 BLAS (docs/performance.md)."""

    steps: int = 500
    batch_size: int = 32
    lr: float = 1e-3
    warmup: int = 50
    weight_decay: float = 0.01
    grad_clip: float | None = 1.0
    eval_every: int = 100
    log_every: int = 10
    checkpoint_every: int = 100
    keep_every: int = 0
    patience: int | None = None
    seed: int = 0
    device: str = "cpu"
    out_dir: str = "runs/run"
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    precision: str = "float32"


def model_settings(config):
    """The ModelSettings fields of a task config, as keyword arguments."""
    return {f.name: getattr(config, f.name) for f in fields(ModelSettings)}


def select_device(device):
    """"cpu" runs on NumPy, "gpu" on CuPy (a clear error when CuPy or a GPU is missing)."""
    names = {"cpu": "numpy", "gpu": "cupy", "numpy": "numpy", "cupy": "cupy"}
    if device not in names:
        raise ValueError(f"--device: expected cpu or gpu, got {device!r}")
    backend.set_backend(names[device])


TOKENIZERS = {"char": CharTokenizer, "word": WordTokenizer, "bpe": BPETokenizer}


def build_tokenizer(kind, texts, vocab_size=None, min_freq=1):
    """Fit a tokenizer of ``kind`` ("char", "word" or "bpe") on ``texts``."""
    if kind not in TOKENIZERS:
        raise ValueError(f"tokenizer: expected one of {sorted(TOKENIZERS)}, got {kind!r}")
    if kind == "char":
        return CharTokenizer.train(texts)
    if kind == "word":
        return WordTokenizer.train(texts, min_freq=min_freq, max_size=vocab_size)
    return BPETokenizer.train(texts, vocab_size or 1000)


def tokenizer_state(tokenizer):
    """The tokenizer as a JSON-able dict, to store inside a checkpoint."""
    return tokenizer.to_dict()


def tokenizer_from_state(state, source="checkpoint"):
    """The tokenizer a checkpoint stored with ``tokenizer_state``."""
    return Tokenizer.from_dict(state, source=source)


def unknown_tokens(tokenizer, text):
    """The distinct pieces of ``text`` (words for a word tokenizer, else characters) that the
    tokenizer reads as <unk>: what a prompt or sentence holds that the vocabulary lacks."""
    from minitransformer.data import UNK_ID

    tokenize = getattr(tokenizer, "tokenize", None)
    pieces = tokenize(text) if tokenize is not None else [c for c in text if not c.isspace()]
    return [piece for piece in dict.fromkeys(pieces) if UNK_ID in tokenizer.encode(piece)]


def read_pretrained(path, function, objectives=None):
    """(state, tokenizer, model sizes) of a ``pretrain`` checkpoint, for the task ``function``
    ("pretrain", "finetune") that starts from it; ``objectives``: the ones it accepts (None:
    any). Anything else is refused with one line that says what was expected."""
    from minitransformer import checkpoint

    state = checkpoint.load(path)
    objective = state.get("config", {}).get("objective")
    if state.get("task") != "pretrain" or (objectives and objective not in objectives):
        made_by = "minitransformer pretrain" + \
            (f" --set objective={'|'.join(objectives)}" if objectives else "")
        kinds = f"an {', '.join(objectives)} " if objectives else "a "
        raise ValueError(f"{function}: init_from={path} is not {kinds}pretraining checkpoint "
                         f"(made by: {made_by})")
    sizes = {f.name: state["config"].get(f.name, f.default) for f in fields(ModelSettings)}
    return state, tokenizer_from_state(state["tokenizer"], path), sizes


def build_optimizer(named_parameters, settings, lr_scales=None, start_steps=None):
    """AdamW over the trainable parameters: biases and LayerNorm weights (1-D) without weight
    decay; ``lr_scales`` maps a name prefix to a learning-rate factor (discriminative
    fine-tuning: pretrained layers slower than the new head); ``start_steps`` maps a name prefix
    to the step after which it starts to train (gradual unfreezing). The first prefix that
    matches a name wins."""
    lr_scales, start_steps = lr_scales or {}, start_steps or {}
    groups = {}
    for name, parameter in named_parameters:
        if not parameter.requires_grad:
            continue
        scale = next((s for prefix, s in lr_scales.items() if name.startswith(prefix)), 1.0)
        start = next((s for prefix, s in start_steps.items() if name.startswith(prefix)), 0)
        decay = settings.weight_decay if parameter.ndim >= 2 else 0.0
        groups.setdefault((scale, decay, start), []).append(parameter)
    if not groups:
        raise ValueError("build_optimizer: every parameter is frozen; nothing to train")
    return AdamW([{"params": params, "lr_scale": scale, "weight_decay": decay,
                   "start_step": start}
                  for (scale, decay, start), params in groups.items()], lr=settings.lr)


def schedule_for(settings):
    """Linear warm-up, then decay: cosine to a tenth of the peak at the last step (the
    default), or linear to 0 when ``settings.schedule == "linear"`` (BERT's fine-tuning)."""
    warmup = min(settings.warmup, settings.steps - 1)
    if getattr(settings, "schedule", "cosine") == "linear":
        return warmup_linear(settings.lr, warmup, settings.steps)
    return warmup_cosine(settings.lr, warmup, settings.steps, min_lr=settings.lr / 10)


def mean_loss(model, batches, loss_fn):
    """The average of ``loss_fn(model, batch)`` over ``batches``, weighted by its token counts
    (eval mode, no graph)."""
    total, count = 0.0, 0
    training = model.training
    model.eval()
    with no_grad():
        for batch in batches:
            result = loss_fn(model, batch)
            loss, n = result if isinstance(result, tuple) else (result, 1)
            total += loss.item() * max(n, 1)
            count += max(n, 1)
    model.train(training)
    return total / max(count, 1)


def perplexity_of(loss):
    return math.exp(min(loss, 700.0))


class Stopwatch:
    """Seconds since creation: ``elapsed()``."""

    def __init__(self):
        self.start = time.perf_counter()

    def elapsed(self):
        return time.perf_counter() - self.start


def train_config(settings, metric="loss", mode="min"):
    """The Trainer's settings from a task's TrainingSettings."""
    return TrainConfig(steps=settings.steps, eval_every=settings.eval_every,
                       log_every=settings.log_every, checkpoint_every=settings.checkpoint_every,
                       keep_every=settings.keep_every, grad_clip=settings.grad_clip,
                       patience=settings.patience, metric=metric, mode=mode,
                       seed=settings.seed, out_dir=settings.out_dir, progress=settings.progress,
                       precision=settings.precision)


RUN_FILES = ("last.npz", "best.npz", "metrics.jsonl")


def require(ok, command, text):
    """Refuse a setting: ValueError "<command>: <text>" unless ``ok``."""
    if not ok:
        raise ValueError(f"{command}: {text}")


def check_run_settings(settings, command):
    """Refuse model and training settings that cannot work, before any data is read; each
    message names the setting as the user writes it (``--set KEY=VALUE``)."""
    d, heads = settings.d_model, settings.n_heads
    for name in ("d_model", "n_heads", "n_layers", "d_ff", "max_len", "steps", "batch_size"):
        value = getattr(settings, name)
        require(value >= 1, command, f"{name} must be >= 1, got {name}={value}")
    require(d % heads == 0, command, f"n_heads={heads} must divide d_model={d} (each head gets "
                                   "d_model / n_heads dimensions)")
    require(0.0 <= settings.dropout < 1.0, command,
          f"dropout must lie in [0, 1), got dropout={settings.dropout}")
    require(settings.positional in ("learned", "sinusoidal"), command,
          f"positional must be 'learned' or 'sinusoidal', got positional={settings.positional!r}")
    require(settings.activation in ("gelu", "relu"), command,
          f"activation must be 'gelu' or 'relu', got activation={settings.activation!r}")
    require(math.isfinite(settings.lr) and settings.lr > 0, command,
          f"lr must be a positive number, got lr={settings.lr}")
    require(settings.weight_decay >= 0, command,
          f"weight_decay must be >= 0, got weight_decay={settings.weight_decay}")
    for name in ("warmup", "eval_every", "log_every", "checkpoint_every", "keep_every"):
        value = getattr(settings, name)
        require(value >= 0, command, f"{name} must be >= 0, got {name}={value}")
    require(settings.grad_clip is None or settings.grad_clip > 0, command,
          f"grad_clip must be > 0 (or none), got grad_clip={settings.grad_clip}")
    require(settings.patience is None or settings.patience >= 1, command,
          f"patience must be >= 1 (or none), got patience={settings.patience}")
    require(settings.device in ("cpu", "gpu"), command,
          f"device must be 'cpu' or 'gpu', got device={settings.device!r}")
    require(settings.precision in PRECISIONS, command,
          f"precision must be 'float32' or 'float16', got precision={settings.precision!r}")
    require(not (settings.resume and settings.overwrite), command,
          "resume and overwrite exclude each other: --resume continues the run in the folder, "
          "--overwrite replaces it")


def prepare_run(settings, command):
    """The run folder ``settings.out_dir``, checked before any data is read (nothing is created
    here: the Trainer makes the folder when training starts, so a failed start leaves none).

    --resume needs DIR/last.npz; a new run into a folder that holds a run (last.npz, best.npz
    or metrics.jsonl) needs --overwrite."""
    out = Path(settings.out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{command}: --out {out} is a file, not a folder")
    if settings.resume:
        if not (out / "last.npz").exists():
            raise ValueError(f"{command}: --resume: {out} holds no last.npz to continue from; "
                             "leave out --resume to start a new run there")
    elif not settings.overwrite:
        found = [name for name in RUN_FILES if (out / name).exists()]
        if found:
            raise ValueError(f"{command}: {out} already holds a run ({', '.join(found)}); "
                             "continue it with --resume, or replace it with --overwrite")
    return out
