"""The readers under fuzz (hypothesis): whatever bytes a user's files hold, a reader returns the
right result or raises one clear error that names the reader; never a traceback from deep inside
(IndexError, KeyError, UnicodeDecodeError, ...) and never a silently wrong result."""

import json
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minitransformer.data import (
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    WordTokenizer,
    load_glove,
    load_imdb,
)
from minitransformer.data.errors import DataFormatError
from minitransformer.data.imdb import clean_review
from minitransformer.tasks.config import ConfigError, load_config
from minitransformer.tasks.pretrain import PretrainConfig

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def assert_clear(error, reader):
    """One clear error: a ValueError (DataFormatError, ConfigError) whose message starts with
    the reader's name and fits on one line."""
    assert isinstance(error, ValueError), f"{type(error).__name__}: {error}"
    assert str(error).startswith(reader), str(error)
    assert "\n" not in str(error)


# --------------------------------------------------------------------------- IMDB folders

review_bytes = st.one_of(
    st.text(min_size=1, max_size=60).map(lambda t: t.encode("utf-8")),  # any valid text
    st.binary(max_size=40),                                            # binary or empty
    st.just(b"caf\xe9 au lait"),                                       # Latin-1, not UTF-8
    st.just(b""), st.just(b"  \n "),                                   # empty, blank
)


def expected_review(data):
    """What load_imdb must return for a file's bytes, or None when it must refuse it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not data.strip():
        return None
    text = text[1:] if text.startswith("\ufeff") else text
    return clean_review(text.replace("\r\n", "\n").replace("\r", "\n"))


@FUZZ
@given(files=st.lists(st.tuples(st.sampled_from(["pos", "neg"]), review_bytes), min_size=2,
                      max_size=8))
def test_imdb_folders_of_any_bytes_read_right_or_fail_clearly(files):
    files = [("pos", b"a fine film")] + [("neg", b"a dull film")] + files
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "aclImdb"
        for label in ("pos", "neg"):
            (root / "train" / label).mkdir(parents=True)
        for number, (label, data) in enumerate(files):
            rating = 7 if label == "pos" else 2
            (root / "train" / label / f"{number}_{rating}.txt").write_bytes(data)
        expected = [expected_review(data) for _, data in files]
        try:
            texts, labels = load_imdb(root, "train")
        except ValueError as error:
            assert_clear(error, "load_imdb")
            assert None in expected  # refused only what must be refused
            assert re.search(r"\d+_\d+\.txt", str(error)), str(error)  # it names a file
            return
        assert None not in expected
        order = sorted(range(len(files)), key=lambda n: (files[n][0] == "pos", n))
        assert texts == [expected[n] for n in order]
        assert labels == [int(files[n][0] == "pos") for n in order]


@FUZZ
@given(data=st.binary(min_size=1, max_size=40).filter(lambda b: expected_review(b) is None
                                                      and b.strip()))
def test_imdb_with_errors_replace_counts_the_replaced_bytes_instead(data):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for label in ("pos", "neg"):
            (root / "train" / label).mkdir(parents=True)
            (root / "train" / label / "1_7.txt").write_bytes(data)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            texts, _ = load_imdb(root, "train", errors="replace")
        assert all("\ufffd" in text for text in texts)
        assert any("replaced" in str(w.message) for w in caught)


# --------------------------------------------------------------------------- GloVe files

good_number = st.floats(-10, 10, allow_nan=False, width=32).map(lambda x: f"{x:.4f}")
bad_number = st.sampled_from(["nan", "inf", "-inf", "NaN", "1e39", "abc", "1,5", "--1", "0x10"])


@st.composite
def glove_files(draw):
    """(text, expected): a GloVe file and what load_glove must return (None: an error). The
    first line sets the dimension; every line must match it with finite float32 numbers."""
    dim = draw(st.integers(1, 4))
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        word = draw(st.sampled_from(["the", "film", "good", "bad", "é", "x"]))
        size = draw(st.sampled_from([dim, dim, dim, dim - 1, dim + 1]))
        lines.append((word, [draw(st.one_of(good_number, good_number, good_number, bad_number))
                             for _ in range(size)]))
    text = "\n".join(" ".join([w, *f]) for w, f in lines) + "\n"
    width = len(lines[0][1])
    lines = lines[:1] + [_as_read(w, f, width) for w, f in lines[1:]]
    if width < 1 or any(len(f) != width or not all(map(_finite32, f)) for _, f in lines):
        return text, None
    words, vectors = [], []
    for word, fields in lines:
        if word not in words:
            words.append(word)
            vectors.append([float(np.float32(f)) for f in fields])
    return text, (words, vectors)


def _as_read(word, fields, width):
    """A line as load_glove reads it: the word is everything before the last ``width`` fields
    (a few words of GloVe 840B hold spaces) unless its last part is a number, so "the abc 0.5"
    and "the 0.5 abc 0.5" at width 1 are the words "the abc" and "the 0.5 abc"."""
    extra = len(fields) - width
    if extra > 0 and not _is_float(fields[extra - 1]):
        return " ".join([word, *fields[:extra]]), fields[extra:]
    return word, fields


def _is_float(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _finite32(text):
    try:
        with np.errstate(over="ignore"):
            return bool(np.isfinite(np.float32(float(text))))
    except (ValueError, OverflowError):
        return False


@FUZZ
@given(case=glove_files())
def test_glove_files_with_ragged_rows_nan_or_garbage_read_right_or_fail_clearly(case):
    text, expected = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "glove.txt"
        path.write_text(text, encoding="utf-8")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                words, vectors = load_glove(path)
        except ValueError as error:
            assert_clear(error, "load_glove")
            assert expected is None, f"refused a valid file: {error}\n{text}"
            assert re.search(r"line \d+ of glove.txt", str(error)), str(error)
            return
    assert expected is not None, f"accepted a broken file:\n{text}"
    assert words == expected[0]
    np.testing.assert_array_equal(vectors.numpy(), np.array(expected[1], np.float32))


# --------------------------------------------------------------------------- TOML settings

toml_garbage = st.one_of(
    st.text(max_size=80),
    st.lists(st.tuples(st.sampled_from(["steps", "lr", "objective", "d_model", "dropout",
                                        "unknown_key", "max_chars", "progress"]),
                       st.sampled_from(['3', '-1', '0.5', '"mlm"', 'true', '[1, 2]', '"x"',
                                        '{a = 1}', 'nan', '1e999', '"3"', '', '"""'])),
             max_size=5).map(lambda pairs: "\n".join(f"{k} = {v}" for k, v in pairs)),
)


@FUZZ
@given(text=toml_garbage)
def test_toml_garbage_gives_settings_or_one_clear_error(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.toml"
        path.write_text(text, encoding="utf-8")
        try:
            config = load_config(PretrainConfig, path)
        except (ConfigError, ValueError) as error:
            assert str(error).startswith((str(path), "PretrainConfig", "config")), str(error)
            assert "\n" not in str(error).split(" (")[0]
            return
    assert isinstance(config, PretrainConfig)
    assert isinstance(config.steps, int) and not isinstance(config.steps, bool)
    assert isinstance(config.lr, float) and isinstance(config.objective, str)


# --------------------------------------------------------------------------- tokenizer JSON

TOKENIZERS = [WordTokenizer.train(["a good film", "a bad film"]),
              CharTokenizer.train("a good film"),
              BPETokenizer.train("a good film, a good good film", 270)]
wrong_value = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True),
                        st.text(max_size=5), st.just([]), st.just({}), st.just([None]),
                        st.just([["a", "b"]]), st.just([[1]]), st.just("(unclosed"),
                        st.just([1, 2, 3]), st.just([[7, 7, 7]]))


def _fits(value, reference):
    """Whether ``value`` is a harmless stand-in for ``reference`` (same type and, for lists,
    the same structure): such a mutation may load."""
    return type(value) is type(reference) and (not isinstance(value, list) or value == [])


@FUZZ
@given(which=st.integers(0, len(TOKENIZERS) - 1), data=st.data())
def test_tokenizer_json_with_missing_or_wrong_fields_is_refused_clearly(which, data):
    saved = TOKENIZERS[which].to_dict()
    key = data.draw(st.sampled_from(sorted(saved)))
    broken = dict(saved)
    if data.draw(st.booleans()):
        del broken[key]
    else:
        broken[key] = data.draw(wrong_value)
        if broken[key] == saved[key] or _fits(broken[key], saved[key]):
            return  # not a breakage (an equal or same-typed empty value may load)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tok.json"
        path.write_text(json.dumps(broken), encoding="utf-8")
        try:
            Tokenizer.load(path)
        except DataFormatError as error:
            assert_clear(error, "Tokenizer.load")
            assert str(path) in str(error)
            return
    raise AssertionError(f"loaded a tokenizer whose {key!r} was {broken.get(key, '<deleted>')!r}")
