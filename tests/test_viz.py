"""Pictures: the autograd graph (DOT text and PNG) and attention heatmaps."""

import os
import re

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn, viz
from minitransformer.viz import draw_graph, plot_attention

os.environ.setdefault("MPLBACKEND", "Agg")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _labels(dot):
    """node name -> its label lines."""
    return {name: label.split("\\n") for name, label in re.findall(r'(n\d+) \[label="(.*?)"', dot)}


def _small_expression():
    x = mt.randn(4, 3, requires_grad=True)
    w = mt.randn(3, 2, requires_grad=True)
    return x, w, (x @ w).relu().sum()


def test_dot_names_the_ops_of_a_known_expression():
    x, w, loss = _small_expression()
    dot = draw_graph(loss, names={"x": x, "w": w})
    assert dot.startswith("digraph autograd {") and dot.rstrip().endswith("}")
    labels = _labels(dot)
    firsts = sorted(lines[0] for lines in labels.values())
    assert firsts == ["MatMul", "ReLU", "Sum", "w", "x"]
    assert labels["n0"][:2] == ["Sum", "() float32"]  # node 0 is the tensor drawn
    assert ["x", "(4, 3) float32"] in labels.values()
    assert len(re.findall(r"n\d+ -> n\d+;", dot)) == 4  # x, w -> MatMul -> ReLU -> Sum
    assert "‖grad‖" not in dot  # no gradients before backward


def test_gradient_norms_appear_after_backward():
    x, w, loss = _small_expression()
    hidden = x @ w
    hidden.retain_grad()
    loss = hidden.relu().sum()
    loss.backward()
    labels = _labels(draw_graph(loss, names={"x": x, "w": w}))
    norms = {lines[0]: float(lines[2].split("= ")[1]) for lines in labels.values()
             if len(lines) == 3}
    assert set(norms) == {"x", "w", "MatMul"}  # leaves, and the intermediate that kept its grad
    assert norms["x"] == pytest.approx(np.linalg.norm(x.grad), rel=1e-2)
    assert norms["w"] == pytest.approx(np.linalg.norm(w.grad), rel=1e-2)


def test_leaves_are_named_from_a_module_or_by_kind():
    model = nn.Linear(3, 2)
    x = mt.randn(5, 3)
    labels = _labels(draw_graph(model(x).sum(), names=model))
    firsts = {lines[0] for lines in labels.values()}
    assert {"weight", "bias", "constant"} <= firsts
    unnamed = {lines[0] for lines in _labels(draw_graph(model(x).sum())).values()}
    assert "parameter" in unnamed
    y = mt.randn(2, requires_grad=True)
    assert "input" in {lines[0] for lines in _labels(draw_graph(y * 2.0)).values()}


def test_a_tensor_used_twice_is_one_node_with_two_edges():
    x = mt.randn(3, requires_grad=True)
    dot = draw_graph((x * x).sum())
    assert len(_labels(dot)) == 3 and len(re.findall(r"-> n\d+;", dot)) == 3


def test_a_deep_graph_needs_no_recursion():
    x = mt.randn(2, requires_grad=True)
    y = x
    for _ in range(3000):
        y = y * 1.0
    assert len(_labels(draw_graph(y))) == 3001


def test_only_tensors_are_drawn():
    with pytest.raises(TypeError, match="draw_graph: expected a Tensor"):
        draw_graph([1.0, 2.0])


def test_png_of_a_small_expression(tmp_path):
    pytest.importorskip("matplotlib")
    x, w, loss = _small_expression()
    loss.backward()
    path = tmp_path / "graph.png"
    dot = draw_graph(loss, path, names={"x": x, "w": w}, title="(x @ w).relu().sum()")
    assert "MatMul" in dot and path.read_bytes()[:8] == PNG_MAGIC


def test_png_of_one_attention_call_after_backward(tmp_path):
    pytest.importorskip("matplotlib")
    attention = nn.MultiHeadAttention(8, 2)
    x = mt.randn(1, 5, 8, requires_grad=True)
    loss = attention(x, x, x, F.causal_mask(5)).sum()
    loss.backward()
    path = tmp_path / "attention.png"
    dot = draw_graph(loss, path, names=attention)
    firsts = [lines[0] for lines in _labels(dot).values()]
    assert {"ScaledMaskedSoftmax", "MatMul", "Linear", "w_q.weight", "w_o.bias"} <= set(firsts)
    assert 20 <= len(firsts) <= 60  # one attention call: a few dozen nodes
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_attention_heatmaps(tmp_path):
    pytest.importorskip("matplotlib")
    weights = mt.randn(1, 3, 4, 4).softmax(axis=-1)  # (B=1, H, T, S)
    path = plot_attention(weights, list("abcd"), tmp_path / "w.png", title="three heads",
                          mask=F.causal_mask(4))
    assert path.read_bytes()[:8] == PNG_MAGIC
    one = plot_attention(weights.numpy()[0, 0], list("abcd"), tmp_path / "one.png",
                         key_tokens=list("wxyz"))
    assert one.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("tokens, key_tokens, shape, message", [
    (list("abc"), None, (2, 4, 4), "need 4 query tokens"),
    (list("abcd"), None, (2, 1, 4, 4, 1), "must be"),
])
def test_attention_heatmaps_refuse_wrong_shapes(tmp_path, tokens, key_tokens, shape, message):
    with pytest.raises(ValueError, match=message):
        plot_attention(np.full(shape, 0.25), tokens, tmp_path / "x.png", key_tokens=key_tokens)


def test_plot_curves_draws_named_curves(tmp_path):
    pytest.importorskip("matplotlib")
    steps = np.arange(1, 51)
    path = viz.plot_curves({"1/√step": (steps, 1 / np.sqrt(steps)), "flat": [0.5] * 50,
                            "tensor": mt.tensor(np.linspace(1, 0, 50))},
                           tmp_path / "curves.png", ylabel="lr", logy=True, title="schedules")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    path = viz.plot_curves({"d_k": ([4, 16, 64], [4.1, 15.8, 64.3])}, tmp_path / "loglog.png",
                           logx=True, logy=True, marker="o")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_plot_curves_draws_error_bars_dashed_curves_and_plain_ticks(tmp_path):
    pytest.importorskip("matplotlib")
    sizes = [250, 1000, 4000]
    path = viz.plot_curves({"a": (sizes, [70.0, 80.0, 85.0]), "b": (sizes, [75.0, 78.0, 80.0])},
                           tmp_path / "bars.png", logx=True, marker="o",
                           errors={"a": [1.0, 0.5, 0.0]}, dashed=["b"], xticks=sizes)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    with pytest.raises(ValueError, match=r"plot_curves: curve 'a' has 1 error bars and 3 y"):
        viz.plot_curves({"a": (sizes, [1.0, 2.0, 3.0])}, tmp_path / "x.png", errors={"a": [1]})


def test_plot_curves_refuses_mismatched_or_empty_curves(tmp_path):
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match=r"plot_curves: curve 'a' has 3 x values and 2 y"):
        viz.plot_curves({"a": ([1, 2, 3], [1.0, 2.0])}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="plot_curves: curves is empty"):
        viz.plot_curves({}, tmp_path / "x.png")


def test_show_prints_the_path_in_a_script_and_refuses_a_missing_file(tmp_path, capsys):
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n")
    assert viz.show(image) == image
    assert f"plot saved to {image}" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="show: no image at"):
        viz.show(tmp_path / "missing.png")


def test_show_displays_inline_in_a_notebook_kernel(tmp_path, monkeypatch):
    ipython = pytest.importorskip("IPython")
    import IPython.display

    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n")
    shown = []
    monkeypatch.setattr(ipython, "get_ipython", lambda: type("Kernel", (), {"kernel": 1})())
    monkeypatch.setattr(IPython.display, "display", shown.append)
    viz.show(image)
    assert len(shown) == 1 and isinstance(shown[0], IPython.display.Image)
