"""Built-in data: the copy and reverse tasks and the text world."""

import pytest

from minitransformer.data import N_SPECIAL, WordTokenizer, copy_task, reverse_task, text_world
from minitransformer.data.builtin import NOUNS


def test_copy_and_reverse_tasks():
    pairs = copy_task(50, vocab_size=12, min_len=3, max_len=6, seed=1)
    assert len(pairs) == 50
    assert all(src == tgt and 3 <= len(src) <= 6 for src, tgt in pairs)
    assert all(N_SPECIAL <= i < 12 for src, _ in pairs for i in src)
    reversed_pairs = reverse_task(50, vocab_size=12, min_len=3, max_len=6, seed=1)
    assert [tgt for _, tgt in reversed_pairs] == [src[::-1] for src, _ in pairs]
    assert copy_task(5, seed=2) == copy_task(5, seed=2) != copy_task(5, seed=3)
    with pytest.raises(ValueError, match="vocab_size must exceed the 7 special ids"):
        copy_task(5, vocab_size=7)


def test_text_world_is_deterministic_and_sized_as_documented():
    world = text_world(seed=0)
    assert world.corpus == text_world(seed=0).corpus
    assert world.test == text_world(seed=0).test
    assert world.corpus != text_world(seed=1).corpus
    assert (len(world.corpus), len(world.train), len(world.valid), len(world.test)) == \
        (4000, 400, 200, 400)
    for split in (world.train, world.valid, world.test):
        assert sum(label for _, label in split) == len(split) // 2
    assert 100 <= WordTokenizer.train(world.texts()).vocab_size <= 120


def words_of(sentences):
    return {word for sentence in sentences for word in sentence.split()}


def test_text_world_test_words_never_appear_in_training_but_do_in_the_corpus():
    world = text_world(seed=0)
    unseen = set(world.unseen_words["positive"] + world.unseen_words["negative"])
    seen = set(world.seen_words["positive"] + world.seen_words["negative"])
    train_words = words_of(text for text, _ in world.train + world.valid)
    test_words = words_of(text for text, _ in world.test)
    assert not unseen & train_words and seen <= train_words
    assert not seen & test_words and unseen <= test_words
    assert unseen | seen <= words_of(world.corpus)


def test_text_world_labels_follow_the_sentiment_word():
    world = text_world(seed=0)
    positive = set(world.seen_words["positive"] + world.unseen_words["positive"])
    for text, label in world.train + world.test:
        assert label == int(bool(words_of([text]) & positive))


def test_text_world_corpus_shares_contexts_between_seen_and_unseen_words():
    world = text_world(seed=0)

    def contexts(word):
        """The corpus sentences holding ``word``, with it as "_" and every noun as "N"."""
        return {" ".join("_" if w == word else "N" if w in NOUNS else w for w in s.split())
                for s in world.corpus if word in s.split()}

    good, superb, dreadful = contexts("good"), contexts("superb"), contexts("dreadful")
    assert len(good & superb) / len(good | superb) > 0.5  # the same slots, the same neighbours
    assert any("loved" in c for c in good & superb)
    assert not any("loved" in c for c in dreadful)  # cue words go with one polarity
    assert any("hated" in c for c in dreadful)
