"""Every command of the command line, end to end, tiny; and clear errors for user mistakes."""

import subprocess
import sys

import pytest

from minitransformer.cli import main

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
    assert "perplexity:" in capsys.readouterr().out


def test_pretrain_then_finetune_then_evaluate(capsys):
    assert main(["pretrain", "--set", "steps=8", "--out", "mlm", *TINY]) == 0
    assert main(["finetune", "--set", "init_from=mlm/last.npz", "--set", "steps=8",
                 "--set", "seq_len=24", "--out", "ft", "--no-progress"]) == 0
    assert "test accuracy:" in capsys.readouterr().out
    assert main(["evaluate", "ft/best.npz"]) == 0
    assert "test accuracy:" in capsys.readouterr().out


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
    for command in ["demo", "pretrain", "finetune", "train-seq2seq", "compare", "translate",
                    "generate", "evaluate", "gradcheck", "download"]:
        result = subprocess.run([sys.executable, "-m", "minitransformer", command, "--help"],
                                capture_output=True, text=True)
        assert result.returncode == 0, command
        if command != "download":
            assert "example" in result.stdout, command


@pytest.mark.slow
def test_demo_fast_mode_runs_and_prints_the_table(capsys):
    assert main(["demo", "--fast", "--out", "demo", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "fine-tuned from pretraining" in out and "trained from scratch" in out
    assert "test (unseen words)" in out


@pytest.mark.slow
def test_demo_shows_pretraining_beats_training_from_scratch():
    from minitransformer.tasks.demo import demo

    results = demo("demo", fast=False, progress=False, log=lambda *a: None)
    assert results["pretrained"]["test_accuracy"] > results["scratch"]["test_accuracy"] + 0.2
    assert results["scratch"]["valid_accuracy"] > 0.9  # both learned the seen words
