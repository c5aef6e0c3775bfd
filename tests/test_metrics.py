"""Metrics: BLEU against values computed by hand and against sacrebleu; accuracy and friends."""

import math

import pytest

from minitransformer.metrics import (
    accuracy,
    bleu_tokenize,
    confusion_matrix,
    corpus_bleu,
    perplexity,
)


def test_bleu_of_an_exact_match_is_100():
    assert corpus_bleu(["the cat sat on the mat"], ["the cat sat on the mat"])["bleu"] == 100.0


def test_bleu_by_hand():
    hyp = "the cat the cat on the mat".split()
    ref = "the cat is on the mat".split()
    result = corpus_bleu([hyp], [ref])
    # 1-grams: the×3 (ref 2) cat×2 (1) on mat: clipped 2+1+1+1 = 5 of 7
    # 2-grams: the cat×2 (1), cat the (0), cat on (0), on the (1), the mat (1): 3 of 6
    # 3-grams: the cat the, cat the cat, the cat on, cat on the, on the mat (1): 1 of 5
    # 4-grams: ... on the mat: "cat on the mat" (0) ... 0 of 4 -> BLEU 0 without smoothing
    assert result["precisions"][:3] == pytest.approx([500 / 7, 50.0, 20.0])
    assert result["bleu"] == 0.0
    trigram = corpus_bleu([hyp], [ref], max_order=3)
    expected = math.exp((math.log(5 / 7) + math.log(3 / 6) + math.log(1 / 5)) / 3) * 100
    assert trigram["bleu"] == pytest.approx(expected) and trigram["brevity_penalty"] == 1.0


def test_brevity_penalty():
    result = corpus_bleu([["a", "b"]], [["a", "b", "c", "d"]], max_order=2)
    assert result["brevity_penalty"] == pytest.approx(math.exp(1 - 4 / 2))
    assert result["bleu"] == pytest.approx(100 * math.exp(1 - 2))


def test_counts_are_pooled_over_the_corpus():
    result = corpus_bleu([["a", "b"], ["c", "d", "e"]], [["a", "b"], ["c", "x", "e"]],
                         max_order=1)
    assert result["precisions"][0] == pytest.approx(100 * 4 / 5)


def test_tokenizer_separates_punctuation_but_not_numbers():
    assert bleu_tokenize("Hello, world! It costs 3,000.50 (approx).") == \
        ["Hello", ",", "world", "!", "It", "costs", "3,000.50", "(", "approx", ")", "."]


def test_bleu_agrees_with_sacrebleu():
    sacrebleu = pytest.importorskip("sacrebleu")
    hypotheses = ["Ein Mann fährt Fahrrad auf der Straße.", "Zwei Hunde spielen im Schnee!",
                  "Eine Frau liest ein Buch, im Park.", "Kinder spielen Fußball."]
    references = ["Ein Mann fährt mit dem Fahrrad die Straße entlang.",
                  "Zwei Hunde spielen im Schnee.", "Eine Frau liest im Park ein Buch.",
                  "Die Kinder spielen Fußball auf dem Rasen."]
    ours = corpus_bleu(hypotheses, references)["bleu"]
    theirs = sacrebleu.corpus_bleu(hypotheses, [references], tokenize="13a").score
    assert ours == pytest.approx(theirs, abs=1e-9)


def test_bleu_errors():
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        corpus_bleu(["a", "b"], ["a"])


def test_accuracy_confusion_perplexity():
    assert accuracy([1, 0, 1], [1, 1, 1]) == pytest.approx(2 / 3)
    assert confusion_matrix([1, 0, 1], [1, 1, 0], 2) == [[0, 1], [1, 1]]
    assert perplexity(math.log(50)) == pytest.approx(50)
    with pytest.raises(ValueError, match="equally long"):
        accuracy([1], [1, 0])
