"""``minitransformer explain`` end to end on a classifier fine-tuned for a few steps on the
built-in data: the prediction, one row per token with three explanations, the figure, and one
clear line for each mistake."""

import re
import sys

import pytest

import minitransformer as mt
from minitransformer import checkpoint, nn
from minitransformer.cli import main

TINY = ["--set", "d_model=16", "--set", "n_heads=2", "--set", "n_layers=2", "--set", "d_ff=32",
        "--set", "steps=6", "--set", "seq_len=24", "--no-progress"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def classifier_checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explain")
    assert main(["finetune", *TINY, "--out", str(folder / "ft")]) == 0
    return folder / "ft" / "best.npz"


@pytest.fixture(autouse=True)
def quiet(monkeypatch, tmp_path):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.chdir(tmp_path)


def table_rows(out):
    """(position, token, three scores) of each row of the printed table."""
    pattern = re.compile(r"^\s+(\d+)\s+(\S+)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)$")
    return [(int(m[1]), m[2], *map(float, m.groups()[2:]))
            for m in map(pattern.match, out.splitlines()) if m]


def test_explain_prints_the_prediction_and_three_scores_per_token(classifier_checkpoint, capsys):
    capsys.readouterr()
    assert main(["explain", str(classifier_checkpoint), "the film was really good"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^prediction: (positive|negative) \(p = 0\.\d{3}; negative 0\.\d{3}, "
                     r"positive 0\.\d{3}\)$", out, re.M)
    header = next(line for line in out.splitlines() if line.lstrip().startswith("#"))
    assert header.split() == ["#", "token", "rollout", "attention", "gradient×input"]
    rows = table_rows(out)
    assert [token for _, token, *_ in rows] == ["<cls>", "the", "film", "was", "really", "good"]
    assert sum(row[2] for row in rows) == pytest.approx(1.0, abs=0.005)  # rollout: shares
    assert sum(row[3] for row in rows) == pytest.approx(1.0, abs=0.005)  # attention: shares
    assert "top 5 tokens" in out and re.search(r"^  rollout\s+\S+", out, re.M)


def test_explain_writes_the_figure(classifier_checkpoint, capsys):
    assert main(["explain", str(classifier_checkpoint), "an awful meal", "--png",
                 "why/explain.png"]) == 0
    assert "figure: why/explain.png" in capsys.readouterr().out
    with open("why/explain.png", "rb") as file:
        assert file.read(8) == PNG_MAGIC


def test_without_matplotlib_the_table_prints_and_the_figure_is_refused(
        classifier_checkpoint, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    assert main(["explain", str(classifier_checkpoint), "good", "--png", "x.png"]) == 1
    captured = capsys.readouterr()
    assert "prediction:" in captured.out
    assert captured.err.strip() == ("minitransformer explain: error: plotting needs matplotlib: "
                                    'pip install "minitransformer[plot]"')


def test_a_checkpoint_that_is_not_a_classifier_is_one_clear_line(tmp_path, capsys):
    mt.manual_seed(0)
    model = nn.TextEncoder(20, d_model=8, n_heads=2, n_layers=1, d_ff=16, max_len=8)
    checkpoint.save(tmp_path / "lm.npz", model, task="pretrain", config={"objective": "mlm"})
    assert main(["explain", str(tmp_path / "lm.npz"), "good"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"minitransformer explain: error: {tmp_path / 'lm.npz'} is not a classifier " \
           "checkpoint (it was written by minitransformer pretrain); explain needs one written " \
           "by minitransformer finetune" in err


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_text_is_refused_before_anything_is_read(text, capsys):
    assert main(["explain", "nowhere.npz", text]) == 1
    err = capsys.readouterr().err
    assert err.startswith("minitransformer explain: error: the text is empty; give the sentence")


def test_a_missing_checkpoint_is_named(capsys):
    assert main(["explain", "nowhere.npz", "good"]) == 1
    assert "no checkpoint at nowhere.npz" in capsys.readouterr().err


def test_a_classifier_fine_tuned_from_a_causal_lm_is_loaded_causal(tmp_path, capsys):
    import minitransformer.explain as explain

    assert main(["pretrain", "--set", "objective=clm", "--set", "steps=4", "--out", "clm",
                 *TINY[:8], "--no-progress"]) == 0
    assert main(["finetune", "--set", "init_from=clm/last.npz", "--set", "pooling=mean",
                 "--set", "steps=4", "--set", "seq_len=24", "--out", "ft", "--no-progress"]) == 0
    model, _, _ = explain.load_classifier("ft/best.npz")
    assert model.causal and model.pooling == "mean"
    capsys.readouterr()
    assert main(["explain", "ft/best.npz", "the film was good"]) == 0
    rows = table_rows(capsys.readouterr().out)
    assert [token for _, token, *_ in rows] == ["the", "film", "was", "good"]  # no <cls>
    (tmp_path / "clm" / "last.npz").unlink()  # the start can no longer be read: said, not causal
    said = []
    model, _, _ = explain.load_classifier("ft/best.npz", warn=said.append)
    assert not model.causal
    assert said == ["explain: cannot read init_from=clm/last.npz to tell whether the encoder is "
                    "causal; assuming it is not"]
