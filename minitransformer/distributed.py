"""Data-parallel training over MPI: N processes (ranks) each hold the whole model, each takes 1/N
of every batch, and after backward they average their gradients, so every rank makes the same
update as one process would on the whole batch.

    mpiexec -n 2 minitransformer pretrain --set steps=200    # 2 ranks, the same global batch

What the Trainer does with this module when ``mpiexec -n N`` (N > 1) started it:

1. ``init()`` reads the launcher's environment (``PMI_SIZE`` from MPICH's mpiexec,
   ``OMPI_COMM_WORLD_SIZE`` from Open MPI's) and only then imports mpi4py. A plain ``python``
   run is a world of size 1 and never touches MPI (mpi4py need not even be installed).
2. Each rank draws its own random numbers: ``rank_seed(seed)`` is the rank-th of NumPy's
   ``SeedSequence(seed).spawn(N)`` (through ``backend.spawn_seeds``), so dropout masks and MLM
   masks differ between ranks, as they differ between the rows of one batch.
3. ``broadcast_parameters``: rank 0's initial parameters go to every rank.
4. ``shard_collate``: of each batch of ``batch_size`` rows, rank r collates rows r, r + N,
   r + 2N, ... (every N-th row; ``shard`` says why not a contiguous slice).
5. ``average_gradients``: the gradients are laid end to end in flat buffers (``Buckets``, a few
   MiB each) and summed across the ranks by ONE in-place Allreduce per bucket, then divided by N.
   Every rank now holds the gradient of the whole batch; clipping and the optimizer step run
   alike everywhere, and the parameters stay equal without ever being sent again.
6. Only rank 0 (``is_main``) writes the metrics file, checkpoints and the progress bar.

docs/distributed.md explains the why, the cost of an allreduce, and what changes on GPUs.

Deviation: the one World of this process is cached by ``init()``: besides backend.py's, the only
global state, because MPI itself is initialised once per process.
"""

import functools
import os
import sys
import time
import traceback

from minitransformer import backend
from minitransformer.errors import BackendUnavailableError

__all__ = [
    "BUCKET_BYTES",
    "Buckets",
    "World",
    "from_environment",
    "init",
    "is_main",
    "launched_size",
    "main_only",
    "rank",
    "rank_seed",
    "shard",
    "shard_collate",
    "world_size",
]

BUCKET_BYTES = 4 * 2**20  # 4 MiB: 1M float32 numbers per Allreduce
LAUNCHER_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")  # Open MPI, MPICH (and Intel MPI)
_INSTALL_HINT = 'pip install "minitransformer[mpi]"'


# --------------------------------------------------------------------------- flat buffers


class Buckets:
    """The arrays of many parameters laid end to end in a few flat buffers, for collectives.

    Parameters keep their order; a new bucket starts where the current one would grow past
    ``bucket_bytes`` (a parameter is never split: a larger one fills a bucket alone) or where the
    dtype changes. For gradients (``extras`` a number, not None) the last bucket ends with a
    tail: one slot per parameter (1 where this rank has its gradient, else 0), then ``extras``
    free slots (the trainer's loss and token count), so that they travel in the same Allreduce
    as the gradients. For values (``extras=None``) there is no tail.

    Shapes: ``buffers[b]`` (n_b,) with the parameters' dtype, on their device; parameter j
    occupies ``buffers[b][start:stop]`` for ``(b, start, stop) = slots[j]``.
    """

    def __init__(self, parameters, bucket_bytes=BUCKET_BYTES, extras=None):
        self.parameters = list(parameters)
        if not self.parameters:
            raise ValueError("Buckets: got no parameters to lay out")
        if bucket_bytes <= 0:
            raise ValueError(f"Buckets: bucket_bytes must be positive, got {bucket_bytes}")
        self.ids = [id(p) for p in self.parameters]
        self.slots, sizes, kinds = [], [], []  # kinds: (array module, dtype) of each bucket
        for p in self.parameters:
            n, kind = p.data.size, (backend.array_module(p.data), p.data.dtype)
            new_bucket = not sizes or kind != kinds[-1] or \
                (sizes[-1] + n) * kind[1].itemsize > bucket_bytes
            if new_bucket:
                sizes.append(0)
                kinds.append(kind)
            self.slots.append((len(sizes) - 1, sizes[-1], sizes[-1] + n))
            sizes[-1] += n
        self.extras = extras
        self.tail = sizes[-1]  # where the tail starts in the last bucket
        if extras is not None:
            sizes[-1] += len(self.parameters) + extras
        self.buffers = [xp.empty(n, dtype=dtype) for n, (xp, dtype) in zip(sizes, kinds)]

    def __repr__(self):
        return (f"Buckets({len(self.parameters)} parameters in {len(self.buffers)} buffers of "
                f"{[int(b.size) for b in self.buffers]} numbers)")

    def pack_grads(self, extras=()):
        """Copy every gradient into the buffers (zeros where a parameter has none) and fill the
        tail with the has-gradient flags and ``extras``."""
        if self.extras is None or len(extras) != self.extras:
            raise ValueError(f"Buckets.pack_grads: these buckets carry {self.extras} extras "
                             f"(None: values only, no tail for gradients), got {len(extras)}")
        flags = []
        for p, (b, start, stop) in zip(self.parameters, self.slots):
            if p.grad is None:
                self.buffers[b][start:stop] = 0
            else:
                self.buffers[b][start:stop] = p.grad.reshape(-1)
            flags.append(0.0 if p.grad is None else 1.0)
        last = self.buffers[-1]
        xp = backend.array_module(last)
        last[self.tail:] = xp.asarray(flags + [float(x) for x in extras], dtype=last.dtype)

    def unpack_grads(self):
        """Copy the buffers back into the gradients; returns the tail's ``extras`` slots.

        A parameter gets a gradient where its flag is positive (some rank had one) and keeps
        None where it is 0 (no rank had one), so every rank's optimizer skips the same ones.
        """
        if self.extras is None:
            raise ValueError("Buckets.unpack_grads: these buckets were made for values "
                             "(extras=None), without the tail that gradients need")
        tail = backend.to_numpy(self.buffers[-1][self.tail:]).tolist()  # one copy off a GPU
        flags, extras = tail[:len(self.parameters)], tail[len(self.parameters):]
        for p, (b, start, stop), flag in zip(self.parameters, self.slots, flags):
            if flag > 0:
                values = self.buffers[b][start:stop].reshape(p.data.shape)
                if p.grad is None:
                    p.grad = values.copy()
                else:
                    p.grad[...] = values
        return extras

    def pack_data(self):
        """Copy every parameter's values into the buffers."""
        for p, (b, start, stop) in zip(self.parameters, self.slots):
            self.buffers[b][start:stop] = p.data.reshape(-1)

    def unpack_data(self):
        """Copy the buffers back into the parameters' values (in place)."""
        for p, (b, start, stop) in zip(self.parameters, self.slots):
            p.data[...] = self.buffers[b][start:stop].reshape(p.data.shape)


def _on_host(buffer, collective):
    """``collective(buffer)``, in place. A GPU buffer goes through a host copy: the MPI that pip
    installs (MPICH's wheel) cannot read GPU memory; a CUDA-aware MPI or NCCL could."""
    if backend.device_of(buffer) == "cpu":
        collective(buffer)
        return
    host = backend.to_numpy(buffer)
    collective(host)
    buffer.set(host)  # CuPy: copy back to the GPU


# --------------------------------------------------------------------------- the world


class World:
    """The ranks of one run, seen from one of them: ``rank`` in 0..size-1, ``size``, ``is_main``.

    ``comm`` is mpi4py's ``COMM_WORLD`` and ``mpi`` the ``mpi4py.MPI`` module, or both None in a
    world of one, where every collective returns at once.
    """

    def __init__(self, rank=0, size=1, comm=None, mpi=None, bucket_bytes=BUCKET_BYTES):
        self.rank, self.size, self.comm, self.mpi = rank, size, comm, mpi
        self.bucket_bytes = bucket_bytes
        self._buckets = None  # made at the first average_gradients, reused every step

    def __repr__(self):
        return f"World(rank={self.rank}, size={self.size})"

    @property
    def is_main(self):
        """True on rank 0, the one rank that writes files and prints."""
        return self.rank == 0

    # ----------------------------------------------------------------------- array collectives

    def _allreduce_sum(self, buffer):
        """buffer ← the sum of every rank's buffer (elementwise, in place)."""
        self.comm.Allreduce(self.mpi.IN_PLACE, buffer, op=self.mpi.SUM)

    def _broadcast(self, buffer):
        """buffer ← rank 0's buffer (in place)."""
        self.comm.Bcast(buffer, root=0)

    def broadcast_parameters(self, parameters):
        """Give every rank rank 0's parameter values: one Bcast per bucket.

        Ranks that built the model from the same seed agree already; this makes sure (a model
        initialised on another device, or loaded from a file only rank 0 could read, differs).
        """
        if self.size == 1:
            return
        buckets = Buckets(parameters, self.bucket_bytes)
        buckets.pack_data()
        for buffer in buckets.buffers:
            _on_host(buffer, self._broadcast)
        buckets.unpack_data()

    def average_gradients(self, parameters, loss=0.0, tokens=0):
        """Replace each parameter's gradient by its mean over the ranks, in place; returns
        (the mean of the ranks' ``loss``, the sum of their ``tokens``).

        The gradients, a has-gradient flag per parameter, the loss and the token count travel
        together: ONE Allreduce (sum) per bucket of the flat buffers, then a division by N. A
        parameter with a gradient on some ranks only gets the mean with zeros for the others
        (what the whole batch would give); one without a gradient anywhere keeps None.
        """
        if self.size == 1:
            return loss, tokens
        parameters = list(parameters)
        if self._buckets is None or self._buckets.ids != [id(p) for p in parameters]:
            self._buckets = Buckets(parameters, self.bucket_bytes, extras=2)
        self._buckets.pack_grads((loss, tokens))
        for buffer in self._buckets.buffers:
            _on_host(buffer, self._allreduce_sum)
            buffer *= 1.0 / self.size  # the sum of N gradients -> their mean
        mean_loss, mean_tokens = self._buckets.unpack_grads()
        return mean_loss, round(mean_tokens * self.size)

    # ----------------------------------------------------------------------- object collectives

    def broadcast_object(self, value):
        """Rank 0's ``value`` on every rank (any picklable object: metrics, a decision)."""
        return value if self.size == 1 else self.comm.bcast(value, root=0)

    def gather_object(self, value):
        """Every rank's ``value`` as a list in rank order, on rank 0; None on the others."""
        return [value] if self.size == 1 else self.comm.gather(value, root=0)

    def barrier(self):
        """Wait until every rank gets here (e.g. until rank 0 has written a checkpoint)."""
        if self.size > 1:
            self.comm.Barrier()

    def abort(self, error):
        """Print ``error`` with its traceback, then end every rank: an error on one rank alone
        would leave the others waiting in their next collective for ever."""
        sys.stderr.write("".join(traceback.format_exception(error)))  # one write: one piece
        sys.stderr.flush()
        time.sleep(0.5)  # time for mpiexec to pass the message on before the abort ends its pipes
        self.comm.Abort(1)

    # ----------------------------------------------------------------------- seeds and data

    def rank_seed(self, seed):
        """This rank's seed for a run seeded with ``seed``.

        ``seed`` itself in a world of one (a single process runs exactly as it always did);
        otherwise the rank-th of ``SeedSequence(seed).spawn(size)``: independent streams, one a
        rank, reproducible from ``seed``.
        """
        if self.size == 1:
            return seed
        return backend.spawn_seeds(seed, self.size)[self.rank]

    def shard(self, rows):
        """This rank's rows of a batch: ``rows[rank::size]``, every size-th row from the rank-th.

        Strided, not a contiguous slice, because the DataLoader sorts each batch by length
        (bucketing): contiguous halves would give one rank all the short rows and another all
        the long ones, and so unequal padding and work. A batch with fewer rows than ranks (a
        short last batch) gives rank r row r mod len(rows): such rows count more than once in
        that step, and no rank is left with an empty batch.
        """
        if self.size == 1 or len(rows) == 0:
            return rows
        if len(rows) < self.size:
            index = self.rank % len(rows)
            return rows[index:index + 1]
        return rows[self.rank::self.size]

    def shard_collate(self, collate_fn=None):
        """A DataLoader ``collate_fn`` that collates only this rank's ``shard`` of each batch of
        examples; ``collate_fn`` itself (unchanged) in a world of one."""
        if self.size == 1:
            return collate_fn

        def collate(examples):
            rows = self.shard(examples)
            return rows if collate_fn is None else collate_fn(rows)

        return collate


def launched_size(environ=None):
    """How many processes mpiexec started, read from its environment; 1 without mpiexec."""
    environ = os.environ if environ is None else environ
    for name in LAUNCHER_SIZE_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"distributed.init: {name}={value!r} is not a number of "
                                 "processes")
            return int(value)
    return 1


def _import_mpi(size):
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise BackendUnavailableError(
            f"distributed.init: mpiexec started {size} processes but mpi4py cannot be imported "
            f"({error}); install MPI for Python with: {_INSTALL_HINT}"
        ) from None
    return MPI


def from_environment(environ=None):
    """A World for this process, from the launcher's environment (``init`` caches one).

    Without mpiexec (or with ``-n 1``) a World of one, without importing mpi4py.
    """
    size = launched_size(environ)
    if size == 1:
        return World()
    mpi = _import_mpi(size)
    comm = mpi.COMM_WORLD
    if comm.Get_size() != size:
        raise BackendUnavailableError(
            f"distributed.init: mpiexec started {size} processes but MPI sees a world of "
            f"{comm.Get_size()}: that mpiexec belongs to another MPI than mpi4py's; use the one "
            f"installed next to python by {_INSTALL_HINT}"
        )
    return World(comm.Get_rank(), size, comm, mpi)


@functools.cache
def init():
    """The World of this process (made once, from the environment; see ``from_environment``)."""
    return from_environment()


def rank():
    """This process's rank: 0..world_size()-1 (0 without mpiexec)."""
    return init().rank


def world_size():
    """How many ranks train together (1 without mpiexec)."""
    return init().size


def is_main():
    """True on rank 0, the rank that writes files and prints (always True without mpiexec)."""
    return init().is_main


def rank_seed(seed):
    """This rank's seed for a run seeded with ``seed`` (``World.rank_seed``)."""
    return init().rank_seed(seed)


def shard(rows):
    """This rank's rows of a batch (``World.shard``)."""
    return init().shard(rows)


def shard_collate(collate_fn=None):
    """A collate_fn that collates this rank's rows of each batch (``World.shard_collate``)."""
    return init().shard_collate(collate_fn)


def main_only(function):
    """``function`` on rank 0; on the other ranks a function that does nothing (for ``log``)."""
    if is_main():
        return function
    return lambda *args, **kwargs: None
