"""Downloading the real data sets: IMDB, GloVe and Multi30k, verified, resumable, cached.

    minitransformer download imdb              # or: python -m minitransformer download imdb

    from minitransformer.data.download import download
    folder = download("imdb")                  # ~/.cache/minitransformer/imdb

For each file of a data set:
1. cache: a file already in place whose checksum matches is not downloaded again;
2. resume: bytes go to ``<file>.part``; when a ``.part`` is there from a broken download, an HTTP
   Range request asks for the rest only (a server that ignores Range sends all, and we restart);
3. verify: the finished ``.part``'s SHA-256 (and MD5 where one is published) must match, else it
   is deleted and ChecksumError raised: nothing unverified is ever put in place;
4. install: ``os.replace`` renames ``.part`` to the file name (atomic on one file system).

Where the data goes: ``dest`` if given, else $MINITRANSFORMER_DATA, else
$XDG_CACHE_HOME/minitransformer (default ~/.cache/minitransformer); each data set in its own folder.
The servers can be replaced (mirrors, tests): ``base_url=`` or $MINITRANSFORMER_DOWNLOAD_BASE_URL,
under which each file is fetched by its file name.

Checksums and where they were published:
- imdb: SHA-256 (and the size, 84,125,825 bytes) from TensorFlow Datasets'
  tensorflow_datasets/url_checksums/imdb_reviews.txt (tensorflow/datasets, commit 333639b);
  MD5 from torchtext/datasets/imdb.py (pytorch/text, commit 003eae6).
- glove: no SHA-256 of glove.6B.zip is published anywhere we could find; we verify the MD5
  published in download scripts (e.g. wedavey/atnlp, scripts/install_glove.py, commit 7cc1d27)
  and print the file's SHA-256 for the record.
- multi30k: the MD5s of the task-1 raw files are published in torchtext/datasets/multi30k.py
  (pytorch/text, commit 6595925). The SHA-256s were computed from copies whose MD5s match those
  published ones; both are verified.
"""

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from minitransformer.data.errors import ChecksumError, DownloadError

__all__ = ["REGISTRY", "DatasetSource", "RemoteFile", "default_data_dir", "download",
           "download_file", "file_digests"]

ENV_DATA_DIR = "MINITRANSFORMER_DATA"
ENV_BASE_URL = "MINITRANSFORMER_DOWNLOAD_BASE_URL"
CHUNK_SIZE = 1 << 16
TIMEOUT_S = 60
USER_AGENT = "minitransformer-download/0.1"


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch: its name on disk, its URL and the checksums that verify it."""

    filename: str
    url: str
    sha256: str | None = None
    md5: str | None = None


@dataclass(frozen=True)
class DatasetSource:
    """A data set: its files, and a line showing how to load it once downloaded."""

    name: str
    description: str
    files: tuple
    how_to_load: str


_MULTI30K_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/"
# (file name, SHA-256, MD5): MD5s published by pytorch/text (torchtext/datasets/multi30k.py,
# commit 6595925); SHA-256s computed from copies with those MD5s.
_MULTI30K = (
    ("train.en.gz", "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
     "0065d13af80720a55ca8153d126e6627"),
    ("train.de.gz", "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
     "81ff90b99829c0cd4b1b587d394afd39"),
    ("val.en.gz", "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
     "2b69aa9253948ac9f67e94917272dd40"),
    ("val.de.gz", "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
     "6e0e229eb049e3fc99a1ef02fb2d5f91"),
    ("test_2016_flickr.en.gz", "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
     "ff2c0fcb4893a13bd73414306bc250ae"),
    ("test_2016_flickr.de.gz", "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
     "efd67d314d98489b716b145475101932"),
)

REGISTRY = {
    # SHA-256: tensorflow/datasets url_checksums/imdb_reviews.txt; MD5: pytorch/text imdb.py
    "imdb": DatasetSource(
        "imdb", "Large Movie Review Dataset v1.0 (Maas et al. 2011), 84 MB",
        (RemoteFile("aclImdb_v1.tar.gz",
                    "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
                    sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
                    md5="7c2ac02c03563afcf9b574c7e56c153a"),),
        'from minitransformer.data import load_imdb\n'
        'texts, labels = load_imdb("{folder}/aclImdb_v1.tar.gz", split="train")'),
    # MD5 only (no SHA-256 published): wedavey/atnlp scripts/install_glove.py
    "glove": DatasetSource(
        "glove", "GloVe 6B word vectors, 50/100/200/300-d (Pennington et al. 2014), 822 MB",
        (RemoteFile("glove.6B.zip", "https://nlp.stanford.edu/data/glove.6B.zip",
                    md5="056ea991adb4740ac6bf1b6d9b50408b"),),
        'from minitransformer.data import load_glove\n'
        'words, vectors = load_glove("{folder}/glove.6B.zip", member="glove.6B.100d.txt")'),
    "multi30k": DatasetSource(
        "multi30k", "Multi30k task 1, English-German captions (Elliott et al. 2016), 1.3 MB",
        tuple(RemoteFile(name, _MULTI30K_URL + name, sha256=sha256, md5=md5)
              for name, sha256, md5 in _MULTI30K),
        'from minitransformer.data import load_multi30k\n'
        'pairs = load_multi30k("{folder}", split="train", source="en", target="de")'),
}


def default_data_dir():
    """$MINITRANSFORMER_DATA, else $XDG_CACHE_HOME/minitransformer, else
    ~/.cache/minitransformer."""
    if os.environ.get(ENV_DATA_DIR):
        return Path(os.environ[ENV_DATA_DIR]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "minitransformer"


def file_digests(path):
    """(SHA-256, MD5) of a file, as hex strings, in one pass."""
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            sha256.update(chunk)
            md5.update(chunk)
    return sha256.hexdigest(), md5.hexdigest()


def _mismatch(path, sha256, md5):
    """None when ``path`` matches the given checksums, else a description of the difference."""
    actual_sha256, actual_md5 = file_digests(path)
    if sha256 is not None and actual_sha256 != sha256.lower():
        return f"SHA-256 {actual_sha256}, expected {sha256}"
    if md5 is not None and actual_md5 != md5.lower():
        return f"MD5 {actual_md5}, expected {md5}"
    return None


def _open(url, start):
    """The HTTP response for ``url``, from byte ``start`` on when start > 0 (a Range request)."""
    if not url.startswith(("https://", "http://")):
        raise DownloadError(f"download: only http(s) URLs can be fetched, got {url!r}")
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                      timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        if error.code == 416 and start:
            return None  # the .part already holds every byte: verify it as it is
        raise DownloadError(f"download: {url} answered HTTP {error.code} {error.reason}") \
            from None
    except (urllib.error.URLError, OSError) as error:
        raise DownloadError(f"download: cannot reach {url} ({error})") from None


def _fetch(url, part, progress):
    """Download ``url`` into ``part``, resuming from what ``part`` already holds."""
    start = part.stat().st_size if part.exists() else 0
    response = _open(url, start)
    if response is None:
        return
    with response:
        if start and response.status != 206:
            start = 0  # the server ignored the Range header and sends the whole file
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        with open(part, "ab" if start else "wb") as out, \
                tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=part.name[:-len(".part")], disable=not progress) as bar:
            received = start
            try:
                for chunk in iter(lambda: response.read(CHUNK_SIZE), b""):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as error:
                raise DownloadError(f"download: the connection to {url} broke ({error}); run "
                                    f"again to resume from {part}") from None
    if total is not None and received < total:  # http.client ends a cut stream silently
        raise DownloadError(f"download: the connection to {url} closed after {received:,} of "
                            f"{total:,} bytes; run again to resume from {part}")


def download_file(url, path, sha256=None, md5=None, progress=None, log=print):
    """Fetch ``url`` to ``path`` (resume, verify, atomic install; see the module docstring).

    sha256, md5: expected hex digests; with neither, the file is installed unverified and its
    SHA-256 printed with a warning. progress: show a tqdm bar (default: when stderr is a
    terminal). Returns ``path``.
    """
    path = Path(path)
    progress = sys.stderr.isatty() if progress is None else progress
    if path.exists():
        problem = _mismatch(path, sha256, md5)
        if problem is None:
            log(f"{path.name}: already downloaded and verified ({path})")
            return path
        log(f"{path.name}: the file in place has {problem}; downloading it again")
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    if part.exists():
        log(f"{path.name}: resuming after {part.stat().st_size:,} bytes")
    else:
        log(f"{path.name}: downloading {url}")
    _fetch(url, part, progress)
    problem = _mismatch(part, sha256, md5)
    if problem is not None:
        part.unlink()
        raise ChecksumError(f"download: {path.name} from {url} has {problem}; the download was "
                            "deleted and nothing was installed")
    if sha256 is None and md5 is None:
        log(f"WARNING: {path.name} has no published checksum and was NOT verified; its SHA-256 "
            f"is {file_digests(part)[0]} (pass it as sha256= / --sha256 to verify next time)")
    elif sha256 is None:
        log(f"{path.name}: MD5 verified (no SHA-256 is published; this file's SHA-256 is "
            f"{file_digests(part)[0]})")
    os.replace(part, path)
    return path


def download(name, dest=None, base_url=None, sha256=None, progress=None, log=print):
    """Download data set ``name`` ("imdb", "glove" or "multi30k") and return its folder.

    dest: the parent folder (default ``default_data_dir()``); the files go to ``dest/name``.
    base_url: fetch each file from ``base_url/<file name>`` instead (default:
        $MINITRANSFORMER_DOWNLOAD_BASE_URL, else the official URLs).
    sha256: the expected SHA-256 of a one-file data set, replacing the registry's checksums.
    """
    if name not in REGISTRY:
        raise ValueError(f"download: unknown data set {name!r}; choose one of {sorted(REGISTRY)}")
    source = REGISTRY[name]
    if sha256 is not None and len(source.files) != 1:
        raise ValueError(f"download: sha256= names one file, but {name} has "
                         f"{len(source.files)}; it can only be given for one-file data sets")
    folder = Path(dest).expanduser() / name if dest is not None else default_data_dir() / name
    base_url = base_url or os.environ.get(ENV_BASE_URL)
    for remote in source.files:
        url = f"{base_url.rstrip('/')}/{remote.filename}" if base_url else remote.url
        expected = (sha256, None) if sha256 is not None else (remote.sha256, remote.md5)
        download_file(url, folder / remote.filename, *expected, progress=progress, log=log)
    log(f"{name} ({source.description}) is in {folder}")
    log("load it with:\n    " + source.how_to_load.format(folder=folder).replace("\n", "\n    "))
    return folder
