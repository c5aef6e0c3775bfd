"""The docs site covers the whole package and every chapter (the build itself runs in CI)."""

import pkgutil
import re
from pathlib import Path

import minitransformer

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CHAPTERS = sorted((ROOT / "tutorials").glob("ch*.py"))


def _documented_modules():
    text = "\n".join(p.read_text(encoding="utf-8") for p in (DOCS / "api").glob("*.md"))
    return set(re.findall(r"```\{automodule\} (\S+)", text))


def test_api_reference_has_every_module():
    modules = {info.name for info in pkgutil.walk_packages(minitransformer.__path__,
                                                           "minitransformer.")
               if not info.ispkg and not info.name.endswith("__main__")}
    packages_with_code = {"minitransformer.gradcheck_cases"}  # cases live in its __init__
    missing = (modules | packages_with_code) - _documented_modules()
    assert not missing, f"modules missing from docs/api/*.md: {sorted(missing)}"


def test_api_reference_names_only_real_modules():
    import importlib

    for name in _documented_modules():
        importlib.import_module(name)  # raises if a page names a module that is gone


def test_syllabus_schedules_every_chapter():
    syllabus = (DOCS / "syllabus.md").read_text(encoding="utf-8")
    for chapter in CHAPTERS:
        assert f"chapters/{chapter.name}" in syllabus, f"{chapter.name} is not in the syllabus"


def test_syllabus_sets_only_exercises_that_exist():
    labels = set()
    for chapter in CHAPTERS:
        labels |= set(re.findall(r"^# :label: (\S+)", chapter.read_text(encoding="utf-8"), re.M))
    syllabus = (DOCS / "syllabus.md").read_text(encoding="utf-8")
    set_in_syllabus = set(re.findall(r"\{ref\}`(ch\d\d-[^`]+)`", syllabus))
    assert set_in_syllabus, "the syllabus should set exercises"
    assert set_in_syllabus <= labels, f"unknown exercise labels: {set_in_syllabus - labels}"


def test_exercise_labels_are_unique():
    seen = {}
    for chapter in CHAPTERS:
        for label in re.findall(r"^# :label: (\S+)", chapter.read_text(encoding="utf-8"), re.M):
            assert label not in seen, f"label {label} in {chapter.name} and {seen[label]}"
            assert label.startswith(chapter.name[:4] + "-"), f"{label} in {chapter.name}"
            seen[label] = chapter.name


def test_ci_builds_the_docs_with_warnings_as_errors():
    ci_script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^python -m sphinx -W .*-b html docs ", ci_script, re.M)


def test_every_solution_is_hidden_by_default():
    for chapter in CHAPTERS:
        lines = chapter.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if re.match(r"^# `{3,}\{solution\}", line):
                assert lines[number + 1].strip() == "# :class: dropdown", \
                    f"{chapter.name}:{number + 1}: a solution must be folded (:class: dropdown)"
