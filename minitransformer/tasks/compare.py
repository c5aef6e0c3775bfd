"""Is pretraining worth it, and from how many labels on? One resumable sweep answers it: every
start (from scratch, GloVe vectors, each pretrained checkpoint) fine-tuned on growing numbers of
labelled examples, several seeds each, beside a bag-of-words baseline on the same examples.

    config = load_compare_config("configs/imdb_compare.toml")
    result = compare(config)            # result["table"]: the Markdown table

For each size, seed and start, one ``finetune`` run: ``n_train=size`` examples drawn with that
seed from the training split after its validation hold-out (``load_classification_data``), the
same examples and the same number of steps for every start; it tests the checkpoint its
validation accuracy liked best on the whole test set. The baseline sees the same training,
validation and test examples. The settings are in ``compare_config``.

Files under ``out_dir``: ``compare.csv`` (a row per finished run, written at once and atomically,
so a sweep killed at any moment resumes by skipping the runs it holds), ``compare.md`` (starts
by sizes, cells "mean ± std (n)" of test accuracy in percent), ``compare.png`` (test accuracy
against labelled examples), and ``runs/<start>-n<size>-s<seed>/`` (each run's checkpoints,
metrics and log).
"""

import csv
import os
import shutil
import statistics
from pathlib import Path

from minitransformer.data import load_imdb
from minitransformer.tasks.baseline import bag_of_words_baseline, require_sklearn
from minitransformer.tasks.common import Stopwatch
from minitransformer.tasks.compare_config import (
    BASELINE,
    CompareConfig,
    budget_steps,
    describe_budget,
    load_compare_config,
    run_config,
)
from minitransformer.tasks.finetune import finetune, load_classification_data

__all__ = [
    "COLUMNS", "CompareConfig", "compare", "load_compare_config", "read_rows", "summary_table",
    "sweep_plan", "write_rows",
]

COLUMNS = ("start", "size", "seed", "n_train", "steps", "valid_accuracy", "test_accuracy",
           "seconds", "note")


def compare(config, log=print):
    """Run every (start, size, seed) of ``config`` (a CompareConfig) not yet in compare.csv, then
    write the table and the plot.

    Returns a dict: rows (the sweep's rows, dicts with COLUMNS), table (Markdown text), sizes
    (the sizes resolved to example counts), ran and skipped (numbers of runs), and the paths
    csv, markdown and plot (None without matplotlib).
    """
    if not isinstance(config, CompareConfig):
        raise TypeError(f"compare: config should be a CompareConfig, got "
                        f"{type(config).__name__} (load_compare_config(path) reads a file)")
    _check_files(config)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    notes = []
    reviews = _read_reviews(config.data, log)
    sizes = _resolve_sizes(config, reviews, log)
    if config.baseline:
        try:
            require_sklearn("compare")
        except ImportError as error:
            notes.append(f"The baseline was skipped: {error}.")
            log(f"compare: {notes[-1]}")
    plan = sweep_plan(config, sizes, baseline=config.baseline and not notes)
    path = out / "compare.csv"
    rows = read_rows(path)
    done = {_key(row) for row in rows}
    skipped = sum(key in done for key in plan)
    if skipped:
        log(f"compare: {skipped} of {len(plan)} runs are already in {path}; skipping them")
        _warn_of_other_budgets(config, rows, plan, log)
    ran, subset_of, subset, noted = 0, None, None, set()
    try:
        for number, (start, size, seed) in enumerate(plan, 1):
            if (start, size, seed) in done:
                continue
            if subset_of != (size, seed):  # the runs of one (size, seed) follow each other
                subset_of, subset = (size, seed), _subset(config, size, seed, reviews)
                if len(subset[0]) != size and size not in noted:
                    noted.add(size)
                    log(f"compare: {_size_note(config, size, len(subset[0]))}")
            label = f"[{number}/{len(plan)}] {start} n={size:,} seed={seed}"
            if config.progress:
                log(f"{label}: {budget_steps(config, size):,} steps ..." if start != BASELINE
                    else f"{label}: TF-IDF + logistic regression ...")
            row = _run(config, start, size, seed, reviews, subset)
            rows.append(row)
            write_rows(path, rows)
            ran += 1
            log(f"{label}: test {row['test_accuracy']:.1%} (validation "
                f"{row['valid_accuracy']:.1%}), {row['seconds']:.0f} s")
    except KeyboardInterrupt:
        log(f"compare: interrupted; {len(rows)} finished runs are in {path}; the same command "
            "continues the sweep")
        raise
    planned = set(plan)
    return _report(config, [row for row in rows if _key(row) in planned], sizes, notes, log,
                   {"ran": ran, "skipped": skipped, "csv": path})


def sweep_plan(config, sizes, baseline=None):
    """The (start, size, seed) of every run, in order: for each size, each of its seeds (all up
    to max_seeded_size, else the first), each start, then the baseline (when ``baseline``,
    default ``config.baseline``)."""
    baseline = config.baseline if baseline is None else baseline
    names = [start["name"] for start in config.starts] + ([BASELINE] if baseline else [])
    return [(name, size, seed) for size in sizes
            for seed in (config.seeds if size <= config.max_seeded_size else config.seeds[:1])
            for name in names]


def _key(row):
    return row["start"], row["size"], row["seed"]


def _warn_of_other_budgets(config, rows, plan, log):
    """Finished runs are kept as they are, even when the budget changed since: say so."""
    planned = set(plan)
    other = [row for row in rows if _key(row) in planned and row["start"] != BASELINE
             and row["steps"] != budget_steps(config, row["size"])]
    if other:
        log(f"compare: {len(other)} of the finished runs trained for other numbers of steps "
            "than the budget now gives; delete their rows from compare.csv to redo them")


def _check_files(config):
    """Every file the sweep will need, before the first of many runs."""
    wanted = [("data", config.data)] if config.data != "builtin" else []
    for start in config.starts:
        settings = {**config.finetune, **start}
        wanted += [(f"start {start['name']!r}: {key}", settings[key])
                   for key in ("init_from", "tokenizer_from", "glove") if settings.get(key)]
    for what, path in wanted:
        if not Path(path).exists():
            raise FileNotFoundError(f"compare: {what} = {path!r}: no such file or folder")


def _read_reviews(data, log):
    """IMDB's (train, test) lists of (text, label), read once for every run; None: built-in."""
    if data == "builtin":
        return None
    clock = Stopwatch()
    reviews = tuple(list(zip(*load_imdb(data, split))) for split in ("train", "test"))
    log(f"compare: read {len(reviews[0]):,} training and {len(reviews[1]):,} test reviews "
        f"from {data} ({clock.elapsed():.0f} s)")
    return reviews


def _resolve_sizes(config, reviews, log):
    """The sizes as example counts, ascending: "all" and any size above the training split
    (after validation) become its length."""
    probe = run_config(config, {}, None, config.seeds[0], config.out_dir)
    available = len(load_classification_data(probe, reviews)[0])
    sizes = []
    for size in config.sizes:
        if size != "all" and size > available:
            log(f"compare: size {size:,} is more than the {available:,} training examples; "
                "it means all of them")
        count = available if size == "all" else min(size, available)
        if count not in sizes:
            sizes.append(count)
    return sorted(sizes)


def _subset(config, size, seed, reviews):
    """(train, valid, test) of one (size, seed), exactly as finetune draws them."""
    split = run_config(config, {}, size, seed, config.out_dir)
    return load_classification_data(split, reviews)[:3]


def _size_note(config, size, n_train):
    return (f"Size {size:,} trained on {n_train:,} labelled examples: the data {config.data!r} "
            "gives no subset of that size.")


def _run(config, start, size, seed, reviews, subset):
    """One finished run as a row of compare.csv."""
    train, valid, test = subset
    row = {"start": start, "size": size, "seed": seed, "n_train": len(train), "note": ""}
    if start == BASELINE:
        result = bag_of_words_baseline(train, valid, test)
        row.update(steps=None, note=f"C={result['C']:g}, {result['features']:,} features")
    else:
        settings = next(s for s in config.starts if s["name"] == start)
        out = Path(config.out_dir) / "runs" / f"{start}-n{size}-s{seed}"
        if out.exists():  # what a killed run left behind
            shutil.rmtree(out)
        lines = []
        result = finetune(run_config(config, settings, size, seed, out), log=lines.append,
                          reviews=reviews)
        (out / "log.txt").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        if not config.keep_checkpoints:
            for checkpoint_path in out.glob("*.npz"):
                checkpoint_path.unlink()
        row["steps"] = budget_steps(config, size)
    row.update({key: result[key] for key in ("valid_accuracy", "test_accuracy", "seconds")})
    return row


# --------------------------------------------------------------------------- compare.csv


def read_rows(path):
    """The rows of a compare.csv (none when the file does not exist), values typed."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or COLUMNS)]
        if missing:
            raise ValueError(f"compare: {path} lacks the column(s) {', '.join(missing)}; it is "
                             "not a compare.csv (move it away to start a new sweep)")
        return [_typed(row, path, line) for line, row in enumerate(reader, 2)]


def _typed(row, path, line):
    try:
        return {"start": row["start"], "size": int(row["size"]), "seed": int(row["seed"]),
                "n_train": int(row["n_train"]),
                "steps": int(row["steps"]) if row["steps"] else None,
                "valid_accuracy": float(row["valid_accuracy"]),
                "test_accuracy": float(row["test_accuracy"]), "seconds": float(row["seconds"]),
                "note": row["note"] or ""}
    except (TypeError, ValueError) as error:
        raise ValueError(f"compare: {path} line {line} is not a valid row ({error}); delete "
                         "that line to redo its run") from None


def write_rows(path, rows):
    """Write every row to ``path`` atomically: a temporary file, flushed and synced to disk,
    then renamed over the old one, so a kill at any moment leaves the old or the new file."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "steps": "" if row["steps"] is None else row["steps"]})
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


# --------------------------------------------------------------------------- the report


def _statistics(rows):
    """{(start, size): (mean, std or None, n)} of test accuracy in percent; std over seeds
    (sample standard deviation, n - 1), None for a single run."""
    groups = {}
    for row in rows:
        groups.setdefault((row["start"], row["size"]), []).append(100 * row["test_accuracy"])
    return {key: (statistics.mean(values),
                  statistics.stdev(values) if len(values) > 1 else None, len(values))
            for key, values in groups.items()}


def summary_table(rows, starts, sizes, notes=()):
    """A Markdown table: a row per start (in the order given), a column per size, each cell the
    test accuracy "mean ± std (n)" in percent over the n seeds run ("–" where none)."""
    stats = _statistics(rows)
    lines = ["| start | " + " | ".join(f"{size:,}" for size in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for start in starts:
        cells = []
        for size in sizes:
            mean, std, count = stats.get((start, size), (None, None, 0))
            cells.append("–" if not count else f"{mean:.1f} ({count})" if std is None
                         else f"{mean:.1f} ± {std:.1f} ({count})")
        lines.append(f"| {start} | " + " | ".join(cells) + " |")
    return "\n".join(lines + [""] + list(notes)).rstrip() + "\n"


def _report(config, rows, sizes, notes, log, result):
    """compare.md (printed too) and compare.png."""
    out = Path(config.out_dir)
    starts = [start["name"] for start in config.starts]
    starts += [BASELINE] if any(row["start"] == BASELINE for row in rows) else []
    seeds = ", ".join(map(str, config.seeds))
    notes += [_size_note(config, size, n_train) for size, n_train in
              dict.fromkeys((r["size"], r["n_train"]) for r in rows if r["n_train"] != r["size"])]
    table = summary_table(rows, starts, sizes, [
        f"Test accuracy (%) by labelled training examples, on {config.data}: mean ± std (runs) "
        f"over seeds {seeds} (the first only above {config.max_seeded_size:,} examples); "
        f"fine-tuning budget {describe_budget(config)}.", *notes])
    markdown = out / "compare.md"
    markdown.write_text(f"# Comparison of starts\n\n{table}", encoding="utf-8")
    log(table)
    plot = None
    try:
        plot = _plot(rows, starts, sizes, out / "compare.png") if rows else None
    except ImportError as error:  # matplotlib is an optional extra
        log(f"compare: no plot ({error})")
    log(f"compare: {', '.join(str(p) for p in (result['csv'], markdown, plot) if p)}")
    return {**result, "rows": rows, "table": table, "sizes": sizes, "markdown": markdown,
            "plot": plot}


def _plot(rows, starts, sizes, path):
    from minitransformer.viz import plot_curves

    stats = _statistics(rows)
    curves, errors = {}, {}
    for start in starts:
        points = [(size, *stats[(start, size)][:2]) for size in sizes if (start, size) in stats]
        if points:
            x, y, std = zip(*points)
            curves[start], errors[start] = (x, y), [value or 0.0 for value in std]
    return plot_curves(curves, path, xlabel="labelled training examples",
                       ylabel="test accuracy (%)", title="test accuracy, mean ± std over seeds",
                       logx=True, marker="o", errors=errors, dashed=[BASELINE],
                       xticks=sizes)
