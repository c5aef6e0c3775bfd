"""GloVe word vectors (Pennington et al. 2014) in their text format, one word a line:

    the 0.418 0.24968 -0.41242 0.1217 ... (D numbers)

read from ``.txt``, ``.txt.gz`` or straight from the official ``.zip`` (``member=`` picks the
file; a zip holding one .txt needs none). The dimension D is taken from the first line; every other
line must have D numbers. A first line of two integers (the word2vec header "400000 50") is
skipped. A word seen twice keeps its first vector. Lines are strict UTF-8 (``errors="replace"``
puts U+FFFD in place of bad bytes).

``glove_embedding_matrix`` lines the vectors up with a tokenizer's vocabulary, to initialise an
Embedding: row i is the vector of token i, found as written or lower-cased. Words GloVe lacks
(and the special tokens but ``<pad>``, whose row is zero) get a seeded random vector drawn from
N(0, s²), s the standard deviation of the vectors that were found.
"""

import array
import contextlib
import gzip
import math
import random
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from minitransformer.backend import get_backend, use_backend
from minitransformer.data.errors import DataFormatError
from minitransformer.data.text_io import check_errors, decode_utf8
from minitransformer.data.tokenizer import N_SPECIAL, PAD_ID
from minitransformer.tensor import tensor

__all__ = ["GloveCoverage", "glove_embedding_matrix", "iter_glove", "load_glove"]


@contextlib.contextmanager
def _open_lines(path, member, function):
    """Open a GloVe file for reading raw lines (bytes); yields (stream, name for messages)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{function}: no file {path}")
    with path.open("rb") as probe:
        head = probe.read(4)
    if head.startswith(b"PK"):
        with zipfile.ZipFile(path) as archive:
            texts = [name for name in archive.namelist() if name.endswith(".txt")]
            if member is None:
                if len(texts) != 1:
                    raise ValueError(f"{function}: {path.name} holds {len(texts)} .txt files "
                                     f"{texts}; choose one with member=")
                member = texts[0]
            if member not in archive.namelist():
                raise FileNotFoundError(f"{function}: {path.name} has no member {member!r} "
                                        f"(it holds {texts})")
            with archive.open(member) as stream:
                yield stream, f"{path.name}:{member}"
        return
    if member is not None:
        raise ValueError(f"{function}: member={member!r} is only for .zip files, "
                         f"and {path.name} is not one")
    opener = gzip.open if head.startswith(b"\x1f\x8b") else open
    with opener(path, "rb") as stream:
        yield stream, path.name


def iter_glove(path, member=None, errors="strict", wanted=None, function="load_glove"):
    """Yield (word, vector) for each line of a GloVe file: vector a float32 ``array.array`` of D
    numbers, or None for a word not in ``wanted`` (a set; None wants every word). Every line's
    dimension is checked; numbers are parsed (and checked) for wanted words only."""
    check_errors(errors, function)
    dim = None
    with _open_lines(path, member, function) as (stream, source):
        for line_number, raw in enumerate(stream, start=1):
            where = f"line {line_number} of {source}"
            line, _ = decode_utf8(raw, where, function, errors)
            line = line.rstrip("\n").rstrip(" ")
            if not line.strip():
                continue
            if dim is None:
                fields = line.split(" ")
                if line_number == 1 and len(fields) == 2 and all(f.isdigit() for f in fields):
                    continue  # a word2vec-style header: "<count> <dimension>"
                dim = len(fields) - 1
                if dim < 1:
                    raise DataFormatError(f"{function}: {where} has a word but no numbers")
            # the word is all before the last D fields (a few GloVe 840B words hold spaces)
            parts = line.rsplit(" ", dim)
            word = parts[0]
            too_many = " " in word and _is_number(word.rsplit(" ", 1)[-1])
            if len(parts) != dim + 1 or not word or too_many:
                count = len(line.split(" ")) - 1
                raise DataFormatError(f"{function}: {where} has {count} numbers, expected {dim}")
            if wanted is not None and word not in wanted:
                yield word, None
                continue
            try:
                vector = array.array("f", map(float, parts[1:]))
            except ValueError:
                bad = next(f for f in parts[1:] if not _is_number(f))
                raise DataFormatError(f"{function}: {where}: {bad!r} is not a number") from None
            if not math.isfinite(sum(vector)):  # NaN and inf survive a sum; finite float32 do
                bad = next(f for f, v in zip(parts[1:], vector) if not math.isfinite(v))
                raise DataFormatError(f"{function}: {where}: {bad!r} is not a finite float32 "
                                      "number")
            yield word, vector
    if dim is None:
        raise DataFormatError(f"{function}: {source} holds no vectors (empty file)")


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_glove(path, member=None, max_words=None, errors="strict"):
    """All vectors of a GloVe file (the first ``max_words`` when given).

    Returns (words, vectors): a list of V strings and a float32 Tensor of shape (V, D).
    """
    if max_words is not None and (not isinstance(max_words, int) or max_words < 1):
        raise ValueError(f"load_glove: max_words must be None or an int >= 1, got {max_words!r}")
    words, seen, flat = [], set(), array.array("f")
    for word, vector in iter_glove(path, member, errors, function="load_glove"):
        if max_words is not None and len(words) >= max_words:
            break
        if word in seen:
            continue
        seen.add(word)
        words.append(word)
        flat.extend(vector)
        dim = len(vector)
    return words, _matrix(flat, len(words), dim)


@dataclass
class GloveCoverage:
    """How much of a vocabulary GloVe covers (special tokens not counted)."""

    found: int
    total: int
    dim: int
    init_std: float
    missing: list = field(default_factory=list, repr=False)

    @property
    def fraction(self):
        return self.found / self.total if self.total else 0.0

    def __str__(self):
        return (f"GloVe covers {self.found:,} of {self.total:,} vocabulary words "
                f"({self.fraction:.1%}); {len(self.missing):,} got a random N(0, "
                f"{self.init_std:.3f}²) vector")


def _candidates(token):
    """The spellings to look up for a vocabulary token: as written, lower-cased, stripped."""
    seen = []
    for spelling in (token, token.lower(), token.strip(), token.strip().lower()):
        if spelling and spelling not in seen:
            seen.append(spelling)
    return seen


def glove_embedding_matrix(tokenizer, path, seed=0, member=None, errors="strict"):
    """An embedding matrix for ``tokenizer``'s vocabulary from a GloVe file.

    Returns (matrix, coverage): a float32 Tensor of shape (vocab_size, D), row i for token id i,
    and a GloveCoverage report. Use it as ``embedding.weight.data[...] = matrix.data``.
    """
    tokens = [tokenizer.id_to_token(i) for i in range(tokenizer.vocab_size)]
    wanted = {}
    for token_id in range(N_SPECIAL, len(tokens)):
        for spelling in _candidates(tokens[token_id]):
            wanted.setdefault(spelling, []).append(token_id)
    found_vectors, dim = {}, None  # spelling -> its vector
    for word, vector in iter_glove(path, member, errors, set(wanted), "glove_embedding_matrix"):
        if vector is None:
            continue
        dim = len(vector)
        found_vectors.setdefault(word, vector)
    if dim is None:  # no vocabulary word found: read the dimension from the first line
        dim = len(next(iter_glove(path, member, errors, None, "glove_embedding_matrix"))[1])
    rows = [None] * len(tokens)
    for token_id in range(N_SPECIAL, len(tokens)):
        for spelling in _candidates(tokens[token_id]):
            if spelling in found_vectors:
                rows[token_id] = found_vectors[spelling]
                break
    std = _std([row for row in rows if row is not None]) or 1.0 / math.sqrt(dim)
    rng = random.Random(seed)
    missing = []
    flat = array.array("f")
    for token_id, row in enumerate(rows):
        if token_id == PAD_ID:
            row = array.array("f", [0.0] * dim)
        elif row is None:
            if token_id >= N_SPECIAL:
                missing.append(tokens[token_id])
            row = array.array("f", [rng.gauss(0.0, std) for _ in range(dim)])
        flat.extend(row)
    matrix = _matrix(flat, len(tokens), dim)
    found = len(tokens) - N_SPECIAL - len(missing)
    return matrix, GloveCoverage(found, len(tokens) - N_SPECIAL, dim, std, missing)


def _matrix(flat, n_rows, dim):
    """A float32 Tensor (n_rows, dim) on the current backend from an ``array.array`` of numbers.
    NumPy reads the buffer directly (no Python float per number); then it moves to the device."""
    with use_backend("numpy"):
        matrix = tensor(flat, dtype="float32").reshape(n_rows, dim)  # (V, D)
    return matrix if get_backend() == "numpy" else matrix.to(get_backend())


def _std(rows):
    """The standard deviation of all numbers in ``rows`` (0.0 for none)."""
    count = sum(len(row) for row in rows)
    if count == 0:
        return 0.0
    mean = math.fsum(math.fsum(row) for row in rows) / count
    return math.sqrt(math.fsum(math.fsum((v - mean) ** 2 for v in row) for row in rows) / count)
