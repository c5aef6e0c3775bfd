"""The example scripts run and do what they say."""

import importlib.util
from pathlib import Path

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
