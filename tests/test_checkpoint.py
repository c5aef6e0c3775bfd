"""Checkpoints: round trip, validation, refusal of pickles and damage, atomic saves under kill."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import checkpoint, nn, optim
from minitransformer.checkpoint import CheckpointError

ROOT = Path(__file__).resolve().parent.parent


def trained_model(seed=0):
    mt.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 3))
    opt = optim.AdamW(model.parameters(), lr=0.01)
    for _ in range(3):
        model(mt.randn(5, 4)).sum().backward()
        opt.step()
        opt.zero_grad()
    return model, opt


def test_round_trip_is_bitwise(tmp_path):
    model, opt = trained_model()
    path = checkpoint.save(tmp_path / "c.npz", model, opt, step=3, epoch=1,
                           config={"d_model": 8}, vocab=["<pad>", "a"], mask=mt.ones(2))
    fresh, fresh_opt = trained_model(seed=1)
    state = checkpoint.load(path, fresh, fresh_opt)
    for (name, a), (_, b) in zip(model.named_parameters(), fresh.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    assert state["step"] == 3 and state["epoch"] == 1 and state["config"] == {"d_model": 8}
    assert state["vocab"] == ["<pad>", "a"] and state["version"] == mt.__version__
    np.testing.assert_array_equal(state["mask"], [1.0, 1.0])
    ours, theirs = opt.state_dict(), fresh_opt.state_dict()
    for position, buffers in ours["state"].items():
        assert theirs["state"][position]["step"] == buffers["step"]
        np.testing.assert_array_equal(theirs["state"][position]["exp_avg_sq"],
                                      buffers["exp_avg_sq"])


def test_load_without_a_model_returns_the_arrays(tmp_path):
    model, _ = trained_model()
    checkpoint.save(tmp_path / "c.npz", model, step=1)
    state = checkpoint.load(tmp_path / "c.npz")
    np.testing.assert_array_equal(state["model"]["0.weight"], model[0].weight.numpy())


def test_a_model_that_does_not_fit_is_named(tmp_path):
    model, _ = trained_model()
    checkpoint.save(tmp_path / "c.npz", model)
    other = nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6), nn.Linear(6, 3))
    with pytest.raises(CheckpointError, match=r"c.npz does not fit the model.*0.weight: expected "
                                              r"\(4, 6\), got \(4, 8\)"):
        checkpoint.load(tmp_path / "c.npz", other)
    with pytest.raises(CheckpointError, match="wrong dtype"):
        checkpoint.load(tmp_path / "c.npz", trained_model()[0].double())


def test_a_pickled_payload_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, payload=np.array([{"run": "code"}], dtype=object))
    with pytest.raises(CheckpointError, match="pickled \\(object\\) array.*refused"):
        checkpoint.load(path)


def test_a_truncated_file_is_refused_and_the_previous_one_survives(tmp_path):
    model, _ = trained_model()
    good = checkpoint.save(tmp_path / "good.npz", model, step=1)
    data = good.read_bytes()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="bad.npz is truncated or corrupted"):
        checkpoint.load(bad, model)
    assert checkpoint.load(good, model)["step"] == 1


def test_a_corrupted_byte_is_caught(tmp_path):
    model, _ = trained_model()
    path = checkpoint.save(tmp_path / "c.npz", model)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("model/0.weight.npy")
    data[info.header_offset + 200] ^= 0xFF  # inside the array's bytes
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="c.npz is truncated or corrupted"):
        checkpoint.load(path, model)


def test_state_that_is_not_json_is_refused_before_writing(tmp_path):
    with pytest.raises(CheckpointError, match="not JSON-serializable"):
        checkpoint.save(tmp_path / "c.npz", step=object())
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("content, what", [(b"step=3\n", "a text file"), (b"", "an empty file"),
                                           (b"\x00\xff\xfe" * 9, "a binary file of another kind")])
def test_a_file_that_is_not_an_npz_archive_is_named_for_what_it_is(tmp_path, content, what):
    path = tmp_path / "c.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=rf"c.npz is not a checkpoint \(not an .npz "
                                              rf"archive: {what}\)"):
        checkpoint.load(path)
    with pytest.raises(CheckpointError, match="is a folder, not a checkpoint"):
        checkpoint.load(tmp_path)


def test_a_model_that_does_not_fit_in_many_tensors_is_named_in_one_short_line(tmp_path):
    small = nn.Sequential(*[nn.Linear(4, 4) for _ in range(6)])
    checkpoint.save(tmp_path / "c.npz", small)
    wide = nn.Sequential(*[nn.Linear(5, 5) for _ in range(6)])
    with pytest.raises(CheckpointError) as error:
        checkpoint.load(tmp_path / "c.npz", wide)
    message = str(error.value)
    assert "12 wrong shape: 0.weight: expected (5, 5), got (4, 4)" in message
    assert "and 9 more" in message and len(message) < 400


def test_a_save_that_fails_midway_keeps_the_previous_checkpoint_and_says_so(tmp_path,
                                                                             monkeypatch):
    import errno

    from minitransformer import backend

    model, _ = trained_model()
    path = checkpoint.save(tmp_path / "last.npz", model, step=1)
    real = backend.save_npz

    def disk_full(file, arrays):  # writes part of the archive, then the disk is full
        real(file, arrays)
        file.truncate(100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(backend, "save_npz", disk_full)
    with pytest.raises(CheckpointError, match=r"could not write .*last.npz \(OSError: .*No "
                                              r"space left on device\); the previous last.npz "
                                              "is unchanged"):
        checkpoint.save(path, model, step=2)
    assert checkpoint.load(path, model)["step"] == 1
    assert [f.name for f in tmp_path.iterdir()] == ["last.npz"]  # no temporary left behind
    with pytest.raises(CheckpointError, match="no new.npz was written"):
        checkpoint.save(tmp_path / "new.npz", model)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        checkpoint.load("/nonexistent/c.npz")


SAVER = textwrap.dedent("""
    import sys
    import minitransformer as mt
    from minitransformer import checkpoint, nn
    mt.manual_seed(0)
    model = nn.Linear(512, 1024)   # 2 MB: long enough to be caught mid-write
    step = 0
    while True:
        step += 1
        model.bias.data[...] = step
        checkpoint.save(sys.argv[1], model, step=step)
        print(step, flush=True)
""")


def test_a_save_killed_at_any_moment_leaves_a_loadable_checkpoint(tmp_path):
    target = tmp_path / "last.npz"
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    mid_write = 0
    for delay in (0.3, 0.45, 0.6, 0.75, 0.9):
        process = subprocess.Popen([sys.executable, str(script), str(target)], env=env,
                                   stdout=subprocess.PIPE, text=True)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        saves = len(process.communicate()[0].split())
        leftovers = list(tmp_path.glob(".last.npz.*.tmp"))  # a save the kill interrupted
        mid_write += bool(leftovers)
        for leftover in leftovers:
            leftover.unlink()
        if saves == 0:
            continue
        model = nn.Linear(512, 1024)
        state = checkpoint.load(target, model)  # the last completed save, intact
        assert state["step"] >= saves and (model.bias.numpy() == state["step"]).all()
    assert target.exists(), "no save completed before the kills"
    assert mid_write >= 1, "no kill landed during a write; the test proved nothing"
