"""Readers on small files written in the official formats: text, IMDB, GloVe, Multi30k."""

import gzip
import io
import tarfile
import zipfile

import numpy as np
import pytest

from minitransformer.data import (
    DataFormatError,
    WordTokenizer,
    glove_embedding_matrix,
    load_glove,
    load_imdb,
    load_multi30k,
    read_lines,
    read_parallel,
    read_text,
)

# --------------------------------------------------------------------------- plain text


def test_read_text_plain_gzip_list_and_directory(tmp_path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.txt").write_text("first file\nline two", encoding="utf-8")
    with gzip.open(tmp_path / "corpus" / "b.txt.gz", "wt", encoding="utf-8") as f:
        f.write("second file\n")
    (tmp_path / "corpus" / "notes.md").write_text("not read", encoding="utf-8")
    assert read_text(tmp_path / "corpus" / "a.txt") == "first file\nline two"
    assert read_text(tmp_path / "corpus" / "b.txt.gz") == "second file\n"
    expected = "first file\nline two\nsecond file\n"
    assert read_text(tmp_path / "corpus") == expected
    assert read_text([tmp_path / "corpus" / "a.txt", str(tmp_path / "corpus" / "b.txt.gz")]) \
        == expected


def test_read_text_normalises_line_endings_and_drops_a_bom(tmp_path):
    (tmp_path / "w.txt").write_bytes(b"\xef\xbb\xbfone\r\ntwo\rthree")
    assert read_text(tmp_path / "w.txt") == "one\ntwo\nthree"


def test_read_text_errors_for_missing_empty_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="read_text: no file or directory"):
        read_text(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(DataFormatError, match="read_text: .*empty.txt is empty"):
        read_text(tmp_path / "empty.txt")
    (tmp_path / "broken.txt.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataFormatError, match="broken.txt.gz is not a valid gzip file"):
        read_text(tmp_path / "broken.txt.gz")
    (tmp_path / "dir").mkdir()
    with pytest.raises(DataFormatError, match="holds no .txt or .txt.gz file"):
        read_text(tmp_path / "dir")


def test_undecodable_bytes_are_an_error_naming_file_and_offset(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("café au lait".encode("latin-1"))
    with pytest.raises(DataFormatError,
                       match=r"latin1.txt is not valid UTF-8: byte 0xe9 at offset 3"):
        read_text(tmp_path / "latin1.txt")


def test_undecodable_bytes_replaced_on_request_are_counted(tmp_path):
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9 \xff ok")
    with pytest.warns(UnicodeWarning, match="2 undecodable byte"):
        text = read_text(tmp_path / "latin1.txt", errors="replace")
    assert text == "caf\ufffd \ufffd ok"
    with pytest.raises(ValueError, match="errors must be one of"):
        read_text(tmp_path / "latin1.txt", errors="ignore")


def test_read_lines_keeps_alignment(tmp_path):
    (tmp_path / "x.txt").write_text("a\n\nc\n", encoding="utf-8")
    assert read_lines(tmp_path / "x.txt") == ["a", "", "c"]


# --------------------------------------------------------------------------- IMDB

REVIEWS = {
    "train/pos/0_9.txt": "Loved it.<br /><br />Would watch again.",
    "train/pos/10_7.txt": "Good enough.",
    "train/pos/2_10.txt": "A masterpiece!",
    "train/neg/1_1.txt": "Awful.<br/>Truly.",
    "train/neg/3_4.txt": "Meh<BR>no.",
    "test/pos/0_8.txt": "Fine film.",
    "test/neg/0_2.txt": "Bad film.",
    "train/unsup/0_0.txt": "unlabelled: not read",
}


def write_imdb_folder(root, reviews=REVIEWS):
    for name, text in reviews.items():
        path = root / "aclImdb" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "aclImdb"


def write_imdb_tarball(path, reviews=REVIEWS):
    with tarfile.open(path, "w:gz") as archive:
        for name, text in reviews.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"aclImdb/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


EXPECTED_TRAIN = (
    ["Awful.\nTruly.", "Meh\nno.", "Loved it.\n\nWould watch again.", "A masterpiece!",
     "Good enough."],
    [0, 0, 1, 1, 1],
    [1, 4, 9, 10, 7],
)


def test_load_imdb_from_the_folder(tmp_path):
    folder = write_imdb_folder(tmp_path)
    assert load_imdb(folder, "train", with_ratings=True) == EXPECTED_TRAIN
    assert load_imdb(folder, "test") == (["Bad film.", "Fine film."], [0, 1])


def test_load_imdb_from_the_tarball_gives_the_same(tmp_path):
    tarball = write_imdb_tarball(tmp_path / "aclImdb_v1.tar.gz")
    assert load_imdb(tarball, "train", with_ratings=True) == EXPECTED_TRAIN
    assert load_imdb(str(tarball), split="test") == (["Bad film.", "Fine film."], [0, 1])


def test_load_imdb_accepts_the_folder_that_holds_aclimdb(tmp_path):
    write_imdb_folder(tmp_path)
    assert load_imdb(tmp_path, "test")[1] == [0, 1]


def test_load_imdb_missing_label_folder_is_a_clear_error(tmp_path):
    reviews = {k: v for k, v in REVIEWS.items() if not k.startswith("train/neg")}
    folder = write_imdb_folder(tmp_path / "dir", reviews)
    with pytest.raises(DataFormatError, match="has no train/neg/ folder"):
        load_imdb(folder)
    tarball = write_imdb_tarball(tmp_path / "aclImdb_v1.tar.gz", reviews)
    with pytest.raises(DataFormatError, match="has no aclImdb/train/neg/ reviews"):
        load_imdb(tarball)


def test_load_imdb_bad_inputs(tmp_path):
    folder = write_imdb_folder(tmp_path)
    with pytest.raises(ValueError, match="split must be one of"):
        load_imdb(folder, "unsup")
    with pytest.raises(FileNotFoundError, match="load_imdb: no folder or archive"):
        load_imdb(tmp_path / "nowhere")
    (folder / "train" / "pos" / "oops.txt").write_text("x", encoding="utf-8")
    with pytest.raises(DataFormatError, match="is not named <id>_<rating>.txt"):
        load_imdb(folder)
    (tmp_path / "not_a_tar.gz").write_bytes(b"plain bytes")
    with pytest.raises(DataFormatError, match="is not a readable tar archive"):
        load_imdb(tmp_path / "not_a_tar.gz")


def test_load_imdb_empty_review_and_bad_bytes(tmp_path):
    tarball = write_imdb_tarball(tmp_path / "a.tar.gz", {**REVIEWS, "train/neg/5_2.txt": ""})
    with pytest.raises(DataFormatError, match=r"a.tar.gz:aclImdb/train/neg/5_2.txt is empty"):
        load_imdb(tarball)
    folder = write_imdb_folder(tmp_path / "b")
    (folder / "train" / "neg" / "7_3.txt").write_bytes(b"caf\xe9")
    with pytest.raises(DataFormatError, match=r"7_3.txt is not valid UTF-8: byte 0xe9 at offset 3"):
        load_imdb(folder)
    with pytest.warns(UnicodeWarning, match=r"1 undecodable byte\(s\) in 1 file\(s\) replaced"):
        texts, _ = load_imdb(folder, errors="replace")
    assert "caf\ufffd" in texts


# --------------------------------------------------------------------------- GloVe

GLOVE_LINES = [
    "the 0.1 0.2 0.3",
    "film -1 0 1.5",
    "good 2 2 2",
    "the 9 9 9",  # a repeated word keeps its first vector
]


def write_glove(path, lines=GLOVE_LINES):
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", ["glove.txt", "glove.txt.gz"])
def test_load_glove_text_and_gzip(tmp_path, name):
    words, vectors = load_glove(write_glove(tmp_path / name))
    assert words == ["the", "film", "good"]
    assert vectors.shape == (3, 3) and str(vectors.dtype) == "float32"
    np.testing.assert_allclose(vectors.numpy(), [[0.1, 0.2, 0.3], [-1, 0, 1.5], [2, 2, 2]],
                               rtol=1e-6)


def test_load_glove_from_a_zip_member(tmp_path):
    with zipfile.ZipFile(tmp_path / "glove.6B.zip", "w") as archive:
        archive.writestr("glove.6B.3d.txt", "\n".join(GLOVE_LINES) + "\n")
        archive.writestr("glove.6B.2d.txt", "the 1 2\n")
    words, vectors = load_glove(tmp_path / "glove.6B.zip", member="glove.6B.2d.txt")
    assert words == ["the"] and vectors.shape == (1, 2)
    with pytest.raises(ValueError, match="holds 2 .txt files"):
        load_glove(tmp_path / "glove.6B.zip")


def test_load_glove_skips_a_word2vec_header_and_honours_max_words(tmp_path):
    path = write_glove(tmp_path / "w2v.txt", ["3 3"] + GLOVE_LINES)
    words, vectors = load_glove(path, max_words=2)
    assert words == ["the", "film"] and vectors.shape == (2, 3)


def test_load_glove_malformed_line_names_its_line_number(tmp_path):
    path = write_glove(tmp_path / "glove.txt", GLOVE_LINES[:2] + ["good 2 2"])
    with pytest.raises(DataFormatError,
                       match=r"load_glove: line 3 of glove.txt has 2 numbers, expected 3"):
        load_glove(path)
    path = write_glove(tmp_path / "long.txt", GLOVE_LINES[:1] + ["good 2 2 2 2"])
    with pytest.raises(DataFormatError, match=r"line 2 of long.txt has 4 numbers, expected 3"):
        load_glove(path)
    path = write_glove(tmp_path / "nan.txt", GLOVE_LINES[:1] + ["good 2 x 2"])
    with pytest.raises(DataFormatError, match=r"line 2 of nan.txt: 'x' is not a number"):
        load_glove(path)


def test_load_glove_empty_and_missing(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(DataFormatError, match="empty.txt holds no vectors"):
        load_glove(tmp_path / "empty.txt")
    with pytest.raises(FileNotFoundError, match="load_glove: no file"):
        load_glove(tmp_path / "missing.txt")


def test_glove_embedding_matrix_aligns_rows_and_reports_coverage(tmp_path):
    path = write_glove(tmp_path / "glove.txt")
    tokenizer = WordTokenizer.train(["The film was good", "the film"], lowercase=False)
    matrix, coverage = glove_embedding_matrix(tokenizer, path, seed=0)
    assert matrix.shape == (tokenizer.vocab_size, 3)
    rows = matrix.numpy()
    # "The" is found through its lower-case spelling; "was" is missing
    np.testing.assert_allclose(rows[tokenizer.encode("The")[0]], [0.1, 0.2, 0.3], rtol=1e-6)
    np.testing.assert_allclose(rows[tokenizer.encode("good")[0]], [2, 2, 2])
    assert (rows[0] == 0).all()  # <pad>
    assert coverage.found == 4 and coverage.total == 5 and coverage.missing == ["was"]
    assert coverage.fraction == pytest.approx(0.8)
    assert "4 of 5 vocabulary words (80.0%)" in str(coverage)


def test_glove_embedding_matrix_random_rows_are_seeded_with_the_vectors_std(tmp_path):
    path = write_glove(tmp_path / "glove.txt")
    words = [f"unknownword{i}" for i in range(300)] + ["film", "good"]
    tokenizer = WordTokenizer.train([" ".join(words)])
    first, coverage = glove_embedding_matrix(tokenizer, path, seed=3)
    second, _ = glove_embedding_matrix(tokenizer, path, seed=3)
    other, _ = glove_embedding_matrix(tokenizer, path, seed=4)
    np.testing.assert_array_equal(first.numpy(), second.numpy())
    assert not np.array_equal(first.numpy(), other.numpy())
    found = np.array([[-1, 0, 1.5], [2, 2, 2]])
    assert coverage.init_std == pytest.approx(found.std(), rel=1e-6)
    random_rows = first.numpy()[7:307]
    assert random_rows.std() == pytest.approx(found.std(), rel=0.15)


# --------------------------------------------------------------------------- parallel text


def write_multi30k(folder, gz):
    folder.mkdir(parents=True, exist_ok=True)
    files = {"train.en": "A dog runs.\nTwo men talk.\n",
             "train.de": "Ein Hund rennt.\nZwei Männer reden.\n",
             "val.en": "A cat.\n", "val.de": "Eine Katze.\n"}
    for name, text in files.items():
        data = text.encode("utf-8")
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize("gz", [False, True])
def test_load_multi30k_layout(tmp_path, gz):
    folder = write_multi30k(tmp_path / "multi30k", gz)
    assert load_multi30k(folder) == [("A dog runs.", "Ein Hund rennt."),
                                     ("Two men talk.", "Zwei Männer reden.")]
    assert load_multi30k(folder, "valid", source="de", target="en") == [("Eine Katze.", "A cat.")]


def test_parallel_files_must_have_as_many_lines(tmp_path):
    (tmp_path / "a.en").write_text("one\ntwo\n", encoding="utf-8")
    (tmp_path / "a.de").write_text("eins\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="a.en has 2 lines but a.de has 1"):
        read_parallel(tmp_path / "a.en", tmp_path / "a.de")


def test_load_multi30k_missing_file_lists_the_folder(tmp_path):
    folder = write_multi30k(tmp_path / "m", gz=False)
    with pytest.raises(FileNotFoundError, match=r"has no test_2016_flickr.en or"):
        load_multi30k(folder, "test")
