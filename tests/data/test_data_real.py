"""Optional checks on the real data in ../shared/data (skipped when it is absent)."""

from pathlib import Path

import pytest

from minitransformer.data import (
    WordTokenizer,
    glove_embedding_matrix,
    load_glove,
    load_imdb,
    load_multi30k,
    read_text,
)

SHARED_DATA = Path(__file__).parents[2] / ".." / "shared" / "data"
IMDB = SHARED_DATA / "aclImdb_v1.tar.gz"
GLOVE = SHARED_DATA / "glove.6B.50d.top50k.txt.gz"

needs = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent")


@pytest.fixture(scope="module")
def imdb_train():
    return load_imdb(IMDB, "train", with_ratings=True)


@needs
@pytest.mark.slow
def test_imdb_has_25000_balanced_reviews_per_split(imdb_train):
    texts, labels, ratings = imdb_train
    assert len(texts) == 25_000 and sum(labels) == 12_500
    assert all((rating >= 7) == bool(label) for label, rating in zip(labels, ratings))
    assert not any("<br" in text for text in texts)
    test_texts, test_labels = load_imdb(IMDB, "test")
    assert len(test_texts) == 25_000 and sum(test_labels) == 12_500


@needs
def test_glove_50d_loads_with_dimension_50():
    words, vectors = load_glove(GLOVE)
    assert vectors.shape == (50_000, 50)
    assert words[:3] == ["the", ",", "."]


@needs
@pytest.mark.slow
def test_glove_coverage_on_the_imdb_vocabulary(imdb_train):
    tokenizer = WordTokenizer.train(imdb_train[0], max_size=20_000)
    matrix, coverage = glove_embedding_matrix(tokenizer, GLOVE)
    print(coverage)
    assert matrix.shape == (20_000, 50)
    assert coverage.total == 20_000 - 7
    assert coverage.fraction > 0.8  # measured: 86.5% with the top-50k GloVe words


@needs
def test_multi30k_has_29000_aligned_training_pairs():
    pairs = load_multi30k(SHARED_DATA / "multi30k", "train", "en", "de")
    assert len(pairs) == 29_000 and all(en and de for en, de in pairs)
    assert len(load_multi30k(SHARED_DATA / "multi30k", "val")) == 1_014
    assert len(load_multi30k(SHARED_DATA / "multi30k", "test")) == 1_000


@needs
def test_tinyshakespeare_reads():
    text = read_text(SHARED_DATA / "tinyshakespeare.txt")
    assert len(text) > 1_000_000 and text.startswith("First Citizen")
