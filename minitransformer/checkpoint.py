"""Checkpoints: one ``.npz`` file per save, written atomically, read without unpickling.

What a file holds:

- ``model/<name>``: every parameter (NumPy arrays, so a file saved on a GPU loads on a CPU);
- ``optimizer/<position>/<buffer>``: the optimizer's state (Adam's moments, momentum buffers);
- ``state/<key>``: any array passed as state;
- ``__meta__``: one JSON document (as bytes) with everything else: the format version, the
  package version, the optimizer's hyper-parameters, the keyword ``**state`` given to ``save``
  (step, epoch, configs, the tokenizer, the generator state...), and a manifest of every array's
  shape and dtype.

Safety:

- ``load`` reads with ``allow_pickle=False``: a file carrying a pickled or object array is
  refused, never executed.
- ``save`` writes a temporary file in the same folder, flushes and fsyncs it, then renames it over
  the target (``os.replace`` is atomic): a process killed at any moment leaves either the old
  file or the new one, never a half-written one. A write that fails (a full disk, no
  permission) removes its temporary file and raises ``CheckpointError`` saying that the
  previous file is unchanged.
- ``load`` checks every key, shape and dtype against the model and names each mismatch; a
  truncated or corrupted file raises ``CheckpointError`` naming the file.
"""

import json
import os
import tempfile
import zipfile
from pathlib import Path

from minitransformer import backend
from minitransformer.tensor import Tensor

__all__ = ["CheckpointError", "load", "save"]

FORMAT_VERSION = 1
META_KEY = "__meta__"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read, or does not fit the model or optimizer."""


def _package_version():
    from minitransformer import __version__

    return __version__


def _is_array(value):
    return isinstance(value, Tensor) or hasattr(value, "__array_interface__") or \
        type(value).__module__.startswith("cupy")


def _flatten_arrays(model, optimizer, state):
    """All arrays by key (NumPy), and the JSON-able rest of the state."""
    arrays, meta_state = {}, {}
    if model is not None:
        for name, value in model.state_dict().items():
            arrays[f"model/{name}"] = value
    optimizer_meta = None
    if optimizer is not None:
        saved = optimizer.state_dict()
        for position, buffers in saved["state"].items():
            for name, value in buffers.items():
                if name == "step":
                    continue
                arrays[f"optimizer/{position}/{name}"] = value
        optimizer_meta = {
            "param_groups": saved["param_groups"],
            "steps": {str(p): b["step"] for p, b in saved["state"].items()},
        }
    for key, value in state.items():
        if _is_array(value):
            data = value.data if isinstance(value, Tensor) else value
            arrays[f"state/{key}"] = backend.to_numpy(data)
        else:
            meta_state[key] = value
    return arrays, meta_state, optimizer_meta


def save(path, model=None, optimizer=None, **state):
    """Save ``model``'s parameters, ``optimizer``'s state and any ``**state`` to ``path``.

    ``state`` values are arrays/Tensors (stored as arrays) or JSON-able values (numbers, strings,
    lists, dicts: step, epoch, configs, a tokenizer's JSON, the generator state). The write is
    atomic. Returns the path.
    """
    path = Path(path)
    arrays, meta_state, optimizer_meta = _flatten_arrays(model, optimizer, state)
    meta = {
        "format": FORMAT_VERSION,
        "version": _package_version(),
        "state": meta_state,
        "optimizer": optimizer_meta,
        "arrays": {key: [list(a.shape), str(a.dtype)] for key, a in arrays.items()},
    }
    try:
        encoded = json.dumps(meta).encode("utf-8")
    except TypeError as error:
        raise CheckpointError(f"save: the state for {path} is not JSON-serializable ({error}); "
                              "pass numbers, strings, lists, dicts or arrays") from None
    arrays[META_KEY] = backend.bytes_to_array(encoded)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            backend.save_npz(file, arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:  # disk full, no permission, ...: the old file is still there
        _remove(temporary)
        kept = f"the previous {path.name} is unchanged" if path.exists() else \
            f"no {path.name} was written"
        raise CheckpointError(f"save: could not write {path} ({type(error).__name__}: "
                              f"{error}); {kept}") from error
    except BaseException:
        _remove(temporary)
        raise
    _fsync_directory(path.parent)
    return path


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _fsync_directory(folder):
    """Make the rename itself durable (where the platform allows opening a folder)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _read(path):
    """Every array of the file, NumPy, plus the parsed meta; CheckpointError on any damage."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"load: no checkpoint at {path}")
    if path.is_dir():
        raise CheckpointError(f"load: {path} is a folder, not a checkpoint (a .npz file, e.g. "
                              f"{path / 'last.npz'})")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as file:
            begins_as_zip = file.read(4) == b"PK\x03\x04"
        if begins_as_zip:  # the start of an archive without its end: cut short
            raise CheckpointError(f"load: {path} is truncated or corrupted (an .npz archive "
                                  "without its end)")
        raise CheckpointError(f"load: {path} is not a checkpoint (not an .npz archive: "
                              f"{_what_it_is(path)})")
    try:
        arrays = backend.load_npz(path)
    except ValueError as error:
        if "allow_pickle" in str(error) or "Object arrays" in str(error):
            raise CheckpointError(
                f"load: {path} holds a pickled (object) array; checkpoints are read without "
                "unpickling, so this file is refused"
            ) from None
        raise CheckpointError(f"load: {path} is not a readable checkpoint ({error})") from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as error:
        raise CheckpointError(
            f"load: {path} is truncated or corrupted ({type(error).__name__}: {error})"
        ) from None
    if META_KEY not in arrays:
        raise CheckpointError(f"load: {path} has no {META_KEY} entry: not a minitransformer "
                              "checkpoint")
    try:
        meta = json.loads(bytes(arrays.pop(META_KEY).tolist()).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise CheckpointError(f"load: the metadata of {path} is corrupted ({error})") from None
    for key, (shape, dtype) in meta["arrays"].items():
        if key not in arrays or list(arrays[key].shape) != shape or str(arrays[key].dtype) != dtype:
            raise CheckpointError(f"load: {path} is inconsistent: array {key!r} is missing or "
                                  f"differs from its manifest ({shape}, {dtype})")
    return arrays, meta


def _what_it_is(path):
    """A few words on a file that is not a zip archive: empty, text or binary."""
    with open(path, "rb") as file:
        head = file.read(512)
    if not head:
        return "an empty file"
    if head.startswith(b"\x93NUMPY"):
        return "a single .npy array"
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return "a binary file of another kind"


def load(path, model=None, optimizer=None):
    """Read a checkpoint; load it into ``model`` and ``optimizer`` when given.

    Returns a dict: the ``**state`` given to ``save`` at its top level (``state["step"]``), with
    arrays as NumPy arrays, plus ``"version"`` (the package version that saved it), and
    ``"model"`` (name -> array) when no model was given. Every key, shape and dtype is checked
    against the model before anything is loaded; each mismatch is named.
    """
    arrays, meta = _read(path)
    model_state = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    if model is not None:
        _load_model(path, model, model_state)
    if optimizer is not None:
        _load_optimizer(path, optimizer, arrays, meta)
    result = dict(meta["state"])
    result.update({k[len("state/"):]: v for k, v in arrays.items() if k.startswith("state/")})
    result["version"] = meta["version"]
    if model is None:
        result["model"] = model_state
    return result


def _load_model(path, model, model_state):
    from minitransformer.nn.module import StateDictError

    try:
        model.load_state_dict(model_state, strict=True)
    except StateDictError as error:
        raise CheckpointError(f"load: {path} does not fit the model: {error}") from None


def _load_optimizer(path, optimizer, arrays, meta):
    if meta["optimizer"] is None:
        raise CheckpointError(f"load: {path} holds no optimizer state")
    state = {}
    for position, step in meta["optimizer"]["steps"].items():
        prefix = f"optimizer/{position}/"
        buffers = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        state[int(position)] = {"step": step, **buffers}
    groups = meta["optimizer"]["param_groups"]
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    try:
        optimizer.load_state_dict({"param_groups": groups, "state": state})
    except ValueError as error:
        raise CheckpointError(f"load: {path} does not fit the optimizer: {error}") from None
