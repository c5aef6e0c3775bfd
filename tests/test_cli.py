"""Every command of the command line, end to end, tiny; and clear errors for user mistakes."""

import argparse
import dataclasses
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minitransformer import checkpoint
from minitransformer.cli import COMMANDS, build_parser, main
from minitransformer.train import read_history

TINY = ["--set", "d_model=16", "--set", "n_heads=2", "--set", "n_layers=1", "--set", "d_ff=32",
        "--no-progress"]


@pytest.fixture(autouse=True)
def quiet(monkeypatch, tmp_path):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.chdir(tmp_path)


def test_pretrain_generate_and_evaluate_a_causal_lm(capsys):
    assert main(["pretrain", "--set", "objective=clm", "--set", "steps=12", "--set",
                 "eval_every=6", "--out", "clm", *TINY]) == 0
    out = capsys.readouterr().out
    assert "validation loss" in out and "checkpoint: clm/last.npz" in out
    assert main(["generate", "clm/last.npz", "--prompt", "the film", "--max-new-tokens", "5",
                 "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("the film")
    assert main(["evaluate", "clm/last.npz"]) == 0
    out = capsys.readouterr().out
    assert "perplexity:" in out and "perplexity = e^(validation loss)" in out


def test_pretrain_then_finetune_then_evaluate(capsys):
    assert main(["pretrain", "--set", "steps=8", "--out", "mlm", *TINY]) == 0
    assert main(["finetune", "--set", "init_from=mlm/last.npz", "--set", "steps=8",
                 "--set", "seq_len=24", "--out", "ft", "--no-progress"]) == 0
    assert "test accuracy:" in capsys.readouterr().out
    assert main(["evaluate", "ft/best.npz"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy:" in out and "confusion matrix: row = the true class" in out


def test_denoising_pretraining_runs(capsys):
    assert main(["pretrain", "--set", "objective=denoise", "--set", "steps=6", "--out", "dn",
                 *TINY]) == 0
    assert "pretrain (denoise): validation loss" in capsys.readouterr().out


def test_train_seq2seq_translate_and_evaluate(capsys):
    assert main(["train-seq2seq", "--set", "steps=10", "--set", "max_len=16", "--out", "s2s",
                 *TINY]) == 0
    capsys.readouterr()
    assert main(["translate", "s2s/best.npz", "7 8 9", "--beam", "2"]) == 0
    assert all(token.isdigit() for token in capsys.readouterr().out.split())
    assert main(["evaluate", "s2s/best.npz"]) == 0
    assert "exact_match:" in capsys.readouterr().out


def test_settings_from_a_toml_file_and_resume(tmp_path, capsys):
    (tmp_path / "run.toml").write_text('objective = "mlm"\nsteps = 6\n[model]\nd_model = 16\n'
                                       'n_heads = 2\nn_layers = 1\nd_ff = 32\n')
    assert main(["pretrain", "--config", "run.toml", "--out", "r", "--no-progress"]) == 0
    assert main(["pretrain", "--config", "run.toml", "--set", "steps=9", "--out", "r",
                 "--resume", "--no-progress"]) == 0
    assert "after 9 steps" in capsys.readouterr().out


def test_gradcheck_command_prints_the_table(capsys):
    assert main(["gradcheck", "--filter", "softmax"]) == 0
    out = capsys.readouterr().out
    assert "softmax over axis -1" in out and "pass" in out and "passed" in out
    assert "atol, rtol" in out and "1e-5, 1e-4" in out


def test_gradcheck_table_orders_ops_layers_models_and_never_cuts_a_name(capsys):
    from minitransformer.gradcheck_cases import CASES
    from minitransformer.tasks.checks import kind_of

    assert main(["gradcheck", "--filter", "mask"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert all(len(line) <= 100 for line in lines), max(lines, key=len)
    headings = [line for line in lines if line in ("primitive ops (Functions)", "layers (Modules)",
                                                   "models")]
    assert headings == sorted(headings, key=["primitive ops (Functions)", "layers (Modules)",
                                             "models"].index) and len(headings) >= 2
    words = " ".join(out.split())
    for case in CASES:  # every matching name appears whole (wrapped lines joined again)
        if "mask" in case.name.lower():
            assert all(word in words for word in case.name.split()), case.name
    assert [kind_of(c) for c in CASES if c.name.startswith("softmax")] == ["op", "op"]
    assert {kind_of(c) for c in CASES} == {"op", "layer", "model"}


def test_gradcheck_table_as_markdown_and_csv(capsys):
    import csv
    import io

    assert main(["gradcheck", "--filter", "every key", "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out.splitlines()
    assert markdown[0] == "| kind | case | covers | shapes | max error | atol, rtol | result |"
    assert markdown[2].startswith("| op | scaled_masked_softmax, a (B, 1, 1, S) mask hiding every "
                                  "key of one row |")
    assert main(["gradcheck", "--filter", "every key", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["kind"] for row in rows] == ["op", "layer"] and rows[0]["result"] == "pass"
    assert float(rows[0]["max error"]) < 1e-6


@pytest.mark.parametrize("argv, message", [
    (["finetune", "--set", "stepz=3"], "FinetuneConfig has no setting 'stepz'"),
    (["pretrain", "--set", "steps=many"], "--set steps=many: expected int"),
    (["pretrain", "--config", "missing.toml"], "no settings file at missing.toml"),
    (["translate", "missing.npz", "1 2"], "no checkpoint at missing.npz"),
    (["pretrain", "--set", "objective=gpt", "--set", "steps=2"], "objective must be one of"),
    (["finetune", "--set", "init_from=nowhere.npz"], "no checkpoint at nowhere.npz"),
])
def test_user_mistakes_get_one_clear_line_and_exit_code_1(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_every_command_has_help_with_an_example():
    for command in COMMANDS:
        result = subprocess.run([sys.executable, "-m", "minitransformer", command.name, "--help"],
                                capture_output=True, text=True)
        assert result.returncode == 0, command.name
        assert "example" in result.stdout, command.name
        assert f"minitransformer {command.name}" in result.stdout, command.name


def test_the_table_of_commands_is_the_command_line():
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(subparsers.choices) == [command.name for command in COMMANDS]
    for command in COMMANDS:
        sub = subparsers.choices[command.name]
        assert sub.get_default("run") is command.run
        flags = {flag for action in sub._actions for flag in action.option_strings}
        training = command.settings is not None
        assert ("--resume" in flags) == training, command.name
        if training:  # the help lists every setting of the command's settings class
            listed = " ".join(sub.format_help().split())
            for field in dataclasses.fields(command.settings()):
                assert field.name in listed, (command.name, field.name)


@pytest.mark.slow
def test_demo_fast_mode_runs_and_prints_the_table(capsys):
    assert main(["demo", "--fast", "--out", "demo", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "fine-tuned from pretraining" in out and "trained from scratch" in out
    assert re.search(r"by [+-]\d+\.\d percentage points \(\d+\.\d% from scratch", out)
    assert "test (unseen words)" in out


@pytest.mark.slow
def test_demo_shows_pretraining_beats_training_from_scratch():
    from minitransformer.tasks.demo import demo

    results = demo("demo", fast=False, progress=False, log=lambda *a: None)
    assert results["pretrained"]["test_accuracy"] > results["scratch"]["test_accuracy"] + 0.2
    assert results["scratch"]["valid_accuracy"] > 0.9  # both learned the seen words


# --------------------------------------------------------------------------- runs never lost


def test_a_new_run_into_a_folder_that_holds_a_run_is_refused_and_nothing_is_touched(capsys):
    assert main(["pretrain", "--set", "steps=4", "--set", "eval_every=2", "--out", "r",
                 *TINY]) == 0
    before = {f.name: f.read_bytes() for f in Path("r").iterdir()}
    assert main(["pretrain", "--set", "steps=2", "--out", "r", *TINY]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "r already holds a run (last.npz, best.npz, metrics.jsonl)" \
        in err and "--resume" in err and "--overwrite" in err
    assert {f.name: f.read_bytes() for f in Path("r").iterdir()} == before
    assert main(["pretrain", "--set", "steps=2", "--out", "r", "--overwrite", *TINY]) == 0
    assert checkpoint.load("r/last.npz")["step"] == checkpoint.load("r/best.npz")["step"] == 2
    assert len(read_history("r/metrics.jsonl")) == 1


def test_resume_without_a_checkpoint_is_one_line_and_creates_nothing(capsys):
    assert main(["pretrain", "--resume", "--out", "nothing", *TINY]) == 1
    err = capsys.readouterr().err
    assert "--resume: nothing holds no last.npz to continue from" in err
    assert err.count("\n") == 1 and not Path("nothing").exists()
    assert main(["pretrain", "--resume", "--overwrite", "--out", "x", *TINY]) == 1
    assert "resume and overwrite exclude each other" in capsys.readouterr().err


def test_resuming_a_run_past_its_end_is_refused_without_writing(capsys):
    assert main(["pretrain", "--set", "steps=6", "--set", "log_every=1", "--out", "r",
                 *TINY]) == 0
    metrics = Path("r/metrics.jsonl").read_text()
    assert main(["pretrain", "--resume", "--set", "steps=3", "--out", "r", *TINY]) == 1
    assert "is at step 6, past steps=3" in capsys.readouterr().err
    assert Path("r/metrics.jsonl").read_text() == metrics


def test_a_failed_start_leaves_no_folder(capsys):
    assert main(["pretrain", "--set", "data=missing.txt", "--out", "failed", *TINY]) == 1
    assert "missing.txt" in capsys.readouterr().err and not Path("failed").exists()


def test_a_diverging_run_is_one_line_and_keeps_the_last_good_state(capsys):
    assert main(["pretrain", "--set", "lr=1e6", "--set", "steps=200", "--set", "warmup=0",
                 "--set", "grad_clip=none", "--out", "nan", *TINY]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "Warning" not in err
    assert "became" in err and "try a lower lr" in err, err
    state = checkpoint.load("nan/last.npz")
    assert f"keeps step {state['step']}, the last good state" in err
    assert all(np.isfinite(a).all() for a in state["model"].values())


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_on_the_command_line_saves_and_resume_continues(tmp_path, signum):
    command = [sys.executable, "-m", "minitransformer", "pretrain", "--set", "steps=100000",
               "--set", "log_every=1", "--set", "eval_every=0", "--out", "run", *TINY]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    metrics, deadline = tmp_path / "run" / "metrics.jsonl", time.time() + 120
    while time.time() < deadline and not (metrics.exists() and
                                          len(metrics.read_text().splitlines()) >= 3):
        time.sleep(0.05)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, err
    step = checkpoint.load(tmp_path / "run" / "last.npz")["step"]
    assert f"interrupted by {signal.Signals(signum).name} after step {step}: saved " \
           f"{Path('run') / 'last.npz'}; continue with --resume" in err
    assert "Traceback" not in err
    assert main(["pretrain", "--resume", "--set", f"steps={step + 2}", "--set", "log_every=1",
                 "--set", "eval_every=0", "--out", str(tmp_path / "run"), *TINY]) == 0
    assert [row["step"] for row in read_history(metrics)] == list(range(1, step + 3))


@pytest.mark.parametrize("command, setting, message", [
    ("pretrain", "n_heads=3", "n_heads=3 must divide d_model=16"),
    ("pretrain", "steps=0", "steps must be >= 1, got steps=0"),
    ("finetune", "dropout=1.5", "dropout must lie in [0, 1), got dropout=1.5"),
    ("finetune", "lr=-1", "lr must be a positive number, got lr=-1.0"),
    ("train-seq2seq", "beam_size=0", "beam_size must be >= 1, got beam_size=0"),
    ("train-seq2seq", "positional=rotary", "positional must be 'learned' or 'sinusoidal'"),
    ("pretrain", "objective=gpt", "objective must be one of"),
    ("finetune", "precision=bf16", "precision must be 'float32' or 'float16', got "
                                   "precision='bf16'"),
])
def test_settings_are_checked_before_any_data_is_read(command, setting, message, capsys):
    # data names a file that does not exist: the settings error must come first
    assert main([command, "--set", "data=missing-data.txt", "--out", "o", *TINY,
                 "--set", setting]) == 1
    err = capsys.readouterr().err
    assert message in err and "missing-data" not in err and "accumulate" not in err, err
    assert not Path("o").exists()


def test_a_checkpoint_that_is_not_one_is_named_for_what_it_is(capsys):
    Path("notes.txt").write_text("not a checkpoint\n")
    Path("empty.npz").write_bytes(b"")
    for argv, what in [(["evaluate", "notes.txt"], "a text file"),
                       (["translate", "empty.npz", "7 8"], "an empty file"),
                       (["finetune", "--set", "init_from=notes.txt"], "a text file")]:
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert f"is not a checkpoint (not an .npz archive: {what})" in err, err
        assert "pickle" not in err


def test_a_resume_with_other_sizes_names_three_tensors_and_the_count(capsys):
    assert main(["pretrain", "--set", "steps=2", "--out", "r", *TINY]) == 0
    assert main(["pretrain", "--resume", "--set", "steps=4", "--out", "r", *TINY,
                 "--set", "d_model=32"]) == 1
    err = capsys.readouterr().err
    assert "does not fit the model" in err and "wrong shape:" in err and " more" in err
    assert len(err) < 700, len(err)


def test_translate_refuses_a_beam_of_zero_and_names_unknown_tokens(capsys):
    assert main(["train-seq2seq", "--set", "steps=2", "--set", "max_len=16", "--out", "s",
                 *TINY]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(["translate", "s/last.npz", "7 8", "--beam", "0"])
    assert stop.value.code == 2 and "--beam: must be >= 1, got 0" in capsys.readouterr().err
    for sentence, token in [("7 99", "'99'"), ("7 2", "'2'"), ("7 x", "'x'")]:
        assert main(["translate", "s/last.npz", sentence]) == 1
        assert f"token {token} is not in the vocabulary" in capsys.readouterr().err


def test_generate_names_prompt_words_outside_the_vocabulary(capsys):
    assert main(["pretrain", "--set", "objective=clm", "--set", "steps=2", "--out", "c",
                 *TINY]) == 0
    capsys.readouterr()
    assert main(["generate", "c/last.npz", "--prompt", "the zyzzyva film",
                 "--max-new-tokens", "2", "--seed", "0"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("the")
    assert "not in the vocabulary (read as <unk>): 'zyzzyva'" in captured.err


def test_explain_attention_into_a_closed_pipe_exits_quietly():
    result = subprocess.run(f"{sys.executable} -m minitransformer explain-attention --d-model 64 "
                            "--heads 8 | head -n 1", shell=True, capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("Multi-head self-attention")
    status = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m "
                             "minitransformer explain-attention --d-model 64 --heads 8 | "
                             "head -n 1 > /dev/null"], capture_output=True, text=True)
    assert status.returncode == 0, status.stderr


@pytest.mark.parametrize("argv, message", [
    (["explain-attention", "--decimals", "-2"], "--decimals: must be >= 0, got -2"),
    (["explain-attention", "--heads", "0"], "--heads: must be >= 1, got 0"),
    (["generate", "x.npz", "--max-new-tokens", "0"], "--max-new-tokens: must be >= 1"),
])
def test_impossible_counts_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err
