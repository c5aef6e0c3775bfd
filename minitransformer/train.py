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

Exact resume: a checkpoint holds the parameters, the optimizer state, the generator state, the
step, the epoch and the position inside it. ``fit(resume=True)`` continues from ``last.npz`` and
reproduces the losses of an uninterrupted run bit for bit (same backend).

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
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm.auto import tqdm

from minitransformer import backend, checkpoint, distributed
from minitransformer.autograd import no_grad
from minitransformer.optim.optimizers import clip_grad_norm

__all__ = ["TrainConfig", "Trainer", "progress_disabled", "read_history"]


@dataclass
class TrainConfig:
    """Settings of a training run (saved as JSON in every checkpoint).

    steps: optimizer updates in all.  accumulate: micro-batches per update.
    eval_every / log_every / checkpoint_every: in steps (0 = never; a last checkpoint is always
    written at the end when ``out_dir`` is set).  grad_clip: max global gradient norm or None.
    patience: evaluations without improvement of ``metric`` before stopping (None = never stop
    early); ``mode`` "min" (loss) or "max" (accuracy).  seed: seeds the shared generator.
    out_dir: where ``last.npz``, ``best.npz`` and ``metrics.jsonl`` go (None = keep nothing).
    """

    steps: int
    accumulate: int = 1
    eval_every: int = 0
    log_every: int = 10
    checkpoint_every: int = 0
    grad_clip: float | None = None
    patience: int | None = None
    metric: str = "loss"
    mode: str = "min"
    seed: int = 0
    out_dir: str | None = None
    progress: bool = True

    def __post_init__(self):
        if self.steps < 1 or self.accumulate < 1:
            raise ValueError(f"TrainConfig: steps and accumulate must be >= 1, got steps="
                             f"{self.steps}, accumulate={self.accumulate}")
        if self.mode not in ("min", "max"):
            raise ValueError(f"TrainConfig: mode must be 'min' or 'max', got {self.mode!r}")


def progress_disabled():
    """Progress bars stay silent when stderr is not a terminal or TQDM_DISABLE=1."""
    return os.environ.get("TQDM_DISABLE") == "1" or not sys.stderr.isatty()


def read_history(path):
    """The rows of a metrics.jsonl file, as dicts."""
    with open(path, encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]


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
        total_loss, tokens = 0.0, 0
        for _ in range(config.accumulate):
            result = self.loss_fn(self.model, self._next_batch())
            loss, count = result if isinstance(result, tuple) else (result, 0)
            scaled = loss if config.accumulate == 1 else loss * (1.0 / config.accumulate)
            scaled.backward()
            total_loss += loss.item() / config.accumulate
            tokens += count
        parameters = self.optimizer.parameters()
        if self.world.size > 1:  # data parallel: now every rank holds the whole batch's mean
            total_loss, tokens = self.world.average_gradients(parameters, total_loss, tokens)
        if not math.isfinite(total_loss):
            raise FloatingPointError(f"Trainer: the loss became {total_loss} at step "
                                     f"{self.step + 1}; lower the learning rate or clip gradients")
        logged = (config.log_every and (self.step + 1) % config.log_every == 0) or \
            self.step + 1 == config.steps
        if config.grad_clip is not None:
            grad_norm = clip_grad_norm(parameters, config.grad_clip)
        else:  # measuring the norm is a pass over every gradient: only for a logged row
            grad_norm = clip_grad_norm(parameters, math.inf) if logged else None
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.step += 1
        seconds = time.perf_counter() - start
        return {"step": self.step, "epoch": self.epoch, "loss": total_loss,
                "lr": lr if lr is not None else self.optimizer.param_groups[0]["lr"],
                "grad_norm": grad_norm,
                "tokens_per_s": tokens / seconds if tokens else None, "seconds": seconds}

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
            **per_rank, **self.extra_state,
        )

    def resume(self, path):
        """Load a checkpoint written by ``save`` and continue from its step."""
        state = checkpoint.load(path, self.model, self.optimizer)
        self.step, self.epoch, self.position = state["step"], state["epoch"], state["position"]
        self.best, self.bad_evals = state["best"], state["bad_evals"]
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
        """Train until ``config.steps`` (or early stopping); returns the logged rows."""
        config = self.config
        last = self.out_dir / "last.npz" if self.out_dir is not None else None
        if resume and last is not None and self.world.broadcast_object(last.exists()):
            self.resume(last)  # on every rank
        else:
            backend.manual_seed(self.world.rank_seed(config.seed))  # config.seed on one process
            self._write_rows([], mode="w")
        self.world.broadcast_parameters(self.model.parameters())  # rank 0's, everywhere
        bar = tqdm(total=config.steps, initial=self.step, unit="step", dynamic_ncols=True,
                   disable=not config.progress or progress_disabled() or not self.world.is_main)
        try:
            while self.step < config.steps:
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
                if config.patience is not None and self.bad_evals >= config.patience:
                    break
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


def _postfix(row):
    postfix = {"loss": f"{row['loss']:.4f}", "lr": f"{row['lr']:.2e}"}
    if row.get("tokens_per_s"):
        postfix["tok/s"] = f"{row['tokens_per_s']:.0f}"
    return postfix
