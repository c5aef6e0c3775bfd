"""The comparison sweep: starts x sizes x seeds beside a baseline, resumable, on the same examples
for every start; its settings file and its clear errors."""

import csv
import importlib.util
import re
from pathlib import Path

import pytest

import minitransformer.tasks.compare as compare_module
import minitransformer.tasks.finetune as finetune_module
from minitransformer.cli import main
from minitransformer.tasks.compare import (
    COLUMNS,
    CompareConfig,
    compare,
    load_compare_config,
    read_rows,
    summary_table,
    sweep_plan,
    write_rows,
)
from minitransformer.tasks.compare_config import budget_steps, run_config
from minitransformer.tasks.config import ConfigError, read_toml
from minitransformer.tasks.finetune import load_classification_data
from minitransformer.tasks.pretrain import PretrainConfig, pretrain

TINY = dict(d_model=16, n_heads=2, n_layers=1, d_ff=32, max_len=32, seq_len=24, warmup=2)


def quiet(*args):
    pass


@pytest.fixture(autouse=True)
def in_tmp(monkeypatch, tmp_path):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def mlm_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlm")
    pretrain(PretrainConfig(steps=4, eval_every=4, seq_len=12, out_dir=str(out), progress=False,
                            **{k: v for k, v in TINY.items() if k != "seq_len"}), log=quiet)
    return str(out / "last.npz")


def tiny_sweep(checkpoint, **changes):
    settings = dict(data="builtin", sizes=[100, "all"], seeds=[0, 1], epochs=1, min_steps=3,
                    max_steps=6, evals=2, baseline=False, finetune=dict(TINY), out_dir="cmp",
                    starts=[{"name": "scratch"}, {"name": "mlm", "init_from": checkpoint}])
    return CompareConfig(**{**settings, **changes})


def write_imdb(root, n_train=30, n_test=10):
    """A tiny aclImdb layout: {train,test}/{pos,neg}/<id>_<rating>.txt, sentiment in the words."""
    words = {"pos": ["great", "wonderful", "superb"], "neg": ["awful", "boring", "terrible"]}
    for split, count in (("train", n_train), ("test", n_test)):
        for label, rating in (("pos", 9), ("neg", 2)):
            folder = root / "aclImdb" / split / label
            folder.mkdir(parents=True)
            for index in range(count):
                word = words[label][index % 3]
                text = f"review {index} of a film : it was {word} , the plot {index % 7} ."
                (folder / f"{index}_{rating}.txt").write_text(text, encoding="utf-8")
    return str(root / "aclImdb")


# --------------------------------------------------------------------------- the sweep


def test_sweep_writes_rows_table_and_plot(mlm_checkpoint):
    lines = []
    result = compare(tiny_sweep(mlm_checkpoint), log=lines.append)
    assert result["ran"] == 8 and result["skipped"] == 0 and result["sizes"] == [100, 400]
    with open("cmp/compare.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 8
    assert {(r["start"], r["size"], r["seed"]) for r in rows} == {
        (start, size, seed) for start in ("scratch", "mlm") for size in ("100", "400")
        for seed in ("0", "1")}
    assert all(r["steps"] == "6" if r["size"] == "400" else r["steps"] == "4" for r in rows)
    assert all(0.0 <= float(r["test_accuracy"]) <= 1.0 for r in rows)
    table = (result["markdown"]).read_text(encoding="utf-8")
    assert "| start | 100 | 400 |" in table and result["table"] in table
    assert len(re.findall(r"\| \d+\.\d ± \d+\.\d \(2\)", table)) == 4
    assert any("| scratch |" in line for line in lines)  # the table is printed too
    assert any(line.startswith("[8/8] mlm n=400 seed=1: test ") for line in lines)
    if importlib.util.find_spec("matplotlib") is None:
        assert result["plot"] is None
    else:
        assert result["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run = result["csv"].parent / "runs" / "mlm-n400-s1"
    assert (run / "log.txt").read_text(encoding="utf-8").startswith("finetune (pretrained)")
    assert (run / "best.npz").exists() and (run / "metrics.jsonl").exists()


def test_a_killed_sweep_resumes_without_redoing_finished_runs(mlm_checkpoint, monkeypatch):
    real_finetune, calls, kill_at = compare_module.finetune, [], [3]

    def counting_finetune(config, log=print, reviews=None):
        calls.append((config.out_dir, config.n_train, config.seed))
        if len(calls) in kill_at:  # Ctrl-C during the third run
            raise KeyboardInterrupt
        return real_finetune(config, log=log, reviews=reviews)

    monkeypatch.setattr(compare_module, "finetune", counting_finetune)
    lines = []
    with pytest.raises(KeyboardInterrupt):
        compare(tiny_sweep(mlm_checkpoint), log=lines.append)
    assert len(read_rows("cmp/compare.csv")) == 2 and "interrupted; 2 finished" in lines[-1]
    calls.clear()
    kill_at.clear()
    result = compare(tiny_sweep(mlm_checkpoint), log=lines.append)
    assert len(calls) == 6 and result["ran"] == 6 and result["skipped"] == 2
    assert "compare: 2 of 8 runs are already in cmp/compare.csv; skipping them" in lines
    assert calls[0] == ("cmp/runs/scratch-n100-s1", 100, 1)  # the killed run, redone
    calls.clear()
    lines.clear()
    again = compare(tiny_sweep(mlm_checkpoint, max_steps=5), log=lines.append)  # only the report
    assert calls == [] and again["skipped"] == 8
    assert again["table"].splitlines()[:4] == result["table"].splitlines()[:4]  # same cells
    assert len(read_rows("cmp/compare.csv")) == 8
    assert "compare: 4 of the finished runs trained for other numbers of steps" in lines[1]


def test_sizes_above_max_seeded_size_run_the_first_seed_only():
    config = CompareConfig(seeds=[3, 4, 5], max_seeded_size=4000, starts=[{"name": "a"}],
                           baseline=True)
    plan = sweep_plan(config, [250, 22500])
    assert plan[:2] == [("a", 250, 3), ("baseline", 250, 3)]
    assert [seed for _, size, seed in plan if size == 22500] == [3, 3]
    assert len(plan) == 3 * 2 + 2


def test_the_budget_depends_on_the_size_alone():
    config = CompareConfig(epochs=4, min_steps=150, max_steps=1500, evals=5,
                           finetune={"batch_size": 32},
                           starts=[{"name": "scratch"}, {"name": "big", "n_heads": 2}])
    assert [budget_steps(config, n) for n in (250, 1000, 4000, 22500)] == [150, 150, 500, 1500]
    runs = [run_config(config, start, 4000, 1, "x") for start in config.starts]
    assert {(r.steps, r.eval_every, r.n_train, r.seed, r.batch_size) for r in runs} == {
        (500, 100, 4000, 1, 32)}
    assert runs[1].n_heads == 2 and not runs[0].progress


def test_subsets_are_seeded_and_disjoint_from_validation(tmp_path):
    config = CompareConfig(data=write_imdb(tmp_path), finetune={"valid_fraction": 0.2})

    def split(size, seed):
        return load_classification_data(run_config(config, {}, size, seed, "x"))

    train, valid, test, _ = split(20, seed=0)
    assert len(train) == 20 and len(valid) == 12 and len(test) == 20
    assert not {text for text, _ in train} & {text for text, _ in valid}
    assert split(20, seed=0)[:2] == (train, valid)  # the same seed, the same subset
    assert split(20, seed=1)[0] != train
    assert {text for text, _ in split(40, seed=0)[0]} >= {text for text, _ in train}


# --------------------------------------------------------------------------- the baseline


def test_baseline_on_a_small_imdb_layout_reads_the_reviews_once(tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    real_load, reads = compare_module.load_imdb, []
    monkeypatch.setattr(compare_module, "load_imdb",
                        lambda path, split: reads.append(split) or real_load(path, split))
    monkeypatch.setattr(finetune_module, "load_imdb", None)  # finetune gets the reviews read
    config = CompareConfig(data=write_imdb(tmp_path), sizes=[20, 1000], seeds=[0, 1],
                           starts=[{"name": "scratch"}], baseline=True, epochs=1, min_steps=2,
                           max_steps=2, finetune=dict(TINY), out_dir="cmp")
    lines = []
    result = compare(config, log=lines.append)
    assert reads == ["train", "test"] and result["sizes"] == [20, 54]
    assert "compare: size 1,000 is more than the 54 training examples; it means all of them" \
        in lines
    baseline = [row for row in result["rows"] if row["start"] == "baseline"]
    assert [(row["size"], row["n_train"]) for row in baseline] == [(20, 20)] * 2 + [(54, 54)] * 2
    assert all(row["test_accuracy"] > 0.8 and row["note"].startswith("C=") for row in baseline)
    assert all(row["steps"] is None and row["seconds"] > 0 for row in baseline)
    assert "| baseline |" in result["table"]


def test_without_sklearn_the_baseline_is_skipped_with_a_note(mlm_checkpoint, monkeypatch):
    def missing(what):
        raise ImportError(f"{what}: the baseline needs scikit-learn: pip install scikit-learn")

    monkeypatch.setattr(compare_module, "require_sklearn", missing)
    lines = []
    result = compare(tiny_sweep(mlm_checkpoint, baseline=True, sizes=["all"], seeds=[0]),
                     log=lines.append)
    assert {row["start"] for row in result["rows"]} == {"scratch", "mlm"}
    assert "The baseline was skipped: compare: the baseline needs scikit-learn" in \
        result["table"]
    assert any("pip install scikit-learn" in line for line in lines)


def test_summary_table_cells_are_mean_std_and_count():
    rows = [{"start": "a", "size": 10, "test_accuracy": acc} for acc in (0.8, 0.9)]
    rows.append({"start": "b", "size": 10, "test_accuracy": 0.5})
    table = summary_table(rows, ["a", "b"], [10, 2000], ["A note."])
    assert table.splitlines() == ["| start | 10 | 2,000 |", "|---|---|---|",
                                  "| a | 85.0 ± 7.1 (2) | – |", "| b | 50.0 (1) | – |", "",
                                  "A note."]


def test_rows_are_written_whole_and_a_foreign_csv_is_refused(tmp_path):
    row = {"start": "a", "size": 10, "seed": 0, "n_train": 10, "steps": None,
           "valid_accuracy": 0.5, "test_accuracy": 0.25, "seconds": 1.5, "note": "C=1"}
    write_rows(tmp_path / "c.csv", [row, {**row, "seed": 1, "steps": 7}])
    assert read_rows(tmp_path / "c.csv") == [row, {**row, "seed": 1, "steps": 7}]
    assert [p.name for p in tmp_path.iterdir()] == ["c.csv"]  # no temporary file left
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="other.csv lacks the column.*not a compare.csv"):
        read_rows(tmp_path / "other.csv")


# --------------------------------------------------------------------------- settings


def test_the_shipped_compare_files_load():
    configs = Path(__file__).resolve().parents[2] / "configs"
    imdb = load_compare_config(configs / "imdb_compare.toml")
    assert [s["name"] for s in imdb.starts] == ["scratch", "glove", "mlm"]
    assert imdb.sizes == [250, 1000, 4000, "all"] and imdb.seeds == [0, 1, 2]
    builtin = load_compare_config(configs / "builtin_compare.toml")
    assert builtin.data == "builtin" and builtin.baseline
    curve = load_compare_config(configs / "imdb_curve.toml")
    strategies = load_compare_config(configs / "imdb_strategies.toml")
    assert [s["name"] for s in curve.starts] == ["scratch", "mlm", "clm"]
    assert curve.sizes == [100, 250, 1000, 4000] and curve.out_dir == strategies.out_dir
    assert curve.finetune == strategies.finetune  # the same fine-tuning as the strategy table
    tokens = load_compare_config(configs / "imdb_pretraining_tokens.toml")
    assert {k: v for k, v in tokens.finetune.items() if k != "tokenizer_from"} == \
        {k: v for k, v in strategies.finetune.items() if k != "tokenizer_from"}
    kept = [s["init_from"] for s in tokens.starts if "init_from" in s]
    clm = read_toml(configs / "imdb_pretrain_clm.toml")
    assert {f"{clm['out_dir']}/step_{k}.npz" for k in (500, 1000, 2000)} == set(kept)
    assert all(int(p.split("_")[-1][:-4]) % clm["keep_every"] == 0 for p in kept)


def test_set_overrides_read_toml_values_comma_lists_and_dotted_keys(tmp_path):
    (tmp_path / "c.toml").write_text('sizes = [5]\n[finetune]\nlr = 0.01\n'
                                     '[[starts]]\nname = "mlm"\ninit_from = "a.npz"\n')
    config = load_compare_config(tmp_path / "c.toml", [
        "sizes=[250, 1000]", "seeds=0,1,2", "baseline=false", "data=some/aclImdb",
        "finetune.lr=3e-4", "finetune.glove=none", "starts.mlm.init_from=b.npz"],
        out_dir="elsewhere")
    assert config.sizes == [250, 1000] and config.seeds == [0, 1, 2] and not config.baseline
    assert config.data == "some/aclImdb" and config.out_dir == "elsewhere"
    assert config.finetune == {"lr": 3e-4, "glove": None}
    assert config.starts == [{"name": "mlm", "init_from": "b.npz"}]
    assert load_compare_config(overrides=["sizes=all,100"]).sizes == ["all", 100]


@pytest.mark.parametrize("text, message", [
    ("sizez = [1]", "unknown key 'sizez'; keys: data, sizes, seeds"),
    ("sizes = [100, 0]", 'sizes should hold positive integers or "all"; 0 is not'),
    ("sizes = [100, 100]", "sizes lists 100 more than once"),
    ("seeds = []", r"seeds = \[\] should be a non-empty list of integers"),
    ("min_steps = 50\nmax_steps = 10", "needs 1 <= min_steps <= max_steps, got min_steps=50"),
    ("epochs = 0", "epochs = 0 should be > 0"),
    ("evals = 'often'", "evals = 'often' should be an integer"),
    ("[seeds]\nfirst = 2", r"\[seeds\] is a table; only \[finetune\] and \[\[starts\]\]"),
    ("[budget]\nepochs = 2", r"unknown key 'budget'; keys: .*\(\[finetune\] and \[\[starts"),
    ("[finetune]\nsteps = 3", "'steps', which the sweep sets for each run; use epochs, "
                              "min_steps and max_steps"),
    ("[finetune]\nlrr = 3", r"\[finetune\] has an unknown setting 'lrr'; FinetuneConfig "
                            "settings: .*glove"),
    ("[finetune]\nlr = 'fast'", "start 'scratch': .*lr = 'fast' should be float"),
    ("[[starts]]\nglove = 'g.txt'", "start 1 needs a name"),
    ("[[starts]]\nname = 'a'\n[[starts]]\nname = 'a'", "the start name 'a' is taken twice"),
    ("[[starts]]\nname = 'baseline'", "'baseline' is the bag-of-words baseline's"),
    ("[[starts]]\nname = 'a'\nbatch_size = 8", "'batch_size', which every start must share"),
    ("starts = []\nbaseline = false", "starts is empty and baseline is false"),
])
def test_config_mistakes_are_clear(tmp_path, text, message):
    (tmp_path / "c.toml").write_text(text + "\n")
    with pytest.raises(ConfigError, match=message):
        load_compare_config(tmp_path / "c.toml")


@pytest.mark.parametrize("override, message", [
    ("sizes", "--set sizes: expected KEY=VALUE"),
    ("steps=3", "compare has no key 'steps'; keys: .*finetune.KEY"),
    ("finetune.stepz=3", "FinetuneConfig has no setting 'stepz'"),
    ("starts.nobody.lr=1", "no start is named 'nobody'; starts: scratch"),
])
def test_override_mistakes_are_clear(override, message):
    with pytest.raises(ConfigError, match=message):
        load_compare_config(overrides=[override])


def test_missing_files_are_named_before_any_run():
    config = CompareConfig(starts=[{"name": "mlm", "init_from": "nowhere.npz"}])
    with pytest.raises(FileNotFoundError, match="start 'mlm': init_from = 'nowhere.npz'"):
        compare(config, log=quiet)


# --------------------------------------------------------------------------- the command


def test_compare_command_end_to_end(mlm_checkpoint, tmp_path, capsys):
    (tmp_path / "c.toml").write_text(
        'sizes = ["all"]\nseeds = [0]\nbaseline = false\nepochs = 1\nmin_steps = 2\n'
        'max_steps = 2\n[finetune]\n' + "".join(f"{k} = {v}\n" for k, v in TINY.items()) +
        '[[starts]]\nname = "scratch"\n[[starts]]\nname = "mlm"\ninit_from = "x.npz"\n')
    assert main(["compare", "--config", "c.toml", "--out", "cli", "--no-progress", "--set",
                 f"starts.mlm.init_from={mlm_checkpoint}"]) == 0
    out = capsys.readouterr().out
    assert "[1/2] scratch n=400 seed=0: test" in out and "| mlm |" in out
    assert "steps ..." not in out  # --no-progress: no line as each run starts
    assert len(read_rows("cli/compare.csv")) == 2
    assert main(["compare", "--set", "sizes=0"]) == 1
    assert "minitransformer compare: error: CompareConfig: sizes should hold" in \
        capsys.readouterr().err


def test_an_interrupted_compare_names_the_signal_and_how_to_continue(mlm_checkpoint, tmp_path,
                                                                      monkeypatch, capsys):
    import signal

    from minitransformer.train import TrainingInterrupted

    def interrupted(config, log=print, reviews=None):
        raise TrainingInterrupted(signal.SIGTERM, 3, Path(config.out_dir) / "last.npz")

    monkeypatch.setattr(compare_module, "finetune", interrupted)
    (tmp_path / "c.toml").write_text(
        'sizes = ["all"]\nseeds = [0]\nbaseline = false\nepochs = 1\nmin_steps = 2\n'
        'max_steps = 2\n[finetune]\n' + "".join(f"{k} = {v}\n" for k, v in TINY.items()) +
        '[[starts]]\nname = "scratch"\n')
    assert main(["compare", "--config", "c.toml", "--out", "stop", "--no-progress"]) == 143
    captured = capsys.readouterr()
    assert "the same command" in captured.out  # compare's own line: how to continue
    assert captured.err == "minitransformer compare: interrupted by SIGTERM\n"
