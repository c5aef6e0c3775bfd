"""Data-parallel training: the flat buffers, a world of one without MPI, the averaging rule (two
ranks simulated by two threads), and, under a real ``mpiexec -n 2``, training equal to one
process on the whole batch, rank-0-only files and exact resume."""

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import checkpoint, distributed, nn
from minitransformer.distributed import Buckets, World
from minitransformer.errors import BackendUnavailableError

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 180
NO_LAUNCHER = {}  # an environment without mpiexec's variables


def find_mpiexec():
    """The mpiexec of the mpich wheel (installed next to python), else one on PATH, else None."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


needs_mpi = pytest.mark.skipif(
    find_mpiexec() is None or importlib.util.find_spec("mpi4py") is None,
    reason='needs mpiexec and mpi4py: pip install "minitransformer[mpi]"',
)


# --------------------------------------------------------------------------- flat buffers


def parameter(*shape, dtype="float32"):
    return nn.Parameter(mt.tensor(np.arange(np.prod(shape), dtype=dtype).reshape(shape)))


def test_buckets_fill_in_order_split_at_the_size_and_the_dtype():
    params = [parameter(10), parameter(2, 5), parameter(30), parameter(5),
              parameter(3, dtype="float64")]
    buckets = Buckets(params, bucket_bytes=80)  # 20 float32 numbers
    # 10 + 10 fill a bucket; 30 is larger than a bucket and fills one alone; 5 starts a new one;
    # the float64 parameter cannot share a float32 buffer
    assert [b for b, _, _ in buckets.slots] == [0, 0, 1, 2, 3]
    assert [int(b.size) for b in buckets.buffers] == [20, 30, 5, 3]
    assert [b.dtype for b in buckets.buffers] == [np.float32] * 3 + [np.float64]
    assert buckets.slots[1] == (0, 10, 20)


def test_buckets_carry_gradients_flags_and_extras_there_and_back():
    params = [parameter(2, 3), parameter(4), parameter(5)]
    params[0].grad = np.full((2, 3), 2.0, np.float32)
    params[2].grad = np.arange(5, dtype=np.float32)
    buckets = Buckets(params, bucket_bytes=1000, extras=2)
    buckets.pack_grads((0.5, 7))
    (flat,) = buckets.buffers
    assert flat.shape == (6 + 4 + 5 + 3 + 2,)  # the gradients, a flag a parameter, 2 extras
    assert flat[6:10].tolist() == [0, 0, 0, 0]  # no gradient: zeros
    assert flat[15:].tolist() == [1, 0, 1, 0.5, 7]
    flat[:15] *= 10
    assert buckets.unpack_grads() == [0.5, 7]
    assert np.array_equal(params[0].grad, np.full((2, 3), 20.0))
    assert params[1].grad is None  # its flag is 0: no rank had a gradient
    assert np.array_equal(params[2].grad, np.arange(5) * 10.0)


def test_buckets_copy_values_out_and_back_in_place():
    params = [parameter(2, 2), parameter(3)]
    arrays = [p.data for p in params]
    buckets = Buckets(params, bucket_bytes=8)
    buckets.pack_data()
    for buffer in buckets.buffers:
        buffer += 1
    buckets.unpack_data()
    assert params[0].data is arrays[0]  # written in place
    assert params[1].data.tolist() == [1, 2, 3]


def test_buckets_name_what_is_wrong():
    with pytest.raises(ValueError, match="Buckets: got no parameters"):
        Buckets([])
    with pytest.raises(ValueError, match="bucket_bytes must be positive"):
        Buckets([parameter(2)], bucket_bytes=0)
    with pytest.raises(ValueError, match="pack_grads: these buckets carry None extras"):
        Buckets([parameter(2)]).pack_grads()  # made for values: no tail
    with pytest.raises(ValueError, match="unpack_grads: these buckets were made for values"):
        Buckets([parameter(2)]).unpack_grads()
    with pytest.raises(ValueError, match="carry 2 extras .*, got 1"):
        Buckets([parameter(2)], extras=2).pack_grads((1.0,))


# --------------------------------------------------------------------------- a world of one


def test_a_world_of_one_needs_no_mpi4py(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # `import mpi4py` now fails
    world = distributed.from_environment(NO_LAUNCHER)
    assert (world.rank, world.size, world.is_main) == (0, 1, True)
    assert world.rank_seed(7) == 7  # a single process keeps its seed
    rows = [1, 2, 3]
    assert world.shard(rows) is rows
    assert world.shard_collate(len) is len and world.shard_collate() is None
    p = parameter(3)
    p.grad = np.ones(3, np.float32)
    assert world.average_gradients([p], 1.5, 10) == (1.5, 10)
    assert p.grad.tolist() == [1, 1, 1]
    assert world.broadcast_object("x") == "x" and world.gather_object("x") == ["x"]
    world.broadcast_parameters([p])
    world.barrier()
    assert distributed.from_environment({"PMI_SIZE": "1"}).size == 1  # mpiexec -n 1


def test_a_launch_without_mpi4py_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(BackendUnavailableError, match=r'pip install "minitransformer\[mpi\]"'):
        distributed.from_environment({"PMI_SIZE": "2"})


def test_launched_size_reads_open_mpi_and_mpich():
    assert distributed.launched_size({"OMPI_COMM_WORLD_SIZE": "4"}) == 4
    assert distributed.launched_size({"PMI_SIZE": "3"}) == 3
    assert distributed.launched_size(NO_LAUNCHER) == 1
    with pytest.raises(ValueError, match="PMI_SIZE='two' is not a number of processes"):
        distributed.launched_size({"PMI_SIZE": "two"})


def test_shards_are_strided_and_cover_the_batch():
    rows = list(range(7))
    shards = [World(r, 3).shard(rows) for r in range(3)]
    assert shards == [[0, 3, 6], [1, 4], [2, 5]]
    assert [World(r, 3).shard([10, 11]) for r in range(3)] == [[10], [11], [10]]  # no empty one
    collate = World(1, 2).shard_collate(lambda rows: sum(rows))
    assert collate([1, 2, 3, 4]) == 2 + 4


# --------------------------------------------------------------------------- two ranks, two threads


class ThreadComm:
    """What the World needs of mpi4py's communicator, for ranks that are threads of one process."""

    def __init__(self, shared, rank):
        self.shared, self.rank = shared, rank

    def _exchange(self, buffer):
        self.shared.slots[self.rank] = buffer.copy()
        self.shared.barrier.wait()
        slots = list(self.shared.slots)
        self.shared.barrier.wait()  # nobody overwrites a slot before everyone has read it
        return slots

    def Allreduce(self, sendbuf, recvbuf, op):  # noqa: N802 (mpi4py's name)
        recvbuf[...] = sum(self._exchange(recvbuf))

    def Bcast(self, buffer, root=0):  # noqa: N802
        buffer[...] = self._exchange(buffer)[root]


def run_ranks(size, work):
    """``work(world)`` for each rank of a simulated world, in threads; their results by rank."""
    shared = SimpleNamespace(slots=[None] * size, barrier=threading.Barrier(size, timeout=30))
    mpi = SimpleNamespace(IN_PLACE=None, SUM="sum")
    results, errors = [None] * size, []

    def run(rank):
        try:
            world = World(rank, size, ThreadComm(shared, rank), mpi, bucket_bytes=16)
            results[rank] = work(world)
        except Exception as error:  # reported below, in the test's thread
            errors.append(error)
            shared.barrier.abort()

    threads = [threading.Thread(target=run, args=(rank,)) for rank in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def test_gradients_are_averaged_and_a_missing_one_counts_as_zero():
    grads = {  # rank -> the gradients of parameters a (shape (2, 3)), b (4,), c (5,)
        0: [np.full((2, 3), 1.0), np.arange(4.0), None],
        1: [np.full((2, 3), 3.0), None, None],  # b unused by rank 1's rows; c by nobody's
    }

    def work(world):
        params = [parameter(2, 3, dtype="float64"), parameter(4, dtype="float64"),
                  parameter(5, dtype="float64")]
        for p, g in zip(params, grads[world.rank]):
            p.grad = g
        loss, tokens = world.average_gradients(params, loss=1.0 + world.rank, tokens=10)
        return loss, tokens, [p.grad for p in params]

    for loss, tokens, (a, b, c) in run_ranks(2, work):
        assert (loss, tokens) == (1.5, 20)  # the mean loss, the total token count
        assert np.array_equal(a, np.full((2, 3), 2.0))
        assert np.array_equal(b, np.arange(4.0) / 2)  # what the whole batch's mean would give
        assert c is None  # no rank had one: every optimizer skips it


def test_broadcast_gives_every_rank_rank_0s_parameters():
    def work(world):
        params = [parameter(3), parameter(2, 2)]
        for p in params:
            p.data += 100 * world.rank
        world.broadcast_parameters(params)
        return [p.data.tolist() for p in params]

    first, second = run_ranks(2, work)
    assert first == second == [[0, 1, 2], [[0, 1], [2, 3]]]


# --------------------------------------------------------------------------- real MPI


TRAIN_SCRIPT = textwrap.dedent('''
    """Train a small MLP with Adam and clipping; rank 0 saves its parameters and losses."""
    import sys

    import numpy as np

    import minitransformer as mt
    import minitransformer.functional as F
    from minitransformer import distributed, nn, optim
    from minitransformer.data import DataLoader
    from minitransformer.train import TrainConfig, Trainer

    steps, dropout, out_dir, result = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
    resume, per_rank_dir = "--resume" in sys.argv, "--per-rank-dir" in sys.argv
    mt.set_default_dtype("float64")
    mt.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.LayerNorm(32), nn.GELU(), nn.Dropout(dropout),
                          nn.Linear(32, 4))
    rng = np.random.default_rng(0)
    examples = list(zip(rng.standard_normal((96, 6)), rng.integers(0, 4, 96)))


    def collate(rows):
        return mt.tensor(np.stack([x for x, _ in rows])), mt.tensor(np.array([y for _, y in rows]))


    def batches(epoch):  # a global batch of 16 rows; each of N ranks collates 16 / N of them
        loader = DataLoader(examples, 16, distributed.shard_collate(collate), shuffle=True, seed=0)
        loader.set_epoch(epoch)
        return loader


    if per_rank_dir:  # to see which rank writes: rank r is given a folder of its own
        out_dir = f"{out_dir}/rank{distributed.rank()}"
    trainer = Trainer(model, optim.Adam(model.parameters(), lr=0.01),
                      lambda m, b: F.cross_entropy(m(b[0]), b[1]), batches,
                      TrainConfig(steps=steps, accumulate=2, grad_clip=0.5, log_every=1,
                                  checkpoint_every=3, out_dir=out_dir, progress=False))
    history = trainer.fit(resume=resume)
    every = distributed.init().gather_object([p.numpy() for p in model.parameters()])
    if distributed.is_main():  # the ranks' parameters never drift apart: the same bits on all
        assert all(np.array_equal(a, b) for other in every for a, b in zip(every[0], other))
        np.savez(result, *[p.numpy() for p in model.parameters()],
                 losses=[row["loss"] for row in history],
                 grad_norms=[row["grad_norm"] for row in history])
''')


def child_environment(**extra):
    """This environment for a child process: without mpiexec's variables (a child of a test run
    under mpiexec must not think itself a rank), with the repository importable."""
    env = {key: value for key, value in os.environ.items()
           if key not in distributed.LAUNCHER_SIZE_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def run_script(tmp_path, args, ranks=None):
    """Run TRAIN_SCRIPT in one process (``ranks`` None) or under ``mpiexec -n ranks``."""
    script = tmp_path / "train_small.py"
    script.write_text(TRAIN_SCRIPT)
    env = child_environment(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    command = [sys.executable, str(script), *map(str, args)]
    if ranks is not None:
        command = [find_mpiexec(), "-n", str(ranks), *command]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=TIMEOUT_S)
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def saved(path):
    with np.load(path) as archive:
        return {key: archive[key] for key in archive.files}


@needs_mpi
def test_two_ranks_on_half_batches_train_like_one_process_on_the_whole(tmp_path):
    steps = 6
    run_script(tmp_path, [steps, 0.0, tmp_path / "one", tmp_path / "one.npz"])
    run_script(tmp_path, [steps, 0.0, tmp_path / "two", tmp_path / "two.npz", "--per-rank-dir"],
               ranks=2)
    one, two = saved(tmp_path / "one.npz"), saved(tmp_path / "two.npz")
    assert set(one) == set(two) and len(one) == 6 + 2
    assert (one["grad_norms"] > 0.5).any()  # clipping took part
    for key in one:  # float64: equal up to the rounding of summing in another order
        np.testing.assert_allclose(two[key], one[key], rtol=1e-10, atol=1e-13, err_msg=key)
    # rank 0 wrote the metrics and checkpoints; rank 1 (given a folder of its own) wrote nothing
    assert {p.name for p in (tmp_path / "two" / "rank0").iterdir()} >= {"metrics.jsonl",
                                                                        "last.npz"}
    assert not (tmp_path / "two" / "rank1").exists()


@needs_mpi
def test_two_ranks_resume_exactly_with_a_generator_each(tmp_path):
    run_script(tmp_path, [6, 0.2, tmp_path / "whole", tmp_path / "whole.npz"], ranks=2)
    run_script(tmp_path, [4, 0.2, tmp_path / "parts", tmp_path / "first.npz"], ranks=2)  # mid-epoch
    run_script(tmp_path, [6, 0.2, tmp_path / "parts", tmp_path / "parts.npz", "--resume"],
               ranks=2)
    whole, parts = saved(tmp_path / "whole.npz"), saved(tmp_path / "parts.npz")
    for key in whole:  # losses of every step and parameters, dropout included: bit for bit
        assert np.array_equal(whole[key], parts[key]), key
    states = checkpoint.load(tmp_path / "parts" / "last.npz")["rng_states"]
    assert len(states) == 2 and states[0] != states[1]  # each rank drew its own masks


@needs_mpi
def test_the_pretrain_command_runs_under_mpiexec(tmp_path):
    out = tmp_path / "run"
    env = child_environment(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    command = [find_mpiexec(), "-n", "2", sys.executable, "-m", "minitransformer", "pretrain",
               "--set", "steps=4", "--set", "eval_every=2", "--set", "d_model=32",
               "--set", "n_layers=1", "--set", "d_ff=64", "--set", f"out_dir={out}",
               "--no-progress"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("validation loss") == 1  # rank 0 alone logs
    rows = [row for row in (out / "metrics.jsonl").read_text().splitlines() if row]
    assert len(rows) == 2 and (out / "last.npz").exists()  # steps 2 and 4, once each


FAILING_SCRIPT = textwrap.dedent('''
    import minitransformer as mt
    import minitransformer.functional as F
    from minitransformer import distributed, nn, optim
    from minitransformer.train import TrainConfig, Trainer

    model, calls = nn.Linear(3, 2), []
    x, y = mt.randn(8, 3), mt.tensor([0, 1] * 4)


    def loss_fn(model, batch):
        calls.append(1)
        if distributed.rank() == 1 and len(calls) == 3:
            raise ValueError("a bad batch on rank 1")
        return F.cross_entropy(model(batch[0]), batch[1])


    Trainer(model, optim.SGD(model.parameters(), lr=0.1), loss_fn, lambda epoch: [(x, y)],
            TrainConfig(steps=10, progress=False)).fit()
''')


@needs_mpi
def test_an_error_on_one_rank_ends_every_rank(tmp_path):
    script = tmp_path / "failing.py"
    script.write_text(FAILING_SCRIPT)
    result = subprocess.run([find_mpiexec(), "-n", "2", sys.executable, str(script)],
                            cwd=tmp_path, env=child_environment(), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0  # rather than rank 0 waiting in its Allreduce for ever
    assert "ValueError: a bad batch on rank 1" in result.stdout + result.stderr
