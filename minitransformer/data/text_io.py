"""Reading text files: plain or gzip-compressed, one file, many files or a directory.

Undecodable bytes. Files are read as UTF-8, strictly by default: the first byte sequence that is
not UTF-8 raises DataFormatError naming the file and the byte's offset (in the decompressed data
for .gz files). ``errors="replace"`` instead puts U+FFFD (�) in place of each bad byte, counts
them and reports the count with a UnicodeWarning. A leading byte-order mark is dropped and line
endings are normalised to "\\n" (as Python's text mode does).
"""

import gzip
import re
import warnings
import zlib
from pathlib import Path

from minitransformer.data.errors import DataFormatError

__all__ = ["ERRORS", "decode_utf8", "read_bytes", "read_lines", "read_text", "text_files"]

ERRORS = ("strict", "replace")
GZIP_MAGIC = b"\x1f\x8b"
TEXT_SUFFIXES = (".txt", ".txt.gz")
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def check_errors(errors, function):
    if errors not in ERRORS:
        raise ValueError(f"{function}: errors must be one of {ERRORS}, got {errors!r}")


def decode_utf8(data, source, function, errors="strict"):
    """bytes -> (str, number of undecodable bytes replaced).

    ``source`` names the data in messages (a file name); see the module docstring for the policy.
    """
    check_errors(errors, function)
    if errors == "strict":
        try:
            text, replaced = data.decode("utf-8"), 0
        except UnicodeDecodeError as error:
            raise DataFormatError(
                f"{function}: {source} is not valid UTF-8: byte 0x{data[error.start]:02x} at "
                f"offset {error.start} ({error.reason}); pass errors='replace' to replace "
                "undecodable bytes with U+FFFD"
            ) from None
    else:
        # surrogateescape maps each bad byte to a lone surrogate, which valid UTF-8 never yields
        text, replaced = _ESCAPED_BYTE.subn("\ufffd", data.decode("utf-8", "surrogateescape"))
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text, replaced


def read_bytes(path, function):
    """(bytes, compressed): the bytes of ``path``, decompressed when it is gzip (told by its
    first two bytes), and whether it was."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{function}: no file {path}")
    data = path.read_bytes()
    if data[:2] != GZIP_MAGIC:
        return data, False
    try:
        return gzip.decompress(data), True
    except (OSError, EOFError, zlib.error) as error:
        raise DataFormatError(f"{function}: {path} is not a valid gzip file ({error})") from None


def read_file_text(path, function, errors="strict"):
    """One file's text (see the module docstring); an empty file is an error."""
    data, compressed = read_bytes(path, function)
    if not data:
        raise DataFormatError(f"{function}: {path} is empty")
    source = Path(path).name
    if compressed:
        source += " (decompressed)"
    text, replaced = decode_utf8(data, source, function, errors)
    if replaced:
        warnings.warn(f"{function}: {path}: {replaced} undecodable byte(s) replaced by U+FFFD",
                      UnicodeWarning, stacklevel=3)
    return text


def text_files(path, function):
    """The files ``path`` names: itself, each path of a list, or the .txt/.txt.gz files under a
    directory (recursively, sorted by path)."""
    if isinstance(path, (list, tuple)):
        if not path:
            raise ValueError(f"{function}: the list of paths is empty")
        files = []
        for item in path:
            files.extend(text_files(item, function))
        return files
    if not isinstance(path, (str, Path)):
        raise TypeError(f"{function}: expected a path, a list of paths or a directory, "
                        f"got {type(path).__name__}")
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(TEXT_SUFFIXES))
        if not files:
            raise DataFormatError(f"{function}: directory {path} holds no .txt or .txt.gz file")
        return files
    if not path.exists():
        raise FileNotFoundError(f"{function}: no file or directory {path}")
    return [path]


def read_text(path, errors="strict"):
    """The text of one or many files, one after the other (a newline between two files when
    the first lacks a final one).

    path: a .txt or .txt.gz file (gzip is recognised by content, whatever the name), a list of
        such paths, or a directory (all .txt and .txt.gz files under it, sorted by path).
    errors: "strict" (an undecodable byte is an error naming file and offset) or "replace".

    Raises FileNotFoundError for a missing path and DataFormatError for an empty file, a corrupt
    gzip file or (strict) bytes that are not UTF-8.
    """
    texts = [read_file_text(file, "read_text", errors) for file in text_files(path, "read_text")]
    parts = []
    for text in texts:
        if parts and not parts[-1].endswith("\n"):
            parts.append("\n")  # a file without a final newline still ends its line
        parts.append(text)
    return "".join(parts)


def read_lines(path, errors="strict", function="read_lines"):
    """The lines of one text file (plain or gzip), without their line endings.

    A final newline does not make an extra empty line; empty lines elsewhere are kept (so
    line-aligned files stay aligned).
    """
    text = read_file_text(path, function, errors)
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return lines
