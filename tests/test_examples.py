"""The example scripts run and do what they say."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_first_steps_learns_the_spiral(monkeypatch, capsys):
    first_steps = load("first_steps")
    monkeypatch.setattr(first_steps, "FAST", True)
    accuracy = first_steps.main()
    assert accuracy > 0.9, "a two-layer tanh network should separate the spiral arms"
    assert "gradcheck of cross_entropy: passed" in capsys.readouterr().out


@pytest.mark.slow
def test_embedding_scale_shows_the_masked_lm_learning_only_with_scaled_embeddings(tmp_path,
                                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    unigram, results = load("embedding_scale").main(["--steps", "60"])
    now = results["sinusoidal, embeddings N(0, 1/d) × √d (now)"][-1]
    before = results["sinusoidal, embeddings N(0, 0.02²) (before)"][-1]
    assert now < before - 0.2 and now < unigram


@pytest.mark.slow
def test_linear_probe_reads_features_of_random_and_pretrained_encoders(tmp_path, capsys):
    pytest.importorskip("sklearn")
    from minitransformer.tasks.pretrain import PretrainConfig, pretrain

    words = {"pos": ["great", "wonderful", "superb"], "neg": ["awful", "boring", "terrible"]}
    for split in ("train", "test"):
        for label, rating in (("pos", 9), ("neg", 2)):
            folder = tmp_path / "aclImdb" / split / label
            folder.mkdir(parents=True)
            for index in range(40):
                text = f"review {index} : it was {words[label][index % 3]} , plot {index % 7} ."
                (folder / f"{index}_{rating}.txt").write_text(text, encoding="utf-8")
    data = str(tmp_path / "aclImdb")
    result = pretrain(PretrainConfig(objective="mlm", data=data, steps=3, d_model=16, n_heads=2,
                                     n_layers=1, d_ff=32, seq_len=16, max_len=32,
                                     out_dir=str(tmp_path / "mlm"), progress=False),
                      log=lambda *_: None)
    capsys.readouterr()
    load("linear_probe").main(["--data", data, "--checkpoint", f"mlm={result['checkpoint']}",
                               "--n-train", "40", "--n-test", "30", "--seq-len", "24"])
    out = capsys.readouterr().out
    assert "40 training and 30 test reviews" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("random", "mlm"))]
    assert [row[0] for row in rows] == ["random", "mlm"]
    for row in rows:  # the sentiment words are in the inputs: the embedding mean reads them
        assert 0.0 <= float(row[1].rstrip("%")) <= 100.0 and float(row[2].rstrip("%")) > 80.0


def test_pretraining_tokens_reads_a_sweep_and_draws_accuracy_against_tokens(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from minitransformer.tasks.compare import write_rows

    def row(start, seed, accuracy):
        return {"start": start, "size": 1000, "seed": seed, "n_train": 1000, "steps": 150,
                "valid_accuracy": accuracy, "test_accuracy": accuracy, "seconds": 1.0,
                "note": ""}

    rows = [row("scratch", 0, 0.776), row("clm-4M", 0, 0.715), row("clm-2M", 0, 0.693),
            row("clm-2M", 1, 0.703)]
    write_rows(tmp_path / "compare.csv", rows)
    (tmp_path / "metrics.jsonl").write_text('{"step": 500, "loss": 5.4, "eval_loss": 5.329}\n'
                                            '{"step": 750, "loss": 5.2}\n')
    figure = tmp_path / "tokens.png"
    tokens, accuracy = load("pretraining_tokens").main([
        str(tmp_path / "compare.csv"), "--point", "clm-4M=1000", "--point", "clm-2M=500",
        "--metrics", str(tmp_path / "metrics.jsonl"), "--baseline", "84.1", "--out",
        str(figure)])
    assert tokens == [500 * 4096, 1000 * 4096]  # sorted by step
    assert accuracy["clm-2M"] == pytest.approx(69.8)  # the mean over seeds
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["clm-2M", "500", "2,048,000", "5.329", "69.8%"]
    assert lines[2].split() == ["clm-4M", "1,000", "4,096,000", "-", "71.5%"]
    assert lines[3].split() == ["scratch", "77.6%"]
    assert figure.stat().st_size > 10_000
    with pytest.raises(SystemExit, match="--lines names glove"):
        load("pretraining_tokens").main([str(tmp_path / "compare.csv"), "--point", "clm-2M=500",
                                         "--lines", "scratch,glove", "--out", str(figure)])
    with pytest.raises(SystemExit, match="has no runs of mlm"):
        load("pretraining_tokens").main([str(tmp_path / "compare.csv"), "--point", "mlm=500"])
