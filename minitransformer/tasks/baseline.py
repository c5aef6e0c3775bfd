"""The bag-of-words baseline every text-classification result stands beside: TF-IDF weights of
word unigrams and bigrams, fed to a logistic regression (scikit-learn, an optional extra).

    result = bag_of_words_baseline(train, valid, test)
    result["test_accuracy"], result["C"]

It needs no GPU and no training loop, and on IMDB it is hard to beat: a Transformer that does not
beat it on the same split has not learned much beyond which words occur.
"""

from minitransformer.metrics import accuracy
from minitransformer.tasks.common import Stopwatch

__all__ = ["C_GRID", "bag_of_words_baseline", "require_sklearn"]

# inverse regularization strengths tried; the one best on the validation split is kept
C_GRID = (0.25, 1.0, 4.0, 16.0)
# below this many training texts a word or bigram seen once is kept (min_df=1), above it twice
TINY = 500


def require_sklearn(what="bag_of_words_baseline"):
    """Import scikit-learn's pieces, or raise ImportError saying how to install it."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise ImportError(f"{what}: the baseline needs scikit-learn: pip install scikit-learn"
                          ) from None
    return TfidfVectorizer, LogisticRegression


def bag_of_words_baseline(train, valid, test, grid=C_GRID):
    """Fit TF-IDF + logistic regression on ``train``, pick C on ``valid``, score on ``test``.

    Each of train, valid, test is a list of (text, label) pairs. The features are
    ``TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)`` fitted on the training
    texts only (``min_df=1`` under 500 training texts, where most words occur once); for each C
    of ``grid`` a ``LogisticRegression(C=C, max_iter=1000)`` is fitted, and the one with the
    best validation accuracy (the smallest C on a tie: the most regularized) is tested.

    Returns a dict: valid_accuracy, test_accuracy, C, features (vocabulary size), seconds (wall
    time of fitting and scoring, the whole grid included).
    """
    if not train or not valid or not test:
        raise ValueError(f"bag_of_words_baseline: train, valid and test must be non-empty, got "
                         f"{len(train)}, {len(valid)}, {len(test)} examples")
    if len({label for _, label in train}) < 2:
        raise ValueError(f"bag_of_words_baseline: the {len(train)} training examples all have "
                         "one label; a classifier needs both")
    tfidf_vectorizer, logistic_regression = require_sklearn()
    clock = Stopwatch()
    vectorizer = tfidf_vectorizer(ngram_range=(1, 2), min_df=1 if len(train) < TINY else 2,
                                  sublinear_tf=True)
    features = {"train": vectorizer.fit_transform([text for text, _ in train]),
                "valid": vectorizer.transform([text for text, _ in valid]),
                "test": vectorizer.transform([text for text, _ in test])}
    labels = {"train": [label for _, label in train], "valid": [label for _, label in valid],
              "test": [label for _, label in test]}
    best = None
    for inverse_strength in sorted(grid):
        model = logistic_regression(C=inverse_strength, max_iter=1000)
        model.fit(features["train"], labels["train"])
        score = accuracy(model.predict(features["valid"]).tolist(), labels["valid"])
        if best is None or score > best[0]:
            best = (score, inverse_strength, model)
    valid_accuracy, inverse_strength, model = best
    return {
        "valid_accuracy": valid_accuracy,
        "test_accuracy": accuracy(model.predict(features["test"]).tolist(), labels["test"]),
        "C": inverse_strength,
        "features": len(vectorizer.vocabulary_),
        "seconds": clock.elapsed(),
    }
