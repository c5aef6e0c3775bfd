"""Fine-tuned accuracy against pretraining tokens: does a longer pretraining run make a better
start, and how much longer would it have to be?

Reads the ``compare.csv`` of a sweep whose starts are checkpoints of one pretraining run taken
along the way (``keep_every``), each named on the command line with its step (``--point
NAME=STEP``). Prints, for each point, the tokens seen (step × tokens per step), the pretraining
validation loss at that step (from the run's ``metrics.jsonl``) and the fine-tuned test
accuracy, then every other start of the sweep as a reference; draws the accuracy against tokens
(log x) with the references as flat lines (those named in ``--lines``, or all) and the
baseline dashed.

    python examples/pretraining_tokens.py runs/imdb/pretraining_tokens/compare.csv \\
        --point clm-2M=500 --point clm-4M=1000 --point clm-8M=2000 \\
        --metrics runs/imdb/clm/metrics.jsonl --baseline 84.1 --lines scratch,glove,scratch-d50 \\
        --out docs/images/imdb_pretraining_tokens.png

Needs matplotlib for the figure (``pip install ".[plot]"``).
"""

import argparse
import statistics

from minitransformer.tasks.compare import read_rows
from minitransformer.train import read_history
from minitransformer.viz import plot_curves


def parse_point(text):
    """``NAME=STEP`` as (name, step)."""
    name, _, step = text.partition("=")
    if not name or not step.isdigit():
        raise argparse.ArgumentTypeError(f"--point takes NAME=STEP (e.g. clm-2M=500), got {text!r}")
    return name, int(step)


def accuracy_by_start(rows):
    """The mean test accuracy (%) of each start over its rows (seeds), in the file's order."""
    found = {}
    for row in rows:
        found.setdefault(row["start"], []).append(100 * row["test_accuracy"])
    return {start: statistics.mean(values) for start, values in found.items()}


def eval_loss_at(history, step):
    """The validation loss logged at ``step`` (None when that step was not evaluated)."""
    for row in history:
        if row["step"] == step and "eval_loss" in row:
            return row["eval_loss"]
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", help="the sweep's compare.csv")
    parser.add_argument("--point", type=parse_point, action="append", required=True,
                        metavar="NAME=STEP", help="a start that is the checkpoint at STEP")
    parser.add_argument("--tokens-per-step", type=int, default=32 * 128,
                        help="batch_size × seq_len of the pretraining run (default 4,096)")
    parser.add_argument("--metrics", help="the pretraining run's metrics.jsonl")
    parser.add_argument("--baseline", type=float, help="a baseline's accuracy (%%), dashed")
    parser.add_argument("--lines", help="the references drawn as flat lines, comma-separated "
                        "(default: every start that is not a --point)")
    parser.add_argument("--out", default="pretraining_tokens.png")
    args = parser.parse_args(argv)

    accuracy = accuracy_by_start(read_rows(args.csv))
    missing = [name for name, _ in args.point if name not in accuracy]
    if missing:
        raise SystemExit(f"pretraining_tokens: {args.csv} has no runs of {', '.join(missing)}; "
                         f"its starts are {', '.join(accuracy)}")
    history = read_history(args.metrics) if args.metrics else []
    points = sorted(args.point, key=lambda point: point[1])
    tokens = [step * args.tokens_per_step for _, step in points]
    print(f"{'start':<22}{'steps':>7}{'tokens':>13}{'valid loss':>12}{'test':>9}")
    for (name, step), seen in zip(points, tokens):
        loss = eval_loss_at(history, step)
        loss = f"{loss:.3f}" if loss is not None else "-"
        print(f"{name:<22}{step:>7,}{seen:>13,}{loss:>12}{accuracy[name]:>8.1f}%")
    references = {name: value for name, value in accuracy.items()
                  if name not in dict(args.point)}
    for name, value in references.items():
        print(f"{name:<22}{'':>7}{'':>13}{'':>12}{value:>8.1f}%")

    ends = [tokens[0], tokens[-1]]
    curves = {"pretrained start": (tokens, [accuracy[name] for name, _ in points])}
    drawn = args.lines.split(",") if args.lines else list(references)
    unknown = [name for name in drawn if name not in references]
    if unknown:
        raise SystemExit(f"pretraining_tokens: --lines names {', '.join(unknown)}, which are not "
                         f"references here ({', '.join(references)})")
    curves.update({name: (ends, [references[name]] * 2) for name in drawn})
    dashed = ()
    if args.baseline is not None:
        curves["bag-of-words baseline"] = (ends, [args.baseline] * 2)
        dashed = ("bag-of-words baseline",)
    path = plot_curves(curves, args.out, xlabel="pretraining tokens seen",
                       ylabel="test accuracy (%)", logx=True, marker="o", dashed=dashed,
                       xticks=tokens, title="fine-tuned accuracy against pretraining tokens")
    print(f"figure: {path}")
    return tokens, accuracy


if __name__ == "__main__":
    main()
