"""The README's example runs as written, and its commands are the ones CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    runnable = [b for b in blocks if "..." not in b]  # skip sketches with elided code
    assert runnable, "the README should show runnable Python"
    for block in runnable:
        exec(compile(block, "README.md", "exec"), {})


def test_ci_runs_the_readme_test_command():
    command = re.search(r'pip install -e "\.\[dev\]" && (pytest[^\n`]*)', README).group(1)
    ci_script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(rf"^{re.escape(command)}\b", ci_script, re.M), command
