"""The training loop every task uses: steps, evaluation, checkpoints, early stopping, logging.

    trainer = Trainer(model, optimizer, loss_fn, batches, TrainConfig(steps=1000, ...),
                      schedule=warmup_cosine(3e-4, 100, 1000), evaluate=evaluate)
    history = trainer.fit()

- ``batches(epoch)`` returns the batches of one epoch (deterministic for a given epoch, e.g.
  shuffled with seed + epoch); the loop moves to the next epoch when one runs out.
- ``loss_fn(model, batch)`` returns the loss Tensor, or ``(loss, n_tokens)`` for tokens/s.
- ``evaluate(model)`` returns a dict of metrics; it runs in ``eval()`` mode under ``no_grad``.

One step: set the learning rate from the schedule; for each of ``accumulate`` micro-batches,
backpropagate loss / accumulate (the gradients add up to those of the mean); clip; update.

Mixed precision (``precision="float16"``, see minitransformer/precision.py): the forward and
backward of each step run on float16 copies of the float32 weights, on S · loss (the loss
scale S); the gradients are then divided by S into float32 and checked. A step whose gradients
hold inf or NaN is skipped (no update) and S halved; S doubles after ``growth_interval`` clean
steps. Clipping, the update, evaluation and checkpoints all see the float32 weights; a
checkpoint also keeps the scaler's state, so ``--resume`` continues with the same S. Each log
row then has ``loss_scale`` (the S of that step) and ``skipped_steps`` (so far). Gradients that
are not finite even at S <= 1 (they overflow float16 unscaled, or are NaN) stop the run as a
non-finite loss does. On the CPU float16 is slow (NumPy has no float16 BLAS); it pays on a GPU.

Exact resume: a checkpoint holds the parameters, the optimizer state, the generator state, the
step, the epoch and the position inside it. ``fit(resume=True)`` continues from ``last.npz`` and
reproduces the losses of an uninterrupted run bit for bit (same backend); without a ``last.npz``
it refuses. A new run (``fit()``) starts an empty record: it removes the folder's old
``last.npz`` and ``best.npz`` and truncates ``metrics.jsonl`` (the commands refuse a folder that
holds a run unless told ``--overwrite``; see tasks/common.py).

Runs that are never lost:

- Ctrl-C (SIGINT) or SIGTERM during ``fit`` finishes the current step, writes ``last.npz`` and
  raises ``TrainingInterrupted`` (a KeyboardInterrupt) saying where; a second signal stops at
  once, without saving. The commands exit 130 (SIGINT) or 143 (SIGTERM).
- Every write is atomic (checkpoint.save), so a process killed at any moment (``kill -9``)
  leaves the previous checkpoint or the new one, never a broken one.
- A loss or gradient norm that is not finite stops the run before the update, with
  ``NonFiniteLossError``: ``last.npz`` is written with the state before that step (the last
  good one), ``best.npz`` is left as it was.

Data parallel: launched by ``mpiexec -n N``, every rank runs this same loop on its share of each
batch (the task's collate_fn shards it: ``distributed.shard_collate``); after the backward of a
step the gradients, the loss and the token count are averaged across the ranks before clipping,
so all ranks make the same update. Rank 0 alone writes the metrics, checkpoints and progress
bar; it evaluates and tells the others the metrics, so all stop early together. A single process
never touches MPI. See minitransformer/distributed.py and docs/distributed.md.
"""

import json
import math
import os
import signal
import sys
import threading
import time
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

try:  # a notebook's widget bar where ipywidgets can draw it; the text bar everywhere else
    import ipywidgets  # noqa: F401
    from tqdm.auto import tqdm
except ImportError:  # (tqdm.auto would warn "IProgress not found" in a notebook without it)
    from tqdm.std import tqdm

from minitransformer import backend, checkpoint, distributed
from minitransformer.autograd import no_grad
from minitransformer.optim.optimizers import clip_grad_norm
from minitransformer.precision import Float16Weights, LossScaler, check_precision

__all__ = ["NonFiniteLossError", "TrainConfig", "Trainer", "TrainingInterrupted",
           "progress_disabled", "read_history"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """``fit`` stopped by SIGINT (Ctrl-C) or SIGTERM at the end of a step.

    signum: the signal; step: the last finished step; checkpoint: the ``last.npz`` written then
    (None when the run keeps no files); exit_code: 128 + signum, what a shell expects."""

    def __init__(self, signum, step, checkpoint_path):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint_path
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        where = (f"saved {checkpoint_path}; continue with --resume" if checkpoint_path
                 else "nothing saved (no out_dir)")
        super().__init__(f"interrupted by {self.signal_name} after step {step}: {where}")


class NonFiniteLossError(FloatingPointError):
    """The loss (or the gradient norm) became inf or NaN; raised before the bad update."""


@dataclass
class TrainConfig:
    """Settings of a training run (saved as JSON in every checkpoint).

    steps: optimizer updates in all.  accumulate: micro-batches per update.
    eval_every / log_every / checkpoint_every: in steps (0 = never; a last checkpoint is always
    written at the end when ``out_dir`` is set).  keep_every: also keep ``out_dir/step_N.npz``
    every this many steps (0 = never): the run's checkpoints along the way, e.g. to fine-tune
    from 2 M, 4 M and 8 M tokens of pretraining.  grad_clip: max global gradient norm or None.
    patience: evaluations without improvement of ``metric`` before stopping (None = never stop
    early); ``mode`` "min" (loss) or "max" (accuracy).  seed: seeds the shared generator.
    out_dir: where ``last.npz``, ``best.npz`` and ``metrics.jsonl`` go (None = keep nothing).
    precision: "float32", or "float16": forward and backward in float16 with float32 master
    weights and dynamic loss scaling, whose scale doubles after ``growth_interval`` steps
    without inf/NaN gradients (see the module docstring; slow on the CPU, for GPUs).
    """

    steps: int
    accumulate: int = 1
    eval_every: int = 0
    log_every: int = 10
    checkpoint_every: int = 0
    keep_every: int = 0
    grad_clip: float | None = None
    patience: int | None = None
    metric: str = "loss"
    mode: str = "min"
    seed: int = 0
    out_dir: str | None = None
    progress: bool = True
    precision: str = "float32"
    growth_interval: int = 2000

    def __post_init__(self):
        if self.steps < 1 or self.accumulate < 1:
            raise ValueError(f"TrainConfig: steps and accumulate must be >= 1, got steps="
                             f"{self.steps}, accumulate={self.accumulate}")
        if self.keep_every < 0:
            raise ValueError(f"TrainConfig: keep_every must be >= 0 (steps; 0 = keep none), "
                             f"got keep_every={self.keep_every}")
        check_precision("TrainConfig", self.precision)
        if self.growth_interval < 1:
            raise ValueError(f"TrainConfig: growth_interval must be >= 1 (steps), got "
                             f"growth_interval={self.growth_interval}")
        if self.mode not in ("min", "max"):
            raise ValueError(f"TrainConfig: mode must be 'min' or 'max', got {self.mode!r}")
        if self.out_dir is not None:
            self.out_dir = os.fspath(self.out_dir)  # a Path is welcome; checkpoints store text


def progress_disabled():
    """Progress bars stay silent when stderr is not a terminal or TQDM_DISABLE=1."""
    return os.environ.get("TQDM_DISABLE") == "1" or not sys.stderr.isatty()


def read_history(path):
    """The rows of a metrics.jsonl file, as dicts. A last line cut short (a process killed while
    writing it) is left out; a broken line before the last one is an error naming it."""
    with open(path, encoding="utf-8", errors="replace") as file:
        lines = [line for line in file if line.strip()]
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines) and not line.endswith("\n"):
                break
            raise ValueError(f"read_history: line {number} of {path} is not a JSON row") from None
    return rows


class Trainer:
    """Runs ``config.steps`` optimizer updates of ``model``; see the module docstring."""

    def __init__(self, model, optimizer, loss_fn, batches, config, schedule=None, evaluate=None,
                 extra_state=None):
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.batches, self.config = batches, config
        self.schedule, self.evaluate = schedule, evaluate
        self.extra_state = dict(extra_state or {})  # saved with every checkpoint (configs, vocab)
        self.out_dir = Path(config.out_dir) if config.out_dir else None
        self.step, self.epoch, self.position = 0, 0, 0
        self.best, self.bad_evals, self.history = None, 0, []
        self._iterator = None
        self.world = distributed.init()  # rank and size: a world of one without mpiexec
        self.float16_weights = self.scaler = None  # float32: the step never touches either
        if config.precision == "float16":
            self.float16_weights = Float16Weights(model)
            self.scaler = LossScaler(growth_interval=config.growth_interval)

    # ----------------------------------------------------------------------- data

    def _next_batch(self):
        """The next batch, moving to the next epoch when this one runs out."""
        for _ in range(2):
            if self._iterator is None:
                self._iterator = iter(self.batches(self.epoch))
                for _ in range(self.position):  # resuming inside an epoch: skip what was used
                    next(self._iterator)
            try:
                batch = next(self._iterator)
                self.position += 1
                return batch
            except StopIteration:
                self._iterator, self.epoch, self.position = None, self.epoch + 1, 0
        raise ValueError(f"Trainer: batches({self.epoch - 1}) gave no batch")

    # ----------------------------------------------------------------------- one step

    def train_step(self):
        """One optimizer update over ``accumulate`` micro-batches; returns the log row."""
        config, start = self.config, time.perf_counter()
        lr = self.schedule(self.step + 1) if self.schedule is not None else None
        if lr is not None:
            self.optimizer.set_lr(lr, self.step + 1)
        self.model.train()
        scale = self.scaler.scale if self.scaler is not None else None
        total_loss, tokens = self._forward_backward()
        parameters = self.optimizer.parameters()
        if self.world.size > 1:  # data parallel: now every rank holds the whole batch's mean
            total_loss, tokens = self.world.average_gradients(parameters, total_loss, tokens)
        if not math.isfinite(total_loss):
            self._diverged("loss", total_loss, lr)
        skipped = self.scaler is not None and self._unscale(parameters, lr)
        logged = (config.log_every and (self.step + 1) % config.log_every == 0) or \
            self.step + 1 == config.steps
        grad_norm = None
        if not skipped:
            if config.grad_clip is not None:
                grad_norm = clip_grad_norm(parameters, config.grad_clip)
            else:  # measuring the norm is a pass over every gradient: only for a logged row
                grad_norm = clip_grad_norm(parameters, math.inf) if logged else None
            if grad_norm is not None and not math.isfinite(grad_norm):
                self._diverged("gradient norm", grad_norm, lr)
            self.optimizer.step()
        self.optimizer.zero_grad()
        self.step += 1
        seconds = time.perf_counter() - start
        row = {"step": self.step, "epoch": self.epoch, "loss": total_loss,
               "lr": lr if lr is not None else self.optimizer.param_groups[0]["lr"],
               "grad_norm": grad_norm,
               "tokens_per_s": tokens / seconds if tokens else None, "seconds": seconds}
        if self.scaler is not None:
            row.update(loss_scale=scale, skipped_steps=self.scaler.skipped_steps)
        return row

    def _forward_backward(self):
        """Forward and backward of ``accumulate`` micro-batches, backpropagating loss /
        accumulate (times the loss scale S in float16, on float16 copies of the weights);
        returns (the mean loss, the token count)."""
        config = self.config
        total_loss, tokens = 0.0, 0
        with self._float16() if self.float16_weights is not None else nullcontext():
            for _ in range(config.accumulate):
                result = self.loss_fn(self.model, self._next_batch())
                loss, count = result if isinstance(result, tuple) else (result, 0)
                scaled = loss if config.accumulate == 1 else loss * (1.0 / config.accumulate)
                if self.scaler is not None:
                    scaled = self.scaler.scale_loss(scaled)
                scaled.backward()
                total_loss += loss.item() / config.accumulate
                tokens += count
        return total_loss, tokens

    @contextmanager
    def _float16(self):
        """The float16 copies of the weights lent for the block, with NumPy's warnings about
        overflow silenced there: an overflow in float16 is expected, shows in the gradients
        and is answered by skipping the step (a non-finite loss still stops the run)."""
        with self.float16_weights.compute(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", r"(overflow|invalid value) encountered",
                                    RuntimeWarning)
            yield

    def _unscale(self, parameters, lr):
        """float16: every gradient of S · loss becomes gradient / S in float32 (what clipping and
        the update see); returns whether one holds inf or NaN: the step is then skipped and S
        halved. Not finite even at S <= 1 means the gradients themselves overflow float16 or
        are NaN, which no scale mends: the run stops as on a non-finite loss."""
        with_grad = [p for p in parameters if p.grad is not None]
        grads, found_inf = self.scaler.unscale_and_check([p.grad for p in with_grad])
        for p, grad in zip(with_grad, grads):
            p.grad = grad
        if found_inf and self.scaler.scale <= 1.0:
            self._diverged(f"float16 gradient at loss scale {self.scaler.scale:g}",
                           "inf or NaN", lr)
        self.scaler.update(found_inf)
        return found_inf

    def _diverged(self, what, value, lr):
        """Stop before the update that a non-finite loss or gradient would make: keep the
        state before this step in last.npz (when every parameter is finite) and say so."""
        self.optimizer.zero_grad()
        kept = "nothing saved (no out_dir)"
        if self.out_dir is not None:
            last = self.out_dir / "last.npz"
            xp = backend.array_module(self.optimizer.parameters()[0].data)
            if all(bool(xp.isfinite(p.data).all()) for p in self.optimizer.parameters()):
                self.save(last)
                kept = f"{last} keeps step {self.step}, the last good state"
            elif last.exists():
                kept = f"{last} keeps step {checkpoint.load(last)['step']}"
        lr = lr if lr is not None else self.optimizer.param_groups[0]["lr"]
        raise NonFiniteLossError(f"Trainer: the {what} became {value} at step {self.step + 1} "
                                 f"(lr {lr:.3g}); {kept}; try a lower lr, or grad_clip")

    # ----------------------------------------------------------------------- evaluation

    def run_evaluation(self):
        """``evaluate(model)`` in eval mode without a graph; tracks the best and patience.

        Data parallel: rank 0 evaluates and sends its metrics, so every rank decides alike."""
        self.model.eval()
        with no_grad():
            metrics = dict(self.evaluate(self.model)) if self.world.is_main else None
        self.model.train()
        metrics = self.world.broadcast_object(metrics)
        if self.config.metric not in metrics:
            raise KeyError(f"Trainer: evaluate() returned {sorted(metrics)}, not the metric "
                           f"{self.config.metric!r} that decides the best checkpoint")
        value = metrics[self.config.metric]
        better = self.best is None or (value < self.best if self.config.mode == "min"
                                       else value > self.best)
        if better:
            self.best, self.bad_evals = value, 0
            if self.out_dir is not None:
                self.save(self.out_dir / "best.npz")
        else:
            self.bad_evals += 1
        return metrics

    # ----------------------------------------------------------------------- checkpoints

    def save(self, path):
        """A checkpoint of everything a resume needs. Data parallel: every rank calls it, rank 0
        writes it, with every rank's generator state."""
        per_rank = {}
        if self.world.size > 1:
            per_rank["rng_states"] = self.world.gather_object(backend.get_rng_state())
        if not self.world.is_main:
            return
        checkpoint.save(
            path, self.model, self.optimizer, step=self.step, epoch=self.epoch,
            position=self.position, best=self.best, bad_evals=self.bad_evals,
            rng_state=backend.get_rng_state(), train_config=asdict(self.config),
            schedule=self.schedule.to_config() if hasattr(self.schedule, "to_config") else None,
            **self._scaler_state(), **per_rank, **self.extra_state,
        )

    def _scaler_state(self):
        """float16: the loss scaler's state, for the checkpoint; float32: nothing."""
        return {"loss_scaler": self.scaler.state_dict()} if self.scaler is not None else {}

    def resume(self, path):
        """Load a checkpoint written by ``save`` and continue from its step."""
        state = checkpoint.load(path, self.model, self.optimizer)
        if state["step"] > self.config.steps:
            raise ValueError(f"Trainer: cannot resume: {path} is at step {state['step']}, past "
                             f"steps={self.config.steps}; resume with steps >= {state['step']}")
        self.step, self.epoch, self.position = state["step"], state["epoch"], state["position"]
        self.best, self.bad_evals = state["best"], state["bad_evals"]
        if self.scaler is not None and state.get("loss_scaler"):  # a float32 run has none
            self.scaler.load_state_dict(state["loss_scaler"])
        states = state.get("rng_states") or [state["rng_state"]]  # one per rank
        if len(states) == self.world.size:
            backend.set_rng_state(states[self.world.rank])
        else:  # another number of ranks than saved: a fresh stream for each
            backend.manual_seed(self.world.rank_seed(self.config.seed + self.step))
        self._iterator = None
        metrics = self.out_dir / "metrics.jsonl" if self.out_dir is not None else None
        if self.world.is_main and metrics is not None and metrics.exists():
            self.history = [r for r in read_history(metrics) if r["step"] <= self.step]
            self._write_rows(self.history, mode="w")
        self.history = self.world.broadcast_object(self.history)

    def _write_rows(self, rows, mode="a"):
        if self.out_dir is None or not self.world.is_main:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / "metrics.jsonl", mode, encoding="utf-8") as file:
            for row in rows:
                file.write(json.dumps(row) + "\n")

    # ----------------------------------------------------------------------- the loop

    def fit(self, resume=False):
        """Train until ``config.steps`` (or early stopping); returns the logged rows.

        resume: continue from ``out_dir/last.npz`` (which must exist); otherwise a new run,
        which replaces the folder's last.npz, best.npz and metrics.jsonl."""
        config = self.config
        last = self.out_dir / "last.npz" if self.out_dir is not None else None
        if resume:
            if last is None:
                raise ValueError("Trainer: resume=True needs out_dir, the folder of last.npz")
            if not self.world.broadcast_object(last.exists()):
                raise FileNotFoundError(f"Trainer: cannot resume: {self.out_dir} holds no "
                                        "last.npz")
            self.resume(last)  # on every rank
        else:
            backend.manual_seed(self.world.rank_seed(config.seed))  # config.seed on one process
            self._start_record()
        self.world.broadcast_parameters(self.model.parameters())  # rank 0's, everywhere
        bar = tqdm(total=config.steps, initial=self.step, unit="step", dynamic_ncols=True,
                   disable=not config.progress or progress_disabled() or not self.world.is_main)
        try:
            with self._stop_requests():
                while self.step < config.steps:
                    self._one_step(bar, last)
                    if self._stop_agreed():
                        if last is not None:
                            self.save(last)
                        raise TrainingInterrupted(self._signal, self.step, last)
                    if config.patience is not None and self.bad_evals >= config.patience:
                        break
        except TrainingInterrupted:
            raise
        except BaseException as error:
            if self.world.size > 1:  # an error on one rank: end them all, none waits for ever
                self.world.abort(error)
            raise
        finally:
            bar.close()
        if last is not None:
            self.save(last)
        self.world.barrier()  # the files rank 0 wrote are there for every rank
        return self.history

    def _one_step(self, bar, last):
        """A step, its evaluation when due, its log row, progress and periodic checkpoint."""
        config = self.config
        row = self.train_step()
        due = config.eval_every and self.step % config.eval_every == 0
        if self.evaluate and (due or self.step == config.steps):  # always at the end
            row.update({f"eval_{k}": v for k, v in self.run_evaluation().items()})
        if (config.log_every and self.step % config.log_every == 0) or "eval_" + \
                config.metric in row or self.step == config.steps:
            self.history.append(row)
            self._write_rows([row])
        bar.update(1)
        bar.set_postfix(_postfix(row), refresh=False)
        if last is not None and config.checkpoint_every and \
                self.step % config.checkpoint_every == 0:
            self.save(last)
        if last is not None and config.keep_every and self.step % config.keep_every == 0:
            self.save(self.out_dir / f"step_{self.step}.npz")

    def _start_record(self):
        """A new run: no checkpoint of an earlier run stays beside its metrics."""
        if self.out_dir is None or not self.world.is_main:
            return
        kept = list(self.out_dir.glob("step_*.npz")) if self.out_dir.exists() else []
        for path in [self.out_dir / "last.npz", self.out_dir / "best.npz", *kept]:
            path.unlink(missing_ok=True)
        self._write_rows([], mode="w")

    # ----------------------------------------------------------------------- signals

    @contextmanager
    def _stop_requests(self):
        """While training, SIGINT and SIGTERM ask to stop after the current step (recorded in
        ``self._signal``); a second one stops at once. Signal handlers can only be set from
        the main thread: elsewhere the signals keep their usual effect."""
        self._signal = None
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request(signum, frame):
            if self._signal is not None:
                raise KeyboardInterrupt  # the second signal: stop now, without saving
            self._signal = signum
            if self.world.is_main:
                print(f"\n{signal.Signals(signum).name}: stopping after step {self.step + 1} "
                      "to save it (once more to stop at once, without saving)",
                      file=sys.stderr, flush=True)

        previous = {number: signal.signal(number, request) for number in STOP_SIGNALS}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _stop_agreed(self):
        """Whether to stop now; data parallel: rank 0's signal decides for every rank, so all
        stop after the same step."""
        if self.world.size > 1:
            self._signal = self.world.broadcast_object(self._signal)
        return self._signal is not None


def _postfix(row):
    postfix = {"loss": f"{row['loss']:.4f}", "lr": f"{row['lr']:.2e}"}
    if row.get("tokens_per_s"):
        postfix["tok/s"] = f"{row['tokens_per_s']:.0f}"
    if "loss_scale" in row:  # float16
        postfix["scale"] = f"{row['loss_scale']:g}"
        postfix["skipped"] = str(row["skipped_steps"])
    return postfix
