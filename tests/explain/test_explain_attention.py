"""The attention walk-through: its steps equal the library's attention, have the documented
shapes, print legibly, and the explain-attention command runs and fails clearly."""

import importlib
import os

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.explain as explain
import minitransformer.functional as F
from minitransformer import nn
from minitransformer.cli import main

os.environ.setdefault("MPLBACKEND", "Agg")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TOLERANCE = {"float32": 1e-6, "float64": 1e-12}


def _numpy(tensor):
    return tensor.numpy() if isinstance(tensor, mt.Tensor) else np.asarray(tensor)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n_heads", [1, 2, 4])
def test_steps_equal_the_library_attention(n_heads, causal, dtype):
    steps = explain.attention(d_model=8, n_heads=n_heads, causal=causal, dtype=dtype)
    atol = TOLERANCE[dtype]
    module, x = steps.module, steps["X"].value
    assert x.dtype == np.dtype(dtype) and steps.output.dtype == np.dtype(dtype)
    mask = F.causal_mask(x.shape[0]) if causal else None
    batch = x.reshape(1, *x.shape)
    with mt.no_grad():
        expected = module(batch, batch, batch, mask)[0]  # (T, D)
        q = module.split_heads(module.w_q(batch))[0]  # (H, T, d_k)
        k = module.split_heads(module.w_k(batch))[0]
        v = module.split_heads(module.w_v(batch))[0]
        heads, weights = F.scaled_dot_product_attention(q, k, v, mask)  # (H, T, d_k), (H, T, T)
    np.testing.assert_allclose(steps["output"].value.numpy(), expected.numpy(), rtol=0, atol=atol)
    for h in range(n_heads):
        np.testing.assert_allclose(steps["weights", h].value.numpy(), weights[h].numpy(),
                                   rtol=0, atol=atol)
        np.testing.assert_allclose(steps["head", h].value.numpy(), heads[h].numpy(),
                                   rtol=0, atol=atol)
    assert all(difference <= atol for _, difference in steps.checks)


def test_steps_equal_plain_numpy_math():
    """An independent check: softmax(QKᵀ/√d_k)V written in NumPy from the step's matrices."""
    steps = explain.attention(d_model=6, n_heads=2, causal=True, dtype="float64")
    x, w_q, w_k, w_v, w_o = (steps[key].value.numpy() for key in ("X", "W_Q", "W_K", "W_V", "W_O"))
    length, d_k = x.shape[0], 3
    future = np.triu(np.ones((length, length), dtype=bool), k=1)
    heads = []
    for h in range(2):
        cols = slice(h * d_k, (h + 1) * d_k)
        q, k, v = x @ w_q[:, cols], x @ w_k[:, cols], x @ w_v[:, cols]
        scaled = q @ k.T / np.sqrt(d_k)
        np.testing.assert_allclose(steps["scaled", h].value.numpy(), scaled, atol=1e-12)
        scaled[future] = -np.inf
        weights = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
        weights /= weights.sum(axis=-1, keepdims=True)
        np.testing.assert_allclose(steps["weights", h].value.numpy(), weights, atol=1e-12)
        heads.append(weights @ v)
    np.testing.assert_allclose(steps.output.numpy(), np.concatenate(heads, axis=-1) @ w_o,
                               atol=1e-12)


def test_each_step_has_its_documented_shape():
    steps = explain.attention("the cat sat on the mat", d_model=8, n_heads=2, causal=True)
    t, d, d_k = 6, 8, 4
    expected = {"X": (t, d), "W_Q": (d, d), "W_K": (d, d), "W_V": (d, d), "Q": (t, d),
                "K": (t, d), "V": (t, d), "Q_h": (t, d_k), "K_h": (t, d_k), "V_h": (t, d_k),
                "scores": (t, t), "scaled": (t, t), "masked": (t, t), "weights": (t, t),
                "head": (t, d_k), "concat": (t, d), "W_O": (d, d), "output": (t, d)}
    assert {step.key for step in steps} == set(expected)
    for step in steps:
        assert step.shape == expected[step.key], step.key
        assert step.value.shape == step.shape
    per_head = ["Q_h", "K_h", "V_h", "scores", "scaled", "masked", "weights", "head"]
    assert steps.keys() == ([("X", None), ("W_Q", None), ("W_K", None), ("W_V", None),
                             ("Q", None), ("K", None), ("V", None)]
                            + [(key, 0) for key in per_head] + [(key, 1) for key in per_head]
                            + [("concat", None), ("W_O", None), ("output", None)])
    assert steps.weights.shape == (2, t, t)


def test_the_math_reads_as_expected():
    steps = explain.attention(n_heads=2, causal=True)
    for h in range(2):
        weights = steps["weights", h].value.numpy()
        np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-6)
        assert np.all(weights[np.triu_indices(6, k=1)] == 0)  # nothing from the future
        masked = steps["masked", h].value.numpy()
        assert np.all(np.isneginf(masked[np.triu_indices(6, k=1)]))
        np.testing.assert_allclose(steps["scaled", h].value.numpy(),
                                   steps["scores", h].value.numpy() / 2.0, rtol=1e-6)
    np.testing.assert_array_equal(steps["Q_h", 1].value.numpy(), steps["Q"].value.numpy()[:, 4:])
    x = steps["X"].value.numpy()
    np.testing.assert_array_equal(x[0], x[4])  # "the" twice: the same embedding row
    assert "masked" not in {step.key for step in explain.attention(causal=False)}


def test_the_notes_are_true_of_the_numbers_printed():
    """The √d_k note quotes the variances of this head's own QKᵀ, QKᵀ/√d_k, Q_h and K_h; the
    weights of a fresh layer are called random, a given module's are not."""
    steps = explain.attention(d_model=16, n_heads=2)
    for h in range(2):
        note = steps["scaled", h].note
        values = [steps[key, h].value.numpy().var() for key in ("scores", "scaled", "Q_h", "K_h")]
        assert f"here {values[0]:.3g} -> {values[1]:.3g}" in note, note
        assert f"variance {values[2]:.3g} and {values[3]:.3g}" in note, note
        np.testing.assert_allclose(values[0] / values[1], 8, rtol=1e-4)  # d_k = 16 / 2
        assert "near 1" not in note
    for key in ("W_Q", "W_K", "W_V", "W_O"):
        assert steps[key].formula.startswith("a random") and "not learned" in steps[key].note
    given = explain.attention(module=nn.MultiHeadAttention(8, 2))
    assert given["W_Q"].formula.startswith("the given module's")
    assert "random" not in given["W_Q"].note


def test_explaining_leaves_the_shared_generator_alone():
    mt.manual_seed(5)
    expected = mt.randn(3).numpy()
    mt.manual_seed(5)
    explain.attention(seed=11)
    np.testing.assert_array_equal(mt.randn(3).numpy(), expected)
    assert mt.get_default_dtype() == np.float32
    explain.attention(dtype="float64")
    assert mt.get_default_dtype() == np.float32


def test_same_seed_same_numbers_and_seed_changes_them():
    a, b = explain.attention(seed=3), explain.attention(seed=3)
    np.testing.assert_array_equal(a.output.numpy(), b.output.numpy())
    assert not np.allclose(a.output.numpy(), explain.attention(seed=4).output.numpy())


def test_given_tokens_embeddings_and_a_module_with_biases():
    mt.manual_seed(1)
    module = nn.MultiHeadAttention(4, 2)  # biases on
    module.train()
    embeddings = mt.randn(3, 4)
    steps = explain.attention(tokens=["a", "b", "c"], embeddings=embeddings, module=module)
    np.testing.assert_array_equal(steps["X"].value.numpy(), embeddings.numpy())
    assert steps["Q"].formula == "X W^Q + b^Q" and "+ b^O" in steps["output"].formula
    assert steps.tokens == ["a", "b", "c"] and steps["scores", 0].rows == ("a", "b", "c")
    assert module.training  # its mode is restored


@pytest.mark.parametrize("kwargs, message", [
    ({"sentence": ""}, "no tokens"),
    ({"sentence": "   "}, "no tokens"),
    ({"d_model": 8, "n_heads": 3}, "not divisible"),
    ({"d_model": 0}, "positive int"),
    ({"n_heads": 0}, "positive int"),
    ({"sentence": "a b", "embeddings": [[1.0, 2.0]]}, "embeddings must be"),
])
def test_user_mistakes_raise_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        explain.attention(**kwargs)


def test_a_module_that_is_not_attention_is_refused():
    with pytest.raises(TypeError, match="MultiHeadAttention"):
        explain.attention(module=nn.Linear(4, 4))


def test_a_broken_library_attention_is_caught(monkeypatch):
    def unscaled(q, k, v, mask=None):
        scores = q @ k.swapaxes(-1, -2)  # the classic bug: no 1/√d_k
        weights = scores.softmax(axis=-1)
        return weights @ v, weights

    # the module explain/attention.py, not the function explain.attention
    walk = importlib.import_module("minitransformer.explain.attention")
    monkeypatch.setattr(walk, "scaled_dot_product_attention", unscaled)
    with pytest.raises(explain.ExplainMismatchError, match="scaled_dot_product_attention"):
        explain.attention()


def test_format_shows_labels_shapes_and_fits_100_columns():
    steps = explain.attention("the cat sat on the mat", causal=True)
    text = steps.format()
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "head 1: QKᵀ/√d_k = QKᵀ / √4" in text and "shape (6, 6)" in text
    block = text.split("head 0: softmax")[1].split("\n\n")[0]
    assert block.splitlines()[3].split()[0] == "the"  # token labels on the rows ...
    assert block.splitlines()[2].split() == ["the", "cat", "sat", "on", "the", "mat"]  # columns
    assert "-inf" in text and "Checked against the library" in text


def test_wide_matrices_are_cut_into_column_blocks():
    text = explain.format_matrix(np.arange(24.0).reshape(2, 12), rows=("a", "b"), width=40)
    assert max(len(line) for line in text.splitlines()) <= 40
    assert len(text.splitlines()) > 3 and "23.000" in text


def test_show_one_step_at_a_time(capsys):
    steps = explain.attention(n_heads=1, d_model=4)
    prompts = []
    steps.show(step=True, wait=lambda prompt: prompts.append(prompt) or "")
    assert len(prompts) == len(steps) - 1
    assert "Checked against the library" in capsys.readouterr().out
    steps.show(step=True, wait=lambda prompt: "q")  # q stops after the first step
    out = capsys.readouterr().out
    assert "[1/" in out and "[2/" not in out


def test_show_without_a_terminal_prints_everything(capsys):
    def no_input(prompt):
        raise EOFError

    steps = explain.attention(n_heads=1, d_model=4)
    steps.show(step=True, wait=no_input)
    assert f"[{len(steps)}/{len(steps)}]" in capsys.readouterr().out


def test_heatmaps_write_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = explain.attention(causal=True).heatmaps(tmp_path / "heads.png")
    assert path.read_bytes()[:8] == PNG_MAGIC


# --------------------------------------------------------------------------- the command


def test_cli_prints_the_walk_through_and_writes_heatmaps(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "heads.png"
    assert main(["explain-attention", "--sentence", "a dog ran", "--d-model", "4", "--heads",
                 "2", "--causal", "--png", str(png), "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "head 1: softmax" in out and "shape (3, 3)" in out and f"heatmaps: {png}" in out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_cli_step_mode_waits_for_enter(monkeypatch, capsys):
    answers = iter(["", "", "q"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    assert main(["explain-attention", "--step"]) == 0
    out = capsys.readouterr().out
    assert "[3/" in out and "[4/" not in out


@pytest.mark.parametrize("arguments, message", [
    (["--d-model", "8", "--heads", "3"], "not divisible by n_heads=3"),
    (["--sentence", ""], "no tokens"),
])
def test_cli_errors_are_one_line_and_exit_1(arguments, message, capsys):
    assert main(["explain-attention", *arguments]) == 1
    err = capsys.readouterr().err
    assert message in err and err.startswith("minitransformer explain-attention: error:")
    assert len(err.strip().splitlines()) == 1


def test_cli_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["explain-attention", "--help"])
    assert exit_info.value.code == 0
    assert "minitransformer explain-attention --sentence" in capsys.readouterr().out
