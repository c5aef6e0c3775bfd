"""The Large Movie Review Dataset (Maas et al. 2011), read in its official ``aclImdb`` layout:

    aclImdb/
      train/pos/<id>_<rating>.txt   12,500 positive reviews (rating 7..10)
      train/neg/<id>_<rating>.txt   12,500 negative reviews (rating 1..4)
      test/pos/, test/neg/          the same for the test split
      train/unsup/                  unlabelled reviews (not read here)

straight from the ``aclImdb`` folder or from the ``aclImdb_v1.tar.gz`` archive (no extraction).

Cleaning: the reviews hold HTML line breaks; each ``<br />`` (also ``<br/>``, ``<br>``) becomes a
newline. Nothing else is changed. Reviews come sorted: negative first, then positive, each by id.
Files are read as strict UTF-8: a file that is not, or that is empty, is an error naming it.
With ``errors="replace"`` each undecodable byte becomes U+FFFD and one UnicodeWarning counts
them (bytes and files), as ``read_text`` does.
"""

import re
import tarfile
import warnings
from pathlib import Path

from minitransformer.data.errors import DataFormatError
from minitransformer.data.text_io import check_errors, decode_utf8

__all__ = ["load_imdb"]

SPLITS = ("train", "test")
LABELS = {"neg": 0, "pos": 1}
LAYOUT = "aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt"
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_FILE_NAME = re.compile(r"(\d+)_(\d+)\.txt")


def clean_review(text):
    """Replace the HTML line breaks of a review by newlines."""
    return _BREAK.sub("\n", text)


def _parse(name, data, source, errors):
    """(id, rating, cleaned text, bytes replaced) of one review file."""
    match = _FILE_NAME.fullmatch(name)
    if match is None:
        raise DataFormatError(f"load_imdb: {source} is not named <id>_<rating>.txt "
                              f"(the official layout is {LAYOUT})")
    if not data.strip():
        raise DataFormatError(f"load_imdb: {source} is empty")
    text, replaced = decode_utf8(data, source, "load_imdb", errors)
    return int(match.group(1)), int(match.group(2)), clean_review(text), replaced


def _from_directory(root, split, errors):
    if not (root / split).is_dir() and (root / "aclImdb" / split).is_dir():
        root = root / "aclImdb"  # the folder that holds aclImdb/ was given: accept it
    examples = {}
    for label_name in LABELS:
        folder = root / split / label_name
        if not folder.is_dir():
            raise DataFormatError(f"load_imdb: {root} has no {split}/{label_name}/ folder "
                                  f"(the official layout is {LAYOUT})")
        examples[label_name] = [_parse(f.name, f.read_bytes(), f, errors)
                                for f in folder.iterdir() if f.suffix == ".txt"]
    return examples


def _from_archive(path, split, errors):
    examples = {label_name: [] for label_name in LABELS}
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                parts = member.name.split("/")
                if (not member.isfile() or len(parts) < 3 or parts[-3] != split
                        or parts[-2] not in LABELS or not parts[-1].endswith(".txt")):
                    continue
                data = archive.extractfile(member).read()
                source = f"{path.name}:{member.name}"
                examples[parts[-2]].append(_parse(parts[-1], data, source, errors))
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DataFormatError(f"load_imdb: {path} is not a readable tar archive ({error})") \
            from None
    for label_name, found in examples.items():
        if not found:
            raise DataFormatError(f"load_imdb: {path} has no aclImdb/{split}/{label_name}/ "
                                  f"reviews (the official layout is {LAYOUT})")
    return examples


def load_imdb(path, split="train", with_ratings=False, errors="strict"):
    """IMDB reviews and their labels (1 = positive, 0 = negative).

    path: the ``aclImdb`` folder (holding ``train/`` and ``test/``) or ``aclImdb_v1.tar.gz``.
    split: "train" or "test".
    with_ratings: also return each review's rating (1..10, from its file name).

    Returns (texts, labels), or (texts, labels, ratings) with ``with_ratings=True``: lists of
    equal length.
    """
    if split not in SPLITS:
        raise ValueError(f"load_imdb: split must be one of {SPLITS}, got {split!r}")
    check_errors(errors, "load_imdb")
    path = Path(path)
    if path.is_dir():
        examples = _from_directory(path, split, errors)
    elif path.is_file():
        examples = _from_archive(path, split, errors)
    else:
        raise FileNotFoundError(f"load_imdb: no folder or archive {path}")
    replaced = [r for found in examples.values() for *_, r in found if r]
    if replaced:
        warnings.warn(f"load_imdb: {path}: {sum(replaced)} undecodable byte(s) in "
                      f"{len(replaced)} file(s) replaced by U+FFFD", UnicodeWarning, stacklevel=2)
    texts, labels, ratings = [], [], []
    for label_name, label in LABELS.items():
        for _, rating, text, _ in sorted(examples[label_name]):
            texts.append(text)
            labels.append(label)
            ratings.append(rating)
    if with_ratings:
        return texts, labels, ratings
    return texts, labels
