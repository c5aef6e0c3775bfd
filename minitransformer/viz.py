"""Pictures a person would rather see than numbers: training curves (and, later, attention).

matplotlib is an optional extra: ``pip install "minitransformer[plot]"``. Figures are written to
files with the Agg backend, so no window or display is needed.
"""

from pathlib import Path

__all__ = ["plot_history"]


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
