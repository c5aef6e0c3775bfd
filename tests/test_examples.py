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
