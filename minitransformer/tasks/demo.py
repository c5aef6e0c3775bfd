"""The demo: why pretraining helps, end to end, on built-in data, in a few minutes on a laptop.

1. Pretrain a small Transformer encoder with masked-LM on the text world's unlabelled corpus.
2. Fine-tune it as a sentiment classifier on the labelled training set.
3. Train the same classifier from scratch on the same data, with the same budget.
4. Test both on sentences whose sentiment words never occur in the labelled training set, and
   print a table; write the training curves as PNG files.

The from-scratch model cannot know the unseen words; the pretrained one learned from the corpus
that "superb" appears where "good" does, and carries the sentiment over.
"""

import os
from dataclasses import replace
from pathlib import Path

from minitransformer.data import text_world
from minitransformer.tasks.finetune import FinetuneConfig, finetune
from minitransformer.tasks.pretrain import PretrainConfig, pretrain

__all__ = ["demo", "demo_configs", "format_table"]

FAST = os.environ.get("MINITRANSFORMER_FAST") == "1"

MODEL = dict(d_model=64, n_heads=4, n_layers=2, d_ff=128, dropout=0.1, max_len=32)


def demo_configs(out_dir="runs/demo", seed=0, fast=FAST, device="cpu", progress=True):
    """The three runs' settings (a fast mode shortens every run, for tests and tutorials)."""
    out = Path(out_dir)
    # the demo replaces its own earlier runs in out_dir (overwrite), so it can be run again
    common = dict(seed=seed, device=device, progress=progress, log_every=10, overwrite=True,
                  **MODEL)
    pretraining = PretrainConfig(
        objective="mlm", data="builtin", tokenizer="word", seq_len=24, mask_prob=0.15,
        steps=150 if fast else 1200, batch_size=64, lr=2e-3, warmup=50, eval_every=100,
        out_dir=str(out / "pretrain"), **common)
    tuning = FinetuneConfig(
        data="builtin", steps=60 if fast else 300, batch_size=32, lr=1e-3, warmup=20,
        eval_every=20, seq_len=24, pooling="mean", freeze_embeddings=True,
        pretrained_lr_scale=0.3, out_dir=str(out / "finetune"), **common)
    scratch = replace(tuning, freeze_embeddings=False, out_dir=str(out / "scratch"))
    return pretraining, tuning, scratch


def demo(out_dir="runs/demo", seed=0, fast=FAST, device="cpu", progress=True, log=print):
    """Run the demo; returns {"pretrained": results, "scratch": results, "pretrain": ...}."""
    pretraining, tuning, scratch = demo_configs(out_dir, seed, fast, device, progress)
    world = text_world(seed=seed)
    log(f"The text world: {world!r}.")
    log("Labelled training sentences use only these sentiment words: "
        f"{', '.join(world.seen_words['positive'] + world.seen_words['negative'])}.")
    log("Test sentences use only these: "
        f"{', '.join(world.unseen_words['positive'] + world.unseen_words['negative'])}.\n")

    pre = pretrain(pretraining, log=log)
    tuned = finetune(replace(tuning, init_from=str(pre["checkpoint"])), log=log)
    base = finetune(scratch, tokenizer=pre["tokenizer"], log=log)

    rows = [("masked-LM pretraining", "", "", pre["seconds"]),
            ("fine-tuned from pretraining", tuned["valid_accuracy"], tuned["test_accuracy"],
             tuned["seconds"]),
            ("trained from scratch", base["valid_accuracy"], base["test_accuracy"],
             base["seconds"])]
    log("\n" + format_table(rows))
    plots = _plot(pre, tuned, base, Path(out_dir))
    if plots:
        log("\nTraining curves: " + ", ".join(str(p) for p in plots))
    gain = tuned["test_accuracy"] - base["test_accuracy"]
    log(f"\nPretraining on unlabelled text changed test accuracy on unseen words by "
        f"{100 * gain:+.1f} percentage points ({base['test_accuracy']:.1%} from scratch, "
        f"{tuned['test_accuracy']:.1%} fine-tuned).")
    return {"pretrain": pre, "pretrained": tuned, "scratch": base, "plots": plots}


def format_table(rows):
    """The results table: run, validation accuracy (seen words), test accuracy (unseen words),
    seconds."""
    header = f"{'run':<30} {'valid (seen words)':>19} {'test (unseen words)':>20} {'time':>7}"
    lines = [header, "-" * len(header)]
    for name, valid, test, seconds in rows:
        valid = f"{valid:.1%}" if valid != "" else ""
        test = f"{test:.1%}" if test != "" else ""
        lines.append(f"{name:<30} {valid:>19} {test:>20} {seconds:>6.0f}s")
    return "\n".join(lines)


def _plot(pre, tuned, base, out):
    try:
        from minitransformer.viz import plot_history
    except ImportError:
        return []
    plots = []
    try:
        plots.append(plot_history(pre["out_dir"] / "metrics.jsonl", out / "pretrain.png",
                                  title="masked-LM pretraining"))
        plots.append(plot_history(tuned["out_dir"] / "metrics.jsonl", out / "finetune.png",
                                  title="fine-tuned from pretraining"))
        plots.append(plot_history(base["out_dir"] / "metrics.jsonl", out / "scratch.png",
                                  title="trained from scratch"))
    except ImportError as error:  # matplotlib missing: say how to get the plots
        print(f"(no plots: {error})")
    return plots
