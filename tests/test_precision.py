"""Mixed precision: the loss scaler's rules on exact values, float16 copies lent and the float32
weights given back, float16 training close to float32, gradients that underflow without loss
scaling, skipped steps, float16 checkpoints and resume, and a float32 run left as it was."""

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import checkpoint, nn, optim
from minitransformer.cli import main
from minitransformer.errors import DTypeError
from minitransformer.optim import clip_grad_norm
from minitransformer.precision import Float16Weights, LossScaler, check_precision
from minitransformer.train import NonFiniteLossError, TrainConfig, Trainer, _postfix, read_history

VOCAB = 12


# --------------------------------------------------------------------------- the loss scaler


def test_the_defaults_are_pytorchs():
    scaler = LossScaler()
    assert (scaler.scale, scaler.growth_factor, scaler.backoff_factor, scaler.growth_interval) \
        == (65536.0, 2.0, 0.5, 2000)
    assert (scaler.clean_steps, scaler.skipped_steps) == (0, 0)


def test_an_overflow_halves_the_scale_counts_a_skip_and_restarts_the_clean_count():
    scaler = LossScaler(init_scale=1024.0, growth_interval=3)
    scaler.update(False)
    scaler.update(False)
    assert (scaler.scale, scaler.clean_steps, scaler.skipped_steps) == (1024.0, 2, 0)
    scaler.update(True)
    assert (scaler.scale, scaler.clean_steps, scaler.skipped_steps) == (512.0, 0, 1)
    scaler.update(True)
    assert (scaler.scale, scaler.clean_steps, scaler.skipped_steps) == (256.0, 0, 2)


def test_the_scale_doubles_after_growth_interval_clean_steps_in_a_row():
    scaler = LossScaler(init_scale=1024.0, growth_interval=3)
    scales = []
    for found_inf in [False, False, True, False, False, False, False, False, False]:
        scaler.update(found_inf)
        scales.append(scaler.scale)
    assert scales == [1024, 1024, 512, 512, 512, 1024, 1024, 1024, 2048]
    assert (scaler.clean_steps, scaler.skipped_steps) == (0, 1)


def test_unscale_divides_by_the_scale_into_new_float32_arrays():
    scaler = LossScaler(init_scale=1024.0)
    grads = [np.array([512.0, 1.0, -2048.0, 65504.0], np.float16), np.array([[3.0]], np.float32)]
    before = [g.copy() for g in grads]
    unscaled, found_inf = scaler.unscale_and_check(grads)
    assert found_inf is False
    assert [u.dtype for u in unscaled] == [np.float32, np.float32]
    np.testing.assert_array_equal(unscaled[0], [0.5, 2.0**-10, -2.0, 65504.0 / 1024])
    np.testing.assert_array_equal(unscaled[1], [[3.0 / 1024]])
    for grad, kept in zip(grads, before):  # the given arrays are left as they were
        np.testing.assert_array_equal(grad, kept)
    assert scaler.unscale_and_check([]) == ([], False)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_unscale_finds_inf_and_nan(bad):
    grads = [np.ones(3, np.float16), np.array([1.0, bad], np.float16)]
    assert LossScaler().unscale_and_check(grads)[1] is True


def test_scale_loss_multiplies_a_float32_loss_and_refuses_a_float16_one():
    scaler = LossScaler()
    loss = mt.tensor(np.float32(0.75), requires_grad=True)
    scaled = scaler.scale_loss(loss)
    assert scaled.dtype == np.float32 and scaled.item() == 0.75 * 65536
    scaled.backward()
    assert loss.grad == 65536.0  # the gradient of S · loss with respect to the loss: S
    with pytest.raises(DTypeError, match=r"LossScaler.scale_loss: the loss is float16; compute "
                                         r"it in float32 .* overflows float16 beyond 65504"):
        scaler.scale_loss(mt.tensor(np.float16(0.75)))


def test_the_scaler_state_round_trips_and_its_settings_are_checked():
    scaler = LossScaler(init_scale=8.0, growth_interval=5)
    for found_inf in [True, False, False]:
        scaler.update(found_inf)
    copy = LossScaler(growth_interval=5)
    copy.load_state_dict(scaler.state_dict())
    assert copy.state_dict() == {"scale": 4.0, "clean_steps": 2, "skipped_steps": 1}
    with pytest.raises(ValueError, match=r"LossScaler.load_state_dict: the state lacks "
                                         r"\['clean_steps', 'skipped_steps'\]"):
        copy.load_state_dict({"scale": 2.0})
    for options, message in [({"init_scale": 0.0}, "init_scale must be a positive number"),
                             ({"growth_factor": 1.0}, "needs growth_factor > 1"),
                             ({"backoff_factor": 1.5}, "0 < backoff_factor < 1"),
                             ({"growth_interval": 0}, "growth_interval must be an int >= 1")]:
        with pytest.raises(ValueError, match=f"LossScaler: .*{message}"):
            LossScaler(**options)


def test_an_unknown_precision_is_named():
    assert check_precision("train", "float16") == "float16"
    with pytest.raises(ValueError, match=r"train: precision must be 'float32' or 'float16', got "
                                         r"precision='bfloat16'"):
        check_precision("train", "bfloat16")
    with pytest.raises(ValueError, match="TrainConfig: precision must be"):
        TrainConfig(steps=1, precision="half")
    with pytest.raises(ValueError, match="TrainConfig: growth_interval must be >= 1"):
        TrainConfig(steps=1, precision="float16", growth_interval=0)


# --------------------------------------------------------------------------- float16 weights


def tiny_lm(**options):
    mt.manual_seed(0)
    settings = dict(d_model=32, n_heads=2, n_layers=1, d_ff=64, dropout=0.0, max_len=16)
    return nn.CausalLanguageModel(VOCAB, **{**settings, **options})


def test_float16_copies_are_lent_inside_and_the_float32_weights_come_back():
    model = tiny_lm(positional="sinusoidal", dropout=0.1)  # a buffer, and dropout's draws
    table = model.encoder.positional.table
    arrays = {name: p.data for name, p in model.named_parameters()}
    values = {name: p.numpy().copy() for name, p in model.named_parameters()}
    ids = mt.tensor(np.arange(10).reshape(2, 5) % VOCAB)
    weights = Float16Weights(model)
    with weights.compute():
        assert {p.dtype for p in model.parameters()} == {np.dtype(np.float16)}
        assert table.dtype == np.float16
        logits = model(ids)
        assert logits.dtype == np.float16  # no op turned the activations back to float32
        loss = F.cross_entropy(logits, ids)
        assert loss.dtype == np.float32  # the loss is computed in float32
        loss.backward()
    assert table.dtype == np.float32
    for name, p in model.named_parameters():
        assert p.data is arrays[name], name  # the very float32 arrays, not new ones
        np.testing.assert_array_equal(p.data, values[name])
        assert p.grad.dtype == np.float16 and p.grad.shape == p.shape


def test_an_error_inside_still_gives_the_float32_weights_back():
    model = tiny_lm()
    weights = Float16Weights(model)
    with pytest.raises(RuntimeError, match="inside"):
        with weights.compute():
            raise RuntimeError("inside")
    assert {p.dtype for p in model.parameters()} == {np.dtype(np.float32)}


def test_the_master_weights_must_be_float32():
    model = tiny_lm().double()
    with pytest.raises(DTypeError, match=r"Float16Weights: the master weights must be float32, "
                                         r"but .*\(float64\).* more are not; call model.float"):
        Float16Weights(model)


def test_float16_gradients_underflow_to_zero_without_loss_scaling_and_train_with_it():
    rng = np.random.default_rng(0)
    x = mt.tensor(rng.standard_normal((64, 16)).astype(np.float16))  # float16 inputs as well
    y = mt.tensor(rng.integers(0, 4, 64))

    def run(scaler, steps=20):
        mt.manual_seed(0)
        model = nn.Linear(16, 4)
        start = model.weight.numpy().copy()
        weights, optimizer = Float16Weights(model), optim.Adam(model.parameters(), lr=1e-2)
        losses, zero_shares = [], []
        for _ in range(steps):
            with weights.compute():
                # a loss this small (an auxiliary loss weighted 1e-6) has dL/dlogit below
                # 1e-6 / 64 rows: under float16's smallest subnormal 6e-8 unless scaled
                loss = F.cross_entropy(model(x), y) * 1e-6
                scaler.scale_loss(loss).backward()
            parameters = list(model.parameters())
            grads, found_inf = scaler.unscale_and_check([p.grad for p in parameters])
            for p, grad in zip(parameters, grads):
                p.grad = grad
            zero_shares.append(np.mean(np.concatenate([g.ravel() for g in grads]) == 0))
            if not found_inf:
                optimizer.step()
            scaler.update(found_inf)
            optimizer.zero_grad()
            losses.append(loss.item())
        return losses, zero_shares, model.weight.numpy(), start

    losses, zero_shares, weight, start = run(LossScaler(init_scale=1.0))  # no scaling
    assert zero_shares == [1.0] * 20  # every gradient underflowed to 0
    np.testing.assert_array_equal(weight, start)  # so nothing moved
    assert losses[-1] == losses[0]
    losses, zero_shares, weight, start = run(LossScaler())  # S = 65536
    assert max(zero_shares) < 0.01
    assert not np.array_equal(weight, start) and losses[-1] < 0.9 * losses[0]


# --------------------------------------------------------------------------- the Trainer


def random_walk_batches(batch=16, length=13, per_epoch=4):
    """Token sequences that step +1 or +2 (mod VOCAB) at random: each next token is one of two,
    so the best possible loss is ln 2 ≈ 0.693 (a floor that keeps a 5% comparison fair)."""

    def batches(epoch):
        rng = np.random.default_rng(1000 + epoch)
        result = []
        for _ in range(per_epoch):
            start = rng.integers(0, VOCAB, (batch, 1))
            steps = rng.integers(1, 3, (batch, length - 1))
            ids = np.concatenate([start, start + np.cumsum(steps, axis=1)], axis=1) % VOCAB
            result.append(mt.tensor(ids))  # (batch, length)
        return result

    return batches


def lm_loss(model, ids):
    logits = model(ids[:, :-1])  # (B, T, VOCAB)
    return F.cross_entropy(logits, ids[:, 1:]), ids.shape[0] * (ids.shape[1] - 1)


def train_lm(precision, steps, out_dir=None, resume=False, **options):
    model = tiny_lm()
    optimizer = optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    config = TrainConfig(steps=steps, log_every=1, precision=precision, out_dir=out_dir,
                         progress=False, **options)
    trainer = Trainer(model, optimizer, lm_loss, random_walk_batches(), config)
    return trainer, trainer.fit(resume=resume)


def test_float16_trains_a_tiny_model_to_within_5_percent_of_float32():
    _, history32 = train_lm("float32", 40)
    _, history16 = train_lm("float16", 40)
    final32 = np.mean([row["loss"] for row in history32[-5:]])
    final16 = np.mean([row["loss"] for row in history16[-5:]])
    assert history32[0]["loss"] > 2 * final32  # it learned: from ln 12 = 2.5 towards ln 2
    assert abs(final16 - final32) <= 0.05 * final32, (final16, final32)
    assert "loss_scale" not in history32[0] and "skipped_steps" not in history32[0]
    assert all(row["loss_scale"] >= 1 and row["skipped_steps"] >= 0 for row in history16)


def test_clipping_sees_the_unscaled_gradients():
    _, history32 = train_lm("float32", 2, grad_clip=0.5)
    _, history16 = train_lm("float16", 2, grad_clip=0.5)
    norms32, norms16 = [r["grad_norm"] for r in history32], [r["grad_norm"] for r in history16]
    assert norms32[0] > 0.5  # clipped: the norm S = 65536 times too large would show here
    np.testing.assert_allclose(norms16, norms32, rtol=1e-2)


def test_a_float32_run_is_the_plain_step_bit_for_bit_and_enters_no_float16_code(monkeypatch):
    def entered(*args, **kwargs):
        raise AssertionError("a float32 run entered the float16 path")

    for name in ("__init__", "scale_loss", "unscale_and_check", "update"):
        monkeypatch.setattr(LossScaler, name, entered)
    for name in ("__init__", "compute"):
        monkeypatch.setattr(Float16Weights, name, entered)
    schedule = optim.warmup_cosine(1e-2, 2, 6)
    model = tiny_lm(dropout=0.1)
    trainer = Trainer(model, optim.AdamW(model.parameters(), lr=1e-2), lm_loss,
                      random_walk_batches(), TrainConfig(steps=6, accumulate=2, grad_clip=0.5,
                                                         log_every=1, seed=3, progress=False),
                      schedule=schedule)
    losses = [row["loss"] for row in trainer.fit()]
    # the same six steps written out as the loop was before mixed precision existed
    reference = tiny_lm(dropout=0.1)
    optimizer = optim.AdamW(reference.parameters(), lr=1e-2)
    mt.manual_seed(3)
    batches = [batch for epoch in range(3) for batch in random_walk_batches()(epoch)]
    expected = []
    for step in range(1, 7):
        optimizer.set_lr(schedule(step), step)
        reference.train()
        total = 0.0
        for batch in batches[2 * (step - 1):2 * step]:
            loss, _ = lm_loss(reference, batch)
            (loss * 0.5).backward()
            total += loss.item() / 2
        clip_grad_norm(optimizer.parameters(), 0.5)
        optimizer.step()
        optimizer.zero_grad()
        expected.append(total)
    assert losses == expected
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)
        assert p.dtype == np.float32


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow (inf, NaN) it is about
def test_an_overflowing_step_is_skipped_counted_and_the_scale_grows_back():
    mt.manual_seed(0)
    model = nn.Linear(4, 3)
    x, y = mt.tensor(np.full((2, 4), 0.5, np.float16)), mt.tensor([0, 2])
    calls = []

    def loss_fn(model, batch):
        calls.append(batch)
        factor = 1e6 if len(calls) == 1 else 1.0  # step 1: S · 1e6 · gradient overflows float16
        return F.cross_entropy(model(x), y) * factor

    optimizer = optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(model, optimizer, loss_fn, lambda epoch: [None],
                      TrainConfig(steps=4, precision="float16", growth_interval=2,
                                  progress=False))
    start = model.weight.numpy().copy()
    row = trainer.train_step()
    np.testing.assert_array_equal(model.weight.numpy(), start)  # skipped: no update
    assert model.weight.grad is None and model.weight.dtype == np.float32
    assert (row["loss_scale"], row["skipped_steps"], row["grad_norm"]) == (65536.0, 1, None)
    assert _postfix(row)["scale"] == "65536" and _postfix(row)["skipped"] == "1"
    rows = [trainer.train_step() for _ in range(3)]
    assert not np.array_equal(model.weight.numpy(), start)
    assert [r["loss_scale"] for r in rows] == [32768.0, 32768.0, 65536.0]  # 2 clean: doubled
    assert [r["skipped_steps"] for r in rows] == [1, 1, 1] and trainer.step == 4


def test_gradients_that_are_never_finite_stop_the_run_at_scale_1(tmp_path):
    model = nn.Linear(2, 2)

    def loss_fn(model, batch):  # 0, whose gradient is NaN (0 · ∞) at every scale
        return (model.weight.astype("float32") * 0.0).sqrt().sum()

    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), loss_fn, lambda e: [None],
                      TrainConfig(steps=40, precision="float16", out_dir=tmp_path,
                                  progress=False))
    with np.errstate(divide="ignore", invalid="ignore"):
        with pytest.raises(NonFiniteLossError, match="the float16 gradient at loss scale 1 "
                                                     "became inf or NaN at step 17"):
            trainer.fit()
    state = checkpoint.load(tmp_path / "last.npz")  # the last good state: 16 skipped steps
    assert state["step"] == 16 and state["loss_scaler"]["skipped_steps"] == 16


def test_a_float16_checkpoint_holds_float32_weights_and_resume_is_exact(tmp_path):
    whole, whole_history = train_lm("float16", 6, tmp_path / "whole", growth_interval=4)
    train_lm("float16", 3, tmp_path / "part", growth_interval=4)
    state = checkpoint.load(tmp_path / "part" / "last.npz")
    assert state["train_config"]["precision"] == "float16"
    assert state["loss_scaler"] == {"scale": 65536.0, "clean_steps": 3, "skipped_steps": 0}
    saved = state["model"]
    assert {array.dtype for array in saved.values()} == {np.dtype(np.float32)}
    rounded = [not np.array_equal(a, a.astype(np.float16).astype(np.float32))
               for a in saved.values()]
    assert any(rounded)  # float32 values, not float16 ones stored in float32
    resumed, history = train_lm("float16", 6, tmp_path / "part", resume=True,
                                growth_interval=4)
    assert [r["loss"] for r in history] == [r["loss"] for r in whole_history]
    assert [r["loss_scale"] for r in history] == [65536.0] * 4 + [131072.0] * 2
    assert resumed.scaler.state_dict() == whole.scaler.state_dict()
    for (name, p), q in zip(resumed.model.named_parameters(), whole.model.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)


def test_the_commands_train_in_float16_and_resume(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    tiny = ["--set", "d_model=16", "--set", "n_heads=2", "--set", "n_layers=1", "--set",
            "d_ff=32", "--set", "log_every=1", "--set", "eval_every=0", "--no-progress",
            "--set", "precision=float16", "--out", "run"]
    assert main(["pretrain", "--set", "steps=3", *tiny]) == 0
    state = checkpoint.load("run/last.npz")
    assert state["config"]["precision"] == "float16" and state["loss_scaler"]["scale"] > 0
    assert {array.dtype for array in state["model"].values()} == {np.dtype(np.float32)}
    assert main(["pretrain", "--resume", "--set", "steps=5", *tiny]) == 0
    rows = read_history("run/metrics.jsonl")
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 5]
    assert all("loss_scale" in row and "skipped_steps" in row for row in rows)


@pytest.mark.gpu
def test_float16_training_on_the_gpu_matches_the_cpu():
    _, cpu = train_lm("float16", 10)
    with mt.use_backend("cupy"):
        model = tiny_lm().to("cupy")
        optimizer = optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
        trainer = Trainer(model, optimizer, lm_loss, random_walk_batches(),
                          TrainConfig(steps=10, log_every=1, precision="float16",
                                      progress=False))
        gpu = trainer.fit()
        assert {p.device for p in model.parameters()} == {"cuda:0"}
        assert {p.dtype for p in model.parameters()} == {np.dtype(np.float32)}
    np.testing.assert_allclose([r["loss"] for r in gpu], [r["loss"] for r in cpu], rtol=2e-2)
