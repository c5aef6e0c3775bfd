"""Optimizers against hand-computed steps and against torch.optim; groups; state; clipping."""

import math

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn, optim


def parameter(values):
    return nn.Parameter(mt.tensor(np.asarray(values, dtype=np.float64)))


def test_sgd_step_by_hand():
    p = parameter([1.0, -2.0])
    opt = optim.SGD([p], lr=0.1)
    p.grad = np.array([0.5, -1.0])
    opt.step()
    np.testing.assert_allclose(p.numpy(), [0.95, -1.9])


def test_sgd_momentum_nesterov_and_weight_decay_by_hand():
    p = parameter([1.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    expected, velocity = 1.0, 0.0
    for step, grad in enumerate([0.5, -0.2, 0.3]):
        p.grad = np.array([grad])
        opt.step()
        g = grad + 0.01 * expected
        velocity = g if step == 0 else 0.9 * velocity + g
        expected -= 0.1 * (g + 0.9 * velocity)
        assert p.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_and_adamw_steps_by_hand(decoupled):
    p = parameter([0.5])
    kind = optim.AdamW if decoupled else optim.Adam
    opt = kind([p], lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    value, m, v = 0.5, 0.0, 0.0
    for t, grad in enumerate([0.3, -0.1, 0.4], start=1):
        p.grad = np.array([grad])
        opt.step()
        if decoupled:
            value *= 1 - 0.01 * 0.1
            g = grad
        else:
            g = grad + 0.1 * value
        m = 0.9 * m + 0.1 * g
        v = 0.99 * v + 0.01 * g * g
        value -= 0.01 / (1 - 0.9**t) * m / (math.sqrt(v) / math.sqrt(1 - 0.99**t) + 1e-8)
        assert p.item() == pytest.approx(value, rel=1e-12)


def test_parameters_without_gradients_are_left_alone():
    a, b = parameter([1.0]), parameter([2.0])
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = np.array([1.0])
    opt.step()
    assert b.item() == 2.0 and a.item() != 1.0


def test_parameter_groups_with_lr_scale_and_no_decay():
    a, b = parameter([1.0]), parameter([1.0])
    opt = optim.SGD([{"params": [a], "lr_scale": 0.1}, {"params": [b], "weight_decay": 0.0}],
                    lr=1.0, weight_decay=0.5)
    opt.set_lr(0.2)
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(0.02), 0.2]
    a.grad, b.grad = np.array([1.0]), np.array([1.0])
    opt.step()
    assert a.item() == pytest.approx(1.0 - 0.02 * (1.0 + 0.5))
    assert b.item() == pytest.approx(1.0 - 0.2)


def test_optimizer_errors():
    p = parameter([1.0])
    with pytest.raises(ValueError, match="got no parameters"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="unknown hyper-parameters \\['momentun'\\]"):
        optim.SGD([{"params": [p], "momentun": 0.9}], lr=0.1)
    with pytest.raises(ValueError, match="a parameter appears in two groups"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(ValueError, match="nesterov=True needs momentum"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas in \\[0, 1\\)"):
        optim.Adam([p], betas=(0.9, 1.0))


def test_state_dict_round_trip_continues_identically():
    def run(restart):
        mt.manual_seed(0)
        layer = nn.Linear(3, 2)
        opt = optim.Adam(layer.parameters(), lr=0.05)
        x = mt.randn(4, 3)
        for step in range(6):
            if restart and step == 3:
                saved, weights = opt.state_dict(), layer.state_dict()
                layer = nn.Linear(3, 2)
                layer.load_state_dict(weights)
                opt = optim.Adam(layer.parameters(), lr=0.9)
                opt.load_state_dict(saved)
            (layer(x) ** 2).sum().backward()
            opt.step()
            opt.zero_grad()
        return layer.weight.numpy()

    np.testing.assert_array_equal(run(False), run(True))


def test_clip_grad_norm_scales_all_gradients_together():
    a, b = parameter([0.0, 0.0]), parameter([0.0])
    a.grad, b.grad = np.array([3.0, 0.0]), np.array([4.0])
    total = optim.clip_grad_norm([a, b], max_norm=1.0)
    assert total == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([a.grad, b.grad]), [0.6, 0.0, 0.8], rtol=1e-5)
    assert optim.clip_grad_norm([a, b], max_norm=10.0) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="max_norm must be positive"):
        optim.clip_grad_norm([a], 0.0)


def test_accumulating_micro_batches_equals_one_large_batch():
    mt.manual_seed(0)
    layer = nn.Linear(3, 2).double()
    x, y = mt.randn(8, 3, dtype="float64"), mt.randn(8, 2, dtype="float64")

    def loss(rows):
        return ((layer(x[rows]) - y[rows]) ** 2).mean()

    loss(slice(0, 8)).backward()
    whole = layer.weight.grad.copy()
    layer.zero_grad()
    for rows in (slice(0, 4), slice(4, 8)):
        (loss(rows) * 0.5).backward()
    np.testing.assert_allclose(layer.weight.grad, whole, rtol=1e-12)


@pytest.mark.parametrize("name", ["SGD", "SGD-nesterov", "Adam", "AdamW"])
def test_matches_torch_optim(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    start = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(5)]
    ours = parameter(start)
    theirs = torch.tensor(start, requires_grad=True)
    settings = {
        "SGD": (optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
        "SGD-nesterov": (optim.SGD, torch.optim.SGD,
                         dict(lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.0)),
        "Adam": (optim.Adam, torch.optim.Adam, dict(lr=0.01, weight_decay=0.05)),
        "AdamW": (optim.AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.05)),
    }[name]
    our_opt = settings[0]([ours], **settings[2])
    their_opt = settings[1]([theirs], foreach=False, **settings[2])
    for grad in grads:
        ours.grad = grad.copy()
        theirs.grad = torch.tensor(grad)
        our_opt.step()
        their_opt.step()
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_a_group_with_a_start_step_stays_frozen_until_then():
    early, late = nn.Parameter(mt.ones(3)), nn.Parameter(mt.ones(3))
    opt = optim.AdamW([{"params": [early]}, {"params": [late], "start_step": 2}], lr=0.1,
                      weight_decay=0.1)
    for step in (1, 2, 3):
        opt.set_lr(0.1, step)
        for p in (early, late):
            p.grad = np.ones(3, dtype=p.dtype)
        opt.step()
        if step <= 2:
            np.testing.assert_array_equal(late.numpy(), np.ones(3))  # no update, no decay
            assert id(late) not in opt.state
    assert (late.numpy() < 1).all() and opt.state[id(late)]["step"] == 1
    assert opt.state[id(early)]["step"] == 3
