"""Pictures a person would rather see than numbers: training curves, attention heatmaps, and the
autograd graph.

- ``plot_history``: loss and learning-rate curves of a run;
- ``plot_attention``: one heatmap of attention weights per head, tokens on the axes;
- ``draw_graph``: the graph autograd recorded behind a tensor, as DOT text and as a PNG.

matplotlib is an optional extra: ``pip install "minitransformer[plot]"``. Figures are written to
files with the Agg backend, so no window or display is needed. ``draw_graph`` draws with matplotlib
alone (no graphviz program); its DOT text can also be rendered by graphviz (``dot -Tsvg``).
"""

import math
import textwrap
from pathlib import Path

from minitransformer import backend
from minitransformer.tensor import Tensor

__all__ = [
    "draw_graph",
    "plot_attention",
    "plot_curves",
    "plot_history",
    "plot_pretraining",
    "show",
]


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError(
            'plotting needs matplotlib: pip install "minitransformer[plot]"'
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def show(path):
    """Show a saved image where the reader is: inline in Jupyter (and on the docs site, whose
    pages are executed notebooks), or as a printed path when run as a script. Returns ``path``.

    Chapters call ``mt.viz.show(mt.viz.plot_history(...))`` so one line serves both readers.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"show: no image at {path}")
    if _in_notebook():
        from IPython.display import Image, display

        display(Image(filename=str(path)))
    else:
        print(f"plot saved to {path}")
    return path


def _in_notebook():
    """True inside a Jupyter kernel (not in a plain script or a terminal IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def plot_curves(curves, path, xlabel="step", ylabel=None, title=None, logy=False,
                logx=False, marker=None, errors=None, dashed=(), xticks=None):
    """Several named curves on one set of axes, saved as a PNG; returns the image's path.

    ``curves`` maps a label to ``(x, y)`` (two sequences of the same length) or to ``y`` alone
    (plotted against 0, 1, 2, ...). For the comparisons chapters make: schedules, runs with and
    without a change, a quantity against a size. ``logx``/``logy`` use log axes (a power law
    is then a straight line); ``marker`` (e.g. ``"o"``) marks each point. ``errors`` maps a
    label to error bars (half-lengths, one per point: e.g. a standard deviation over seeds);
    the curves labelled in ``dashed`` (e.g. a baseline) are drawn dashed; ``xticks`` (numbers)
    puts the x ticks there alone, written out in full (1,000 rather than 10³).
    """
    if not curves:
        raise ValueError("plot_curves: curves is empty; give at least one {label: (x, y)}")
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 3.8))
    for label, values in curves.items():
        x, y = values if isinstance(values, tuple) and len(values) == 2 else (None, values)
        y = _values(y)
        x = list(range(len(y))) if x is None else _values(x)
        yerr = _values(errors[label]) if label in (errors or {}) else None
        if len(x) != len(y):
            raise ValueError(f"plot_curves: curve {label!r} has {len(x)} x values and "
                             f"{len(y)} y values; they must match")
        if yerr is not None and len(yerr) != len(y):
            raise ValueError(f"plot_curves: curve {label!r} has {len(yerr)} error bars and "
                             f"{len(y)} y values; they must match")
        style = "--" if label in dashed else "-"
        if yerr is None:
            axis.plot(x, y, label=str(label), marker=marker, linestyle=style)
        else:
            axis.errorbar(x, y, yerr=yerr, label=str(label), marker=marker, linestyle=style,
                          capsize=3)
    axis.set_xlabel(xlabel)
    if ylabel:
        axis.set_ylabel(ylabel)
    if logx:
        axis.set_xscale("log")
    if logy:
        axis.set_yscale("log")
    if xticks is not None:
        axis.minorticks_off()
        axis.set_xticks(list(xticks), [f"{tick:,}" for tick in xticks])
    if title:
        axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)


def plot_history(history, out=None, title=None):
    """Loss and learning-rate curves of a run, saved as a PNG; returns the image's path.

    ``history`` is a metrics.jsonl path or a list of rows (dicts with ``step``, ``loss``, ``lr``
    and optionally ``eval_loss`` or other ``eval_*`` metrics). ``out`` defaults to the jsonl path
    with a .png suffix.
    """
    from minitransformer.train import read_history

    if isinstance(history, (str, Path)):
        path = Path(history)
        rows = read_history(path)
        out = out or path.with_suffix(".png")
    else:
        rows = list(history)
        if out is None:
            raise ValueError("plot_history: give out= when history is a list of rows")
    if not rows:
        raise ValueError("plot_history: the history has no rows to plot")
    plt = _pyplot()
    evals = sorted({k for row in rows for k in row if k.startswith("eval_")})
    panels = 2 + bool([k for k in evals if k != "eval_loss"])
    figure, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 3.6))
    steps = [r["step"] for r in rows]
    axes[0].plot(steps, [r["loss"] for r in rows], label="train")
    if "eval_loss" in evals:
        points = [(r["step"], r["eval_loss"]) for r in rows if "eval_loss" in r]
        axes[0].plot(*zip(*points), "o-", label="eval")
    axes[0].set(xlabel="step", ylabel="loss", title="loss")
    axes[0].legend()
    axes[1].plot(steps, [r["lr"] for r in rows], color="tab:orange")
    axes[1].set(xlabel="step", ylabel="learning rate", title="learning rate")
    if panels == 3:
        for key in [k for k in evals if k != "eval_loss"]:
            points = [(r["step"], r[key]) for r in rows if key in r]
            axes[2].plot(*zip(*points), "o-", label=key[len("eval_"):])
        axes[2].set(xlabel="step", title="evaluation")
        axes[2].legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return Path(out)


# --------------------------------------------------------------------------- attention heatmaps


def plot_pretraining(runs, path, title="validation loss against tokens seen"):
    """Pretraining runs side by side: each run's validation loss against the tokens it has
    read (step × batch_size × seq_len), and each run's unigram line (the loss of guessing by
    word frequency alone, dashed): a curve that stays on its line has learned no context.

    ``runs`` maps a label to a run folder (holding ``metrics.jsonl`` and ``last.npz``, as
    ``pretrain`` writes them). For an rtd run the curve is its generator's masked-LM loss, the
    one in the units of the others. Returns the image's path.
    """
    from minitransformer.checkpoint import load
    from minitransformer.train import read_history

    curves, dashed, lines = {}, [], {}
    for label, folder in runs.items():
        folder = Path(folder)
        state = load(folder / "last.npz")
        config = state["config"]
        key = "eval_generator_loss" if config["objective"] == "rtd" else "eval_loss"
        points = [(r["step"] * config["batch_size"] * config["seq_len"], r[key])
                  for r in read_history(folder / "metrics.jsonl") if key in r]
        if not points:
            raise ValueError(f"plot_pretraining: {folder / 'metrics.jsonl'} has no {key} rows")
        name = f"{label} (generator)" if config["objective"] == "rtd" else label
        curves[name] = tuple(zip(*points))
        if state.get("unigram_loss") is not None:  # one line per value, across all the runs
            value = round(state["unigram_loss"], 2)
            first, last = lines.get(value, (points[0][0], points[-1][0]))
            lines[value] = (min(first, points[0][0]), max(last, points[-1][0]))
    for value, (first, last) in lines.items():
        name = f"unigram line {value:.2f}"
        curves[name] = ((first, last), (value, value))
        dashed.append(name)
    return plot_curves(curves, path, xlabel="tokens seen", ylabel="validation loss (nats)",
                       title=title, marker="o", dashed=dashed)


def _as_numpy(values):
    return values.numpy() if isinstance(values, Tensor) else backend.to_numpy(values)


def _values(values):
    """A flat list of floats from a Tensor, a NumPy/CuPy array or a sequence of numbers."""
    if isinstance(values, Tensor) or hasattr(values, "dtype"):
        return [float(v) for v in _as_numpy(values).ravel()]
    return [float(v) for v in values]


def plot_attention(weights, tokens, path, key_tokens=None, title=None, mask=None):
    """Heatmaps of attention weights, one panel per head; returns the PNG's path.

    ``weights``: a Tensor or array (T, S), (H, T, S) or (1, H, T, S), e.g. a
    ``MultiHeadAttention.attention_weights`` after a call on one example. Row t is query token t,
    column s is key token s; ``tokens`` label the T rows, ``key_tokens`` the S columns (default:
    ``tokens``, for self-attention). ``mask`` (T, S) bool, True = may attend, greys out the
    cells a query could not see. Colours run from 0 to 1 in every panel so heads compare; small
    maps print each weight in its cell.
    """
    from matplotlib.patches import Rectangle

    values = _as_numpy(weights)
    if values.ndim == 4 and values.shape[0] == 1:
        values = values[0]  # (H, T, S)
    if values.ndim == 2:
        values = values[None]  # one head: (1, T, S)
    if values.ndim != 3:
        raise ValueError(f"plot_attention: weights must be (T, S), (H, T, S) or (1, H, T, S), "
                         f"got shape {tuple(_as_numpy(weights).shape)}")
    n_heads, length, key_length = values.shape
    tokens = [str(t) for t in tokens]
    key_tokens = tokens if key_tokens is None else [str(t) for t in key_tokens]
    if len(tokens) != length or len(key_tokens) != key_length:
        raise ValueError(f"plot_attention: weights {tuple(values.shape)} need {length} query "
                         f"tokens and {key_length} key tokens, got {len(tokens)} and "
                         f"{len(key_tokens)}")
    allowed = None if mask is None else _as_numpy(mask).astype(bool)
    if allowed is not None and allowed.shape != (length, key_length):
        raise ValueError(f"plot_attention: mask must be (T, S) = {(length, key_length)}, got "
                         f"shape {tuple(allowed.shape)}")
    plt = _pyplot()
    columns = {1: 1, 2: 2, 3: 3, 4: 2}.get(n_heads, 4)
    rows = math.ceil(n_heads / columns)
    side = max(2.6, 0.38 * max(length, key_length) + 1.2)  # inches per panel
    size = (side * columns + 1.0, side * rows + 0.6)  # inches, with room for the colour bar
    figure, axes = plt.subplots(rows, columns, figsize=size, squeeze=False, layout="constrained")
    annotate = length * key_length <= 144
    for head, ax in enumerate(axes.flat):
        if head >= n_heads:
            ax.axis("off")
            continue
        image = ax.imshow(values[head], vmin=0.0, vmax=1.0, cmap="Blues")
        ax.set_xticks(range(key_length), key_tokens, rotation=45, ha="right",
                      rotation_mode="anchor")
        ax.set_yticks(range(length), tokens)
        ax.set_title(f"head {head}" if n_heads > 1 else "weights")
        ax.set_xlabel("key (attended to)")
        if head % columns == 0:
            ax.set_ylabel("query (attending)")
        for t in range(length):
            for s in range(key_length):
                if allowed is not None and not allowed[t, s]:
                    ax.add_patch(Rectangle((s - 0.5, t - 0.5), 1, 1, facecolor="#e0e0e0",
                                           edgecolor="white", hatch="///", linewidth=0))
                elif annotate:
                    value = float(values[head, t, s])
                    ax.text(s, t, f"{value:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if value > 0.6 else "black")
    figure.colorbar(image, ax=axes, shrink=0.8, label="attention weight")
    if title:
        figure.suptitle(textwrap.fill(title, int(size[0] * 11)), fontsize=11)  # fit the width
    figure.get_layout_engine().set(h_pad=0.08)
    if allowed is not None:
        figure.supxlabel("hatched: masked out (the query may not attend there)", fontsize=8)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")  # keep the colour bar label
    plt.close(figure)
    return Path(path)


# --------------------------------------------------------------------------- the autograd graph

_COLOURS = {"op": "#dbe9f6", "output": "#fdd0a2", "parameter": "#d9f0d3", "input": "#fff2cc",
            "constant": "#eeeeee"}
_MAX_DRAWN = 300  # beyond this a matplotlib drawing is no longer readable: use the DOT text


def draw_graph(tensor, path=None, names=None, title=None):
    """The autograd graph behind ``tensor``: returns DOT text; with ``path``, also draws a PNG.

    Nodes are tensors, edges go from each input of an op to its output. A node shows
    - the op that made it (the Function's class name: MatMul, ReLU, Sum, ...), or for a leaf its
      name (from ``names``), else "parameter", "input" (requires grad) or "constant";
    - its shape and dtype;
    - after ``backward()``, the gradient norm ‖grad‖ of leaves (and of intermediate tensors
      that called ``retain_grad()``).

    ``names``: a Module (its ``named_parameters()``) or a dict name -> Tensor, to name leaves.
    The PNG is layered: leaves at the bottom, the output at the top, each node one level above
    its highest input; drawn with matplotlib alone. The graph can be drawn after backward (the
    engine frees what ops saved, not the graph's structure).

    Example::

        x, w = mt.randn(4, 3, requires_grad=True), mt.randn(3, 2, requires_grad=True)
        loss = (x @ w).relu().sum()
        loss.backward()
        dot = draw_graph(loss, "graph.png", names={"x": x, "w": w})
        # dot: 'digraph autograd { ... n0 [label="Sum\\n() float32\\n‖grad‖ = 1" ...'
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"draw_graph: expected a Tensor, got {type(tensor).__name__}")
    nodes, edges = _collect_graph(tensor)
    labels = _labels(nodes, _leaf_names(names))
    dot = _to_dot(nodes, edges, labels)
    if path is not None:
        if len(nodes) > _MAX_DRAWN:
            raise ValueError(f"draw_graph: {len(nodes)} nodes are too many to draw legibly (at "
                             f"most {_MAX_DRAWN}); render the returned DOT text with graphviz")
        _draw(nodes, edges, labels, path, title)
    return dot


def _collect_graph(root):
    """Every tensor reachable from ``root`` through ``creator.inputs`` (an explicit stack, no
    recursion), and the edges (input index, output index); node 0 is ``root``."""
    nodes, index, edges = [root], {id(root): 0}, []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.creator is None:
            continue
        for parent in node.creator.inputs:
            if not isinstance(parent, Tensor):
                continue  # a constant argument (a Python number, None)
            if id(parent) not in index:  # by id: Tensor == compares elementwise
                index[id(parent)] = len(nodes)
                nodes.append(parent)
                stack.append(parent)
            edges.append((index[id(parent)], index[id(node)]))
    return nodes, edges


def _leaf_names(names):
    if names is None:
        return {}
    items = names.named_parameters() if hasattr(names, "named_parameters") else names.items()
    return {id(t): name for name, t in items}


def _kind(position, tensor):
    from minitransformer.nn.module import Parameter

    if position == 0:
        return "output"
    if tensor.creator is not None:
        return "op"
    if isinstance(tensor, Parameter):
        return "parameter"
    return "input" if tensor.requires_grad else "constant"


def _labels(nodes, leaf_names):
    """(kind, first line, detail lines) of every node."""
    labels = []
    for position, tensor in enumerate(nodes):
        kind = _kind(position, tensor)
        if tensor.creator is not None:
            first = tensor.creator.function.__name__
        else:
            first = leaf_names.get(id(tensor), "leaf" if kind == "output" else kind)
        details = [f"{tensor.shape} {tensor.dtype}"]
        if tensor.grad is not None:
            details.append(f"‖grad‖ = {_norm(tensor.grad):.3g}")
        labels.append((kind, _shorten(first, 26), details))
    return labels


def _norm(array):
    return math.sqrt(float((array * array).sum()))


def _shorten(text, size):
    return text if len(text) <= size else "…" + text[-(size - 1):]


def _to_dot(nodes, edges, labels):
    def quote(text):
        return text.replace("\\", "\\\\").replace('"', '\\"')

    lines = ["digraph autograd {", "  rankdir=BT;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];']
    for position, (kind, first, details) in enumerate(labels):
        label = "\\n".join(quote(line) for line in [first, *details])
        lines.append(f'  n{position} [label="{label}", fillcolor="{_COLOURS[kind]}"];')
    for source, target in edges:
        lines.append(f"  n{source} -> n{target};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _levels(count, edges):
    """A level per node, the output (node 0) on top: each node sits one level below its lowest
    consumer, so a weight or a side branch is drawn next to where it is used, and the leaves of
    the first op are at the bottom."""
    inputs = [[] for _ in range(count)]
    consumers = [[] for _ in range(count)]
    for source, target in edges:
        inputs[target].append(source)
        consumers[source].append(target)
    waiting = [len(set(users)) for users in consumers]
    ready = [node for node in range(count) if waiting[node] == 0]  # the output
    depth = [0] * count  # ops between a node and the output, on its longest path
    while ready:  # Kahn's order, from the output down: a node once all its consumers are done
        node = ready.pop()
        for source in set(inputs[node]):
            depth[source] = max(depth[source], depth[node] + 1)
            waiting[source] -= 1
            if waiting[source] == 0:
                ready.append(source)
    bottom = max(depth)
    return [bottom - d for d in depth], inputs, consumers


def _layout(count, edges):
    """x (in box widths) and level of every node: order each level by the mean position of its
    neighbours (a few sweeps up and down, to cut crossings), then pull nodes over their
    neighbours while keeping one box width between them."""
    level, inputs, consumers = _levels(count, edges)
    layers = [[] for _ in range(max(level) + 1)]
    for node in range(count):
        layers[level[node]].append(node)
    x = {}
    for layer in layers:
        x.update((node, k - (len(layer) - 1) / 2) for k, node in enumerate(layer))

    def mean_x(node, neighbours):
        near = neighbours[node]
        return sum(x[n] for n in near) / len(near) if near else x[node]

    for sweep in range(8):
        going_up = sweep % 2 == 0
        order = layers[1:] if going_up else layers[-2::-1]
        for layer in order:
            neighbours = inputs if going_up else consumers
            layer.sort(key=lambda node: mean_x(node, neighbours))
            if sweep < 4:  # first settle the order, evenly spaced
                x.update((node, k - (len(layer) - 1) / 2) for k, node in enumerate(layer))
            else:  # then straighten: as near the neighbours as one box apart allows
                both = [inputs[n] + consumers[n] for n in layer]
                wanted = [sum(x[m] for m in near) / len(near) for near in both]
                x.update(zip(layer, _spread(wanted)))
    return x, level


def _spread(wanted):
    """Positions as close to ``wanted`` (sorted order kept) with gaps of at least 1: the mean of
    a left-to-right and a right-to-left pass, each of which keeps the gaps."""
    left, right = list(wanted), list(wanted)
    for k in range(1, len(left)):
        left[k] = max(left[k], left[k - 1] + 1)
    for k in range(len(right) - 2, -1, -1):
        right[k] = min(right[k], right[k + 1] - 1)
    return [(a + b) / 2 for a, b in zip(left, right)]


def _draw(nodes, edges, labels, path, title):
    from matplotlib.patches import FancyBboxPatch

    plt = _pyplot()
    x, level = _layout(len(nodes), edges)
    box_w, box_h, unit_x, unit_y, margin = 1.55, 0.62, 1.8, 1.0, 0.3  # inches
    graph_width = (max(x.values()) - min(x.values())) * unit_x + box_w
    width = max(graph_width + 2 * margin, 5.6)  # at least as wide as the colour key
    left = min(x.values()) - ((width - graph_width) / 2 + box_w / 2) / unit_x  # centred
    top = 0.45 if title else 0.25
    bottom = 0.35  # room for the colour key
    height = max(level) * unit_y + box_h + 2 * margin + top + bottom
    figure = plt.figure(figsize=(width, height))
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    centre = {n: ((x[n] - left) * unit_x,
                  level[n] * unit_y + box_h / 2 + margin + bottom) for n in range(len(nodes))}
    for source, target in set(edges):
        (x0, y0), (x1, y1) = centre[source], centre[target]
        ax.annotate("", xy=(x1, y1 - box_h / 2), xytext=(x0, y0 + box_h / 2), zorder=1,
                    arrowprops={"arrowstyle": "-|>", "color": "#666666", "lw": 0.7,
                                "shrinkA": 0, "shrinkB": 0, "mutation_scale": 9})
    for node, (kind, first, details) in enumerate(labels):
        cx, cy = centre[node]
        ax.add_patch(FancyBboxPatch((cx - box_w / 2, cy - box_h / 2), box_w, box_h,
                                    boxstyle="round,pad=0,rounding_size=0.08", zorder=2,
                                    facecolor=_COLOURS[kind],
                                    edgecolor="#d94801" if kind == "output" else "#555555",
                                    linewidth=1.4 if kind == "output" else 0.7))
        ax.text(cx, cy + box_h / 2 - 0.07, first, ha="center", va="top", fontsize=8,
                fontweight="bold", zorder=3)
        ax.text(cx, cy + box_h / 2 - 0.27, "\n".join(details), ha="center", va="top",
                fontsize=7, linespacing=1.2, zorder=3)
    key = ["blue: op    orange: output    green: parameter", "yellow: input    grey: constant"
           "    arrows: from an op's inputs to its output"]
    ax.text(margin, 0.08, ("\n" if width < 8 else "    ").join(key), fontsize=7,
            color="#444444", va="bottom")
    if title:
        ax.text(margin, height - 0.15, title, fontsize=10, fontweight="bold", va="top")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)
