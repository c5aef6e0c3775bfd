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
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    from test_train import regression_task
    from minitransformer import optim
    from minitransformer.train import TrainConfig, Trainer, TrainingInterrupted

    model, batches, loss_fn = regression_task()
    every = int(sys.argv[4]) if len(sys.argv) > 4 else 4

    def slow_loss(model, batch):
        time.sleep(float(sys.argv[2]))  # give the test time to kill mid-run
        return loss_fn(model, batch)

    trainer = Trainer(model, optim.AdamW(model.parameters(), lr=0.01), slow_loss, batches,
                      TrainConfig(steps=30, log_every=1, checkpoint_every=every,
                                  out_dir=sys.argv[1], progress=False),
                      schedule=optim.warmup_cosine(0.01, 5, 30))
    try:
        trainer.fit(resume=(Path(sys.argv[1]) / "last.npz").exists())
    except TrainingInterrupted as stop:
        print(stop, flush=True)
        sys.exit(stop.exit_code)
    print("done", flush=True)
""")


def runner(tmp_path):
    """run(out, pause, checkpoint_every=4): the RUN script as a child process."""
    script = tmp_path / "run.py"
    script.write_text(RUN)
    env = dict(os.environ, PYTHONPATH=str(ROOT), TQDM_DISABLE="1")
    tests = str(Path(__file__).parent)

    def run(out, pause, every=4):
        return subprocess.Popen([sys.executable, str(script), str(out), str(pause), tests,
                                 str(every)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    return run


def wait_for_rows(metrics, count, process, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= count:
            return
        time.sleep(0.01)


def losses(folder):
    return [json.loads(line)["loss"] for line in (folder / "metrics.jsonl").open()]


def final_parameters(folder):
    return checkpoint.load(folder / "last.npz")["model"]


def test_a_run_killed_and_resumed_reproduces_the_uninterrupted_losses(tmp_path):
    run = runner(tmp_path)

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


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_saves_the_step_and_resume_matches_an_uninterrupted_run(tmp_path,
                                                                                    signum):
    run = runner(tmp_path)
    whole = tmp_path / "whole"
    assert run(whole, 0).communicate()[0].strip() == "done"

    stopped = tmp_path / "stopped"  # checkpoint_every=0: only the signal writes last.npz
    process = run(stopped, 0.05, every=0)
    wait_for_rows(stopped / "metrics.jsonl", 6, process)
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signum
    step = checkpoint.load(stopped / "last.npz")["step"]
    assert 6 <= step < 30 and len(losses(stopped)) == step
    name = signal.Signals(signum).name
    assert f"interrupted by {name} after step {step}: saved {stopped / 'last.npz'}" in out
    assert "stopping after step" in err

    assert run(stopped, 0).communicate()[0].strip() == "done"
    assert losses(stopped) == losses(whole)  # bitwise
    for name, value in final_parameters(whole).items():
        assert np.array_equal(final_parameters(stopped)[name], value), name


@pytest.mark.slow
def test_kill_9_at_random_moments_never_leaves_an_unloadable_checkpoint(tmp_path):
    """Ten kills without warning at random moments of one run (a checkpoint every step, so
    many land inside a save): every last.npz loads, and the run ends as if never killed."""
    run = runner(tmp_path)
    whole = tmp_path / "whole"
    assert run(whole, 0, every=1).communicate()[0].strip() == "done"
    folder, rng = tmp_path / "killed", np.random.default_rng(0)
    for trial in range(10):
        process = run(folder, 0.02, every=1)
        time.sleep(rng.uniform(0.2, 1.2))
        process.kill()
        process.wait()
        if (folder / "last.npz").exists():
            assert checkpoint.load(folder / "last.npz")["step"] <= 30, trial
    assert run(folder, 0, every=1).communicate()[0].strip() == "done"
    assert losses(folder) == losses(whole)
    for name, value in final_parameters(whole).items():
        assert np.array_equal(final_parameters(folder)[name], value), name


def test_a_non_finite_loss_stops_before_the_update_and_keeps_the_last_good_state(tmp_path):
    from minitransformer.train import NonFiniteLossError

    model, batches, loss_fn = regression_task()
    blow_up_at = 7

    def loss(model, batch):
        value, n = loss_fn(model, batch)
        return (value * float("nan") if trainer.step + 1 == blow_up_at else value), n

    trainer = Trainer(model, optim.AdamW(model.parameters(), lr=0.01), loss, batches,
                      TrainConfig(steps=20, eval_every=2, checkpoint_every=0, out_dir=tmp_path,
                                  progress=False),
                      evaluate=lambda m: {"loss": float(loss_fn(m, batches(0)[0])[0].item())})
    with pytest.raises(NonFiniteLossError, match=f"loss became nan at step {blow_up_at} "
                                                 rf"\(lr .*\); {tmp_path / 'last.npz'} keeps "
                                                 f"step {blow_up_at - 1}, the last good state"):
        trainer.fit()
    kept = checkpoint.load(tmp_path / "last.npz")
    assert kept["step"] == blow_up_at - 1
    assert all(np.isfinite(a).all() for a in kept["model"].values())
    for name, parameter in model.named_parameters():  # no update after the bad loss
        assert np.array_equal(kept["model"][name], parameter.numpy())
    assert checkpoint.load(tmp_path / "best.npz")["step"] <= blow_up_at - 1


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_a_non_finite_gradient_norm_also_stops_before_the_update(tmp_path):
    from minitransformer.train import NonFiniteLossError

    model, batches, loss_fn = regression_task()
    weight = next(model.parameters())

    def loss(model, batch):  # at step 2 a finite loss (0^0.5 = 0) with an infinite gradient
        value, n = loss_fn(model, batch)
        if trainer.step + 1 == 2:
            value = value + ((weight - weight.detach()) ** 0.5).sum()
        return value, n

    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), loss, batches,
                      TrainConfig(steps=3, grad_clip=1.0, out_dir=tmp_path, progress=False))
    with pytest.raises(NonFiniteLossError, match="the gradient norm became inf at step 2"):
        trainer.fit()
    kept = checkpoint.load(tmp_path / "last.npz")
    assert kept["step"] == 1 and np.array_equal(kept["model"]["0.weight"], weight.numpy())
    assert all(p.grad is None for p in model.parameters())


def test_resume_needs_a_last_checkpoint_and_a_step_not_past_the_end(tmp_path):
    model, batches, loss_fn = regression_task()

    def trainer(steps):
        return Trainer(model, optim.SGD(model.parameters(), lr=0.01), loss_fn, batches,
                       TrainConfig(steps=steps, out_dir=tmp_path / "run", progress=False))

    with pytest.raises(FileNotFoundError, match="cannot resume: .*run holds no last.npz"):
        trainer(5).fit(resume=True)
    assert not (tmp_path / "run").exists()
    trainer(5).fit()
    metrics = (tmp_path / "run" / "metrics.jsonl").read_text()
    with pytest.raises(ValueError, match="is at step 5, past steps=3; resume with steps >= 5"):
        trainer(3).fit(resume=True)
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == metrics  # nothing written


def test_a_new_run_removes_the_checkpoints_of_the_run_it_replaces(tmp_path):
    model, batches, loss_fn = regression_task()
    out = tmp_path / "run"
    out.mkdir()
    checkpoint.save(out / "best.npz", model, step=99)
    Trainer(model, optim.SGD(model.parameters(), lr=0.01), loss_fn, batches,
            TrainConfig(steps=2, out_dir=out, progress=False)).fit()  # no evaluation: no best
    assert not (out / "best.npz").exists()
    assert checkpoint.load(out / "last.npz")["step"] == 2


def test_keep_every_keeps_the_checkpoints_along_the_way(tmp_path):
    """keep_every=3 over 7 steps: step_3.npz and step_6.npz hold those steps' weights (equal to
    a run stopped there), they survive a resume, and a new run in the folder removes them."""
    def run(steps, keep_every=3, resume=False):
        model, batches, loss_fn = regression_task()
        Trainer(model, optim.SGD(model.parameters(), lr=0.05), loss_fn, batches,
                TrainConfig(steps=steps, keep_every=keep_every, out_dir=tmp_path / "run",
                            progress=False)).fit(resume=resume)
        return model

    three = {k: v.data.copy() for k, v in run(3, keep_every=0).named_parameters()}
    run(7)
    kept = sorted(path.name for path in (tmp_path / "run").glob("step_*.npz"))
    assert kept == ["step_3.npz", "step_6.npz"]
    state = checkpoint.load(tmp_path / "run" / "step_3.npz")
    assert state["step"] == 3
    for name, value in three.items():
        np.testing.assert_array_equal(state["model"][name], value)
    run(9, resume=True)
    assert (tmp_path / "run" / "step_6.npz").exists()  # kept, not yet replaced
    assert checkpoint.load(tmp_path / "run" / "last.npz")["step"] == 9
    run(2, keep_every=0)
    assert not list((tmp_path / "run").glob("step_*.npz"))
    with pytest.raises(ValueError, match="keep_every must be >= 0"):
        TrainConfig(steps=2, keep_every=-1)


def test_a_metrics_line_cut_short_by_a_kill_is_dropped_on_resume(tmp_path):
    model, batches, loss_fn = regression_task()
    config = TrainConfig(steps=4, log_every=1, checkpoint_every=2, out_dir=tmp_path,
                         progress=False)
    Trainer(model, optim.SGD(model.parameters(), lr=0.01), loss_fn, batches, config).fit()
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(metrics.read_text() + '{"step": 5, "lo')
    assert [row["step"] for row in read_history(metrics)] == [1, 2, 3, 4]
    metrics.write_text('{"step": 1}\n{"st\n{"step": 3}\n')
    with pytest.raises(ValueError, match="line 2 of .* is not a JSON row"):
        read_history(metrics)


def test_training_outside_the_main_thread_keeps_the_signals_untouched(tmp_path):
    import threading

    model, batches, loss_fn = regression_task()
    handler = signal.getsignal(signal.SIGINT)
    errors = []

    def train():
        try:
            Trainer(model, optim.SGD(model.parameters(), lr=0.01), loss_fn, batches,
                    TrainConfig(steps=3, progress=False)).fit()
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    thread = threading.Thread(target=train)
    thread.start()
    thread.join()
    assert errors == [] and signal.getsignal(signal.SIGINT) is handler


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
