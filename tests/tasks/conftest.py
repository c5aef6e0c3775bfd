"""Shared by the task tests: each runs in its own temporary folder (runs write checkpoints)."""

import pytest


@pytest.fixture(autouse=True)
def in_tmp(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
