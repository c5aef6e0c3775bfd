"""Which explanation of an IMDB classifier is faithful? Deletion curves on real reviews.

    python benchmarks/explain_faithfulness.py runs/imdb/explain_clf/best.npz \
        --data ../shared/data/aclImdb_v1.tar.gz --n 500 --seed 0 --out docs/images

Loads a checkpoint of ``minitransformer finetune``, draws ``--n`` test reviews (seeded), cuts
each to the model's ``seq_len`` (with <cls>), and measures the deletion curve of attention
rollout, last-layer attention and gradient × input against random deletion
(``explain.compare_explanations``). Prints the table (Markdown), the classifier's accuracy on
the drawn reviews, the wall time and the load average before and after; writes
OUT/explain_deletion_curves.png (the mean curves) and OUT/explain_three_reviews.png (the three
shortest reviews of the draw with at least 25 tokens, shaded by each explanation).
"""

import argparse
import random
import sys
import time
from pathlib import Path

import minitransformer as mt
import minitransformer.explain as explain
from minitransformer.data import load_imdb


def load_average():
    try:
        return Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return ["?"] * 3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a checkpoint of minitransformer finetune")
    parser.add_argument("--data", default="../shared/data/aclImdb_v1.tar.gz",
                        help="the aclImdb folder or aclImdb_v1.tar.gz")
    parser.add_argument("--n", type=int, default=500, help="test reviews drawn (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="draws the reviews and the random "
                        "deletion orders (default 0)")
    parser.add_argument("--draws", type=int, default=3, help="random orders averaged (default 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="reviews explained together")
    parser.add_argument("--out", default="docs/images", help="where the two figures go")
    args = parser.parse_args(argv)

    start, load_before = time.perf_counter(), load_average()
    model, tokenizer, config = explain.load_classifier(args.checkpoint)
    texts, labels = load_imdb(args.data, "test")
    chosen = random.Random(args.seed).sample(range(len(texts)), args.n)
    text_len = config.seq_len if model.causal else config.seq_len - 1  # <cls> takes one place
    examples = [tokenizer.encode(texts[i])[:text_len] for i in chosen]
    read = time.perf_counter() - start

    table = explain.compare_explanations(
        model, examples, draws=args.draws, seed=args.seed, batch_size=args.batch_size,
        progress=lambda line: print(line, file=sys.stderr, flush=True))
    predicted = table.curves["random"].target
    accuracy = sum(int(p) == labels[i] for p, i in zip(predicted.tolist(), chosen)) / args.n
    lengths = sorted(len(example) for example in examples)
    print(f"checkpoint {args.checkpoint}: pooling {model.pooling}, seq_len {config.seq_len}; "
          f"{args.n} test reviews (seed {args.seed}), {lengths[len(lengths) // 2]} tokens "
          f"(median), accuracy {accuracy:.1%} on them")
    print(table.format(columns=(0.1, 0.2, 0.5)))
    rows = {row["method"]: row for row in table.rows()}
    random_aucs = table.curves["random"].aucs
    for name in explain.EXPLANATIONS:
        difference = table.curves[name].aucs - random_aucs  # paired, per review
        error = difference.std(ddof=1) / len(difference) ** 0.5
        print(f"{name}: AUC - random AUC = {difference.mean():+.3f} ± {error:.3f} (paired s.e.)")
    best = min(explain.EXPLANATIONS, key=lambda name: rows[name]["auc"])
    print(f"most faithful: {best} (AUC {rows[best]['auc']:.3f}; random "
          f"{rows['random']['auc']:.3f})")

    out = Path(args.out)
    try:
        curves = {name: (curve.fractions, curve.curve) for name, curve in table.curves.items()}
        path = mt.viz.plot_curves(
            curves, out / "explain_deletion_curves.png", marker="o", dashed=("random",),
            xlabel="fraction of the review's tokens deleted (highest-ranked first, <pad>)",
            ylabel="p(predicted class), mean", title=f"Deletion curves, {args.n} IMDB test "
            "reviews (lower = more faithful)")
        print(f"figure: {path}")
        short = sorted((i for i, example in enumerate(examples) if len(example) >= 25),
                       key=lambda i: len(examples[i]))[:3]  # the three shortest (25+ tokens)
        panels = []
        for i in short:
            result = explain.explain_text(model, tokenizer, texts[chosen[i]], config.seq_len)
            verdict = (f"review {chosen[i]} ({'pos' if labels[chosen[i]] else 'neg'}), "
                       f"predicted {result.label(result.predicted)} "
                       f"{result.probabilities[result.predicted]:.2f}")
            panels += [(f"{verdict}: {name}", tokens, scores)
                       for name, tokens, scores in result.panels()]
        path = explain.plot_token_scores(panels, out / "explain_three_reviews.png", columns=3,
                                         per_line=10, title="Three short test reviews: red pushes "
                                         "toward the prediction (gradient×input) or holds a "
                                         "large share (rollout, attention)")
        print(f"figure: {path}")
    except ImportError as error:
        print(f"(no figures: {error})")
    print(f"wall time {time.perf_counter() - start:.0f} s (reading and encoding {read:.0f} s); "
          f"load average before {' '.join(load_before)}, after {' '.join(load_average())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
