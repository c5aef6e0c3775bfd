"""The training loop: it learns, logs, plots, keeps the best, stops early, and resumes exactly."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import checkpoint, nn, optim
from minitransformer.train import TrainConfig, Trainer, read_history
from minitransformer.viz import plot_history

ROOT = Path(__file__).resolve().parent.parent


def regression_task(seed=0):
    """A small MLP with dropout on a fixed regression problem; 4 shuffled batches per epoch."""
    mt.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 16), nn.Dropout(0.1), nn.Linear(16, 1))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((32, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)

    def batches(epoch):
        order = np.random.default_rng(1000 + epoch).permutation(32)
        return [(mt.tensor(x[order[i:i + 8]]), mt.tensor(y[order[i:i + 8]]))
                for i in range(0, 32, 8)]

    def loss_fn(model, batch):
        inputs, targets = batch
        return ((model(inputs) - targets) ** 2).mean(), inputs.shape[0]

    return model, batches, loss_fn


def test_the_loop_overfits_a_tiny_batch(tmp_path):
    mt.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32), nn.Linear(32, 3))
    x, y = mt.randn(6, 4), mt.tensor([0, 1, 2, 0, 1, 2])
    trainer = Trainer(model, optim.Adam(model.parameters(), lr=0.05),
                      lambda m, b: F.cross_entropy(m(b[0]), b[1]), lambda epoch: [(x, y)],
                      TrainConfig(steps=150, log_every=10, out_dir=str(tmp_path), progress=False))
    history = trainer.fit()
    assert history[-1]["loss"] < 0.01 < history[0]["loss"]


def test_metrics_file_and_plot_are_written(tmp_path):
    model, batches, loss_fn = regression_task()
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.05), loss_fn, batches,
                      TrainConfig(steps=20, log_every=5, eval_every=10, out_dir=str(tmp_path),
                                  progress=False),
                      schedule=optim.warmup_linear(0.05, 5, 20),
                      evaluate=lambda m: {"loss": loss_fn(m, batches(0)[0])[0].item()})
    trainer.fit()
    rows = read_history(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [5, 10, 15, 20]
    assert {"step", "epoch", "loss", "lr", "grad_norm", "tokens_per_s"} <= set(rows[0])
    assert "eval_loss" in rows[1] and rows[0]["lr"] == pytest.approx(0.05)
    png = plot_history(tmp_path / "metrics.jsonl")
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "best.npz").exists() and (tmp_path / "last.npz").exists()


def test_best_checkpoint_and_early_stopping(tmp_path):
    model, batches, loss_fn = regression_task()
    scores = iter([0.5, 0.7, 0.6, 0.65, 0.4])
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.01), loss_fn, batches,
                      TrainConfig(steps=100, eval_every=2, patience=3, metric="accuracy",
                                  mode="max", out_dir=str(tmp_path), progress=False),
                      evaluate=lambda m: {"accuracy": next(scores)})
    trainer.fit()
    assert trainer.step == 10 and trainer.best == 0.7  # 3 evaluations without a better score
    assert checkpoint.load(tmp_path / "best.npz")["step"] == 4


def test_gradient_accumulation_in_the_loop_matches_a_large_batch(tmp_path):
    def run(accumulate, batch_size):
        mt.manual_seed(0)
        model = nn.Linear(3, 1)
        x = mt.tensor(np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32))

        def batches(epoch):
            return [x[i:i + batch_size] for i in range(0, 8, batch_size)]

        trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1),
                          lambda m, b: (m(b) ** 2).mean(), batches,
                          TrainConfig(steps=3, accumulate=accumulate, progress=False))
        trainer.fit()
        return model.weight.numpy()

    np.testing.assert_allclose(run(2, 4), run(1, 8), rtol=1e-6)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_a_diverging_loss_stops_with_a_clear_error():
    model = nn.Linear(2, 1)
    x = mt.tensor([[1e30, 1e30]])
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=1.0),
                      lambda m, b: (m(b) ** 2).sum(), lambda e: [x],
                      TrainConfig(steps=3, progress=False))
    with pytest.raises(FloatingPointError, match="the loss became inf at step 1"):
        trainer.fit()


RUN = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[3])
    from test_train import regression_task
    from minitransformer import optim
    from minitransformer.train import TrainConfig, Trainer

    model, batches, loss_fn = regression_task()

    def slow_loss(model, batch):
        time.sleep(float(sys.argv[2]))  # give the test time to kill mid-run
        return loss_fn(model, batch)

    trainer = Trainer(model, optim.AdamW(model.parameters(), lr=0.01), slow_loss, batches,
                      TrainConfig(steps=30, log_every=1, checkpoint_every=4,
                                  out_dir=sys.argv[1], progress=False),
                      schedule=optim.warmup_cosine(0.01, 5, 30))
    for row in trainer.fit(resume=True):
        pass
    print("done", flush=True)
""")


def test_a_run_killed_and_resumed_reproduces_the_uninterrupted_losses(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(RUN)
    env = dict(os.environ, PYTHONPATH=str(ROOT), TQDM_DISABLE="1")
    tests = str(Path(__file__).parent)

    def run(out, pause):
        return subprocess.Popen([sys.executable, str(script), str(out), str(pause), tests],
                                env=env, stdout=subprocess.PIPE, text=True)

    whole = tmp_path / "whole"
    assert run(whole, 0).communicate()[0].strip() == "done"

    broken = tmp_path / "broken"
    process = run(broken, 0.03)
    metrics = broken / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until step 14 is logged, then kill without warning
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 14:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = len(metrics.read_text().splitlines())
    assert 14 <= killed_at < 30
    assert run(broken, 0).communicate()[0].strip() == "done"  # resumes from last.npz

    expected = [json.loads(line)["loss"] for line in (whole / "metrics.jsonl").open()]
    resumed = [json.loads(line)["loss"] for line in metrics.open()]
    assert len(resumed) == 30 and resumed == expected  # bitwise: floats compared exactly


def test_progress_is_silent_when_not_a_terminal_or_disabled(capsys, monkeypatch):
    from minitransformer.train import progress_disabled

    assert progress_disabled()  # pytest captures stderr: not a terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert progress_disabled()
    model, batches, loss_fn = regression_task()
    Trainer(model, optim.SGD(model.parameters(), lr=0.01), loss_fn, batches,
            TrainConfig(steps=3)).fit()
    assert capsys.readouterr().err == ""
