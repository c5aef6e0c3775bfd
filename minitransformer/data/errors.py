"""The exceptions the data layer raises for bad input.

Bad files and checksums subclass ValueError (``except ValueError`` keeps working); a failed
download subclasses OSError, like the network errors it wraps. Messages name the function, the
file (and line or byte offset where there is one) and the rule that was broken, e.g.
``load_glove: line 17 of glove.txt has 49 numbers, expected 50``.
"""

__all__ = ["ChecksumError", "DataFormatError", "DownloadError"]


class DataFormatError(ValueError):
    """A file does not follow its format: empty, malformed line, undecodable bytes, bad layout."""


class ChecksumError(ValueError):
    """A downloaded file's SHA-256 (or MD5) differs from the published one."""


class DownloadError(OSError):
    """A download failed: the server refused, the connection broke, the URL is not HTTP(S)."""
