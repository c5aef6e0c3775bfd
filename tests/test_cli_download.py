"""Downloads and the ``download`` command, against a local HTTP server on 127.0.0.1 only.

The server serves small archives the tests build, answers Range requests (206), and can be told
to ignore Range or to cut a response short, to exercise resuming.
"""

import dataclasses
import gzip
import hashlib
import http.server
import io
import random
import re
import subprocess
import sys
import tarfile
import threading

import pytest

from minitransformer.cli import main
from minitransformer.data import ChecksumError, load_imdb, load_multi30k
from minitransformer.data import download as download_module
from minitransformer.data.download import (
    ENV_BASE_URL,
    REGISTRY,
    DatasetSource,
    RemoteFile,
    download,
    download_file,
)
from minitransformer.data.errors import DownloadError


class RangeHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the name http.server calls
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and server.honour_range:
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = data[start:]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.cut_after is not None:
            body = body[:server.cut_after]
            self.close_connection = True
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.files, httpd.requests = {}, []
    httpd.honour_range, httpd.cut_after = True, None
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def imdb_tarball():
    rng = random.Random(0)
    noise = "".join(rng.choice("abcdefghij ") for _ in range(6000))  # gzip cannot shrink it much
    reviews = {"train/pos/0_9.txt": "Great.<br />Really. " + noise, "train/neg/1_2.txt": "Bad.",
               "test/pos/0_8.txt": "Fine.", "test/neg/1_1.txt": "Dull."}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in reviews.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"aclImdb/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sha256_of(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def imdb(server):
    data = imdb_tarball()
    server.files["/aclImdb_v1.tar.gz"] = data
    return data


def fetch(server, tmp_path, sha256, **kwargs):
    return download("imdb", dest=tmp_path, base_url=server.url, sha256=sha256, progress=False,
                    log=lambda message: None, **kwargs)


# --------------------------------------------------------------------------- download()


def test_full_download_installs_the_verified_file(server, imdb, tmp_path, capsys):
    folder = download("imdb", dest=tmp_path, base_url=server.url, sha256=sha256_of(imdb),
                      progress=False)
    target = folder / "aclImdb_v1.tar.gz"
    assert folder == tmp_path / "imdb" and target.read_bytes() == imdb
    assert not (folder / "aclImdb_v1.tar.gz.part").exists()
    assert server.requests == [("/aclImdb_v1.tar.gz", None)]
    assert str(folder) in capsys.readouterr().out  # says where the data is
    texts, labels = load_imdb(target)
    assert labels == [0, 1] and texts[1].startswith("Great.\nReally.")


def test_a_partial_download_is_resumed_with_a_range_request(server, imdb, tmp_path):
    part = tmp_path / "imdb" / "aclImdb_v1.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(imdb[:1000])
    folder = fetch(server, tmp_path, sha256_of(imdb))
    assert server.requests == [("/aclImdb_v1.tar.gz", "bytes=1000-")]
    assert (folder / "aclImdb_v1.tar.gz").read_bytes() == imdb and not part.exists()


def test_a_cut_connection_keeps_the_part_and_the_next_run_resumes(server, imdb, tmp_path):
    server.cut_after = 700
    with pytest.raises(DownloadError, match=r"closed after 700 of [\d,]+ bytes; run again"):
        fetch(server, tmp_path, sha256_of(imdb))
    part = tmp_path / "imdb" / "aclImdb_v1.tar.gz.part"
    assert part.read_bytes() == imdb[:700]
    server.cut_after = None
    fetch(server, tmp_path, sha256_of(imdb))
    assert server.requests[-1] == ("/aclImdb_v1.tar.gz", "bytes=700-")
    assert (tmp_path / "imdb" / "aclImdb_v1.tar.gz").read_bytes() == imdb


def test_a_server_that_ignores_range_restarts_the_download(server, imdb, tmp_path):
    server.honour_range = False
    part = tmp_path / "imdb" / "aclImdb_v1.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"stale bytes that must not stay in front")
    fetch(server, tmp_path, sha256_of(imdb))
    assert (tmp_path / "imdb" / "aclImdb_v1.tar.gz").read_bytes() == imdb


def test_a_complete_part_file_is_verified_and_installed(server, imdb, tmp_path):
    part = tmp_path / "imdb" / "aclImdb_v1.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(imdb)
    fetch(server, tmp_path, sha256_of(imdb))  # the server answers 416: nothing left to send
    assert (tmp_path / "imdb" / "aclImdb_v1.tar.gz").read_bytes() == imdb


def test_a_checksum_mismatch_is_refused_and_nothing_is_left_in_place(server, imdb, tmp_path):
    with pytest.raises(ChecksumError, match=r"aclImdb_v1.tar.gz from http://127.0.0.1:\d+/"
                                            r"aclImdb_v1.tar.gz has SHA-256 [0-9a-f]{64}, "
                                            r"expected 0{64}"):
        fetch(server, tmp_path, "0" * 64)
    assert list((tmp_path / "imdb").iterdir()) == []


def test_a_verified_file_in_place_is_not_downloaded_again(server, imdb, tmp_path):
    fetch(server, tmp_path, sha256_of(imdb))
    messages = []
    download("imdb", dest=tmp_path, base_url=server.url, sha256=sha256_of(imdb), progress=False,
             log=messages.append)
    assert len(server.requests) == 1
    assert "already downloaded and verified" in messages[0]


def test_a_corrupt_file_in_place_is_downloaded_again(server, imdb, tmp_path):
    target = tmp_path / "imdb" / "aclImdb_v1.tar.gz"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"corrupt")
    fetch(server, tmp_path, sha256_of(imdb))
    assert target.read_bytes() == imdb and len(server.requests) == 1


def test_the_base_url_can_come_from_the_environment(server, imdb, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_BASE_URL, server.url + "/")
    download("imdb", dest=tmp_path, sha256=sha256_of(imdb), progress=False, log=lambda m: None)
    assert server.requests == [("/aclImdb_v1.tar.gz", None)]


def test_md5_is_verified_when_it_is_the_only_published_checksum(server, tmp_path):
    server.files["/vectors.zip"] = b"pretend zip"
    url, target = server.url + "/vectors.zip", tmp_path / "vectors.zip"
    with pytest.raises(ChecksumError, match="has MD5 [0-9a-f]{32}, expected f{32}"):
        download_file(url, target, md5="f" * 32, progress=False, log=lambda m: None)
    messages = []
    download_file(url, target, md5=hashlib.md5(b"pretend zip").hexdigest(), progress=False,
                  log=messages.append)
    assert target.read_bytes() == b"pretend zip"
    assert "MD5 verified" in messages[-1] and sha256_of(b"pretend zip") in messages[-1]


def test_a_file_without_checksum_is_installed_with_a_warning_and_its_digest(server, tmp_path):
    server.files["/x.bin"] = b"data"
    messages = []
    download_file(server.url + "/x.bin", tmp_path / "x.bin", progress=False, log=messages.append)
    assert "NOT verified" in messages[-1] and sha256_of(b"data") in messages[-1]


def test_a_multi_file_data_set(server, tmp_path, monkeypatch):
    files = {"train.en.gz": "A dog.\nA cat.\n", "train.de.gz": "Ein Hund.\nEine Katze.\n"}
    remote = []
    for name, text in files.items():
        data = gzip.compress(text.encode("utf-8"))
        server.files[f"/{name}"] = data
        remote.append(RemoteFile(name, f"{server.url}/{name}", sha256=sha256_of(data)))
    monkeypatch.setitem(REGISTRY, "multi30k",
                        dataclasses.replace(REGISTRY["multi30k"], files=tuple(remote)))
    folder = download("multi30k", dest=tmp_path, progress=False, log=lambda m: None)
    assert load_multi30k(folder) == [("A dog.", "Ein Hund."), ("A cat.", "Eine Katze.")]
    with pytest.raises(ValueError, match="sha256= names one file, but multi30k has 2"):
        download("multi30k", dest=tmp_path, sha256="0" * 64)


def test_download_errors(server, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown data set 'mnist'"):
        download("mnist", dest=tmp_path)
    with pytest.raises(DownloadError, match=r"answered HTTP 404"):
        download_file(server.url + "/missing", tmp_path / "m", progress=False, log=print)
    with pytest.raises(DownloadError, match="only http"):
        download_file("file:///etc/passwd", tmp_path / "p", progress=False, log=print)


def test_the_registry_names_official_https_urls_and_published_checksums():
    assert set(REGISTRY) == {"imdb", "glove", "multi30k"}
    for source in REGISTRY.values():
        assert isinstance(source, DatasetSource)
        for remote in source.files:
            assert remote.url.startswith("https://")
            assert remote.sha256 is not None or remote.md5 is not None
    assert REGISTRY["imdb"].files[0].url.endswith("/aclImdb_v1.tar.gz")
    assert REGISTRY["glove"].files[0].filename == "glove.6B.zip"
    assert {f.filename for f in REGISTRY["multi30k"].files} >= {"train.en.gz", "train.de.gz"}


def test_default_data_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MINITRANSFORMER_DATA", str(tmp_path / "data"))
    assert download_module.default_data_dir() == tmp_path / "data"
    monkeypatch.delenv("MINITRANSFORMER_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert download_module.default_data_dir() == tmp_path / "cache" / "minitransformer"


# --------------------------------------------------------------------------- the command


def test_cli_download_prints_where_the_data_is(server, imdb, tmp_path, capsys):
    code = main(["download", "imdb", "--dest", str(tmp_path), "--base-url", server.url,
                 "--sha256", sha256_of(imdb), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "imdb (Large Movie Review Dataset v1.0" in out and str(tmp_path / "imdb") in out
    assert "load_imdb(" in out
    assert (tmp_path / "imdb" / "aclImdb_v1.tar.gz").read_bytes() == imdb


def test_cli_download_checksum_mismatch_exits_with_an_error(server, imdb, tmp_path, capsys):
    code = main(["download", "imdb", "--dest", str(tmp_path), "--base-url", server.url,
                 "--sha256", "0" * 64, "--no-progress"])
    assert code == 1
    assert "minitransformer download: error: aclImdb_v1.tar.gz" in \
        capsys.readouterr().err
    assert not (tmp_path / "imdb" / "aclImdb_v1.tar.gz").exists()


def test_cli_without_a_command_prints_help(capsys):
    assert main([]) == 2
    assert "download" in capsys.readouterr().out


def test_python_dash_m_download_help():
    result = subprocess.run([sys.executable, "-m", "minitransformer", "download", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "--dest DIR" in result.stdout and "imdb" in result.stdout
