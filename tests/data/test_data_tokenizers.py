"""Tokenizers: special ids, training rules, exact round trips, JSON save/load, errors, BPE speed."""

import gzip
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
from minitransformer.data import (
    BOS_ID,
    MASK_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    BPETokenizer,
    CharTokenizer,
    DataFormatError,
    Tokenizer,
    WordTokenizer,
    load_tokenizer,
)
from minitransformer.data.bpe import BPE_PATTERN, FIRST_MERGE_ID, merge_pair

SHARED_DATA = Path(__file__).parents[2] / ".." / "shared" / "data"

TEXTS = ["The film's 2.5 hours flew by!", "A good film, a GOOD film.", "Émile liked it: 10/10 🙂"]


# --------------------------------------------------------------------------- special tokens


@pytest.mark.parametrize("tokenizer, decoded", [
    (CharTokenizer.train(TEXTS), "<bos><mask><pad>"),
    (WordTokenizer.train(TEXTS), "<bos> <mask> <pad>"),  # words are joined with spaces
    (BPETokenizer.train(TEXTS, 270), "<bos><mask><pad>"),
])
def test_special_tokens_have_fixed_ids_in_every_tokenizer(tokenizer, decoded):
    assert SPECIAL_TOKENS == ("<pad>", "<unk>", "<bos>", "<eos>", "<cls>", "<sep>", "<mask>")
    assert (PAD_ID, UNK_ID, BOS_ID, MASK_ID) == (0, 1, 2, 6)
    assert [tokenizer.id_to_token(i) for i in range(7)] == list(SPECIAL_TOKENS)
    assert tokenizer.decode([BOS_ID, MASK_ID, PAD_ID]) == decoded
    assert tokenizer.decode([BOS_ID, MASK_ID, PAD_ID], skip_special=True) == ""


def test_encode_adds_no_special_tokens():
    for tokenizer in (CharTokenizer.train(TEXTS), WordTokenizer.train(TEXTS),
                      BPETokenizer.train(TEXTS, 270)):
        assert all(i >= 7 for i in tokenizer.encode(TEXTS[0]))


# --------------------------------------------------------------------------- char


def test_char_round_trip_is_exact_for_trained_characters():
    tokenizer = CharTokenizer.train(TEXTS)
    for text in TEXTS:
        assert tokenizer.decode(tokenizer.encode(text)) == text
    assert tokenizer.vocab_size == 7 + len(set("".join(TEXTS)))


def test_char_unknown_characters_become_unk():
    tokenizer = CharTokenizer.train("abc")
    assert tokenizer.encode("abz") == [7, 8, UNK_ID]
    assert [tokenizer.token_to_id(t) for t in ("b", "z", "<mask>")] == [8, UNK_ID, MASK_ID]


@given(st.text(max_size=60))
def test_char_round_trip_on_arbitrary_text(text):
    tokenizer = CharTokenizer.train([text])
    assert tokenizer.decode(tokenizer.encode(text)) == text


# --------------------------------------------------------------------------- word


def test_word_split_follows_the_documented_regex():
    tokenizer = WordTokenizer.train(TEXTS)
    assert tokenizer.tokenize("The film's 2.5 hours didn't drag!") == \
        ["the", "film", "'s", "2.5", "hours", "did", "n't", "drag", "!"]
    assert tokenizer.tokenize("1,000 l'été, naïve_x rock'n'roll can't O'Neil's 🙂") == \
        ["1,000", "l'été", ",", "naïve", "_", "x", "rock'n'roll", "ca", "n't", "o'neil", "'s",
         "🙂"]
    assert WordTokenizer([], lowercase=False).tokenize("DON'T") == ["DO", "N'T"]


def test_word_vocabulary_by_frequency_with_alphabetical_ties():
    tokenizer = WordTokenizer.train(["b a c a b a", "d c"])
    # a: 3, b: 2, c: 2, d: 1 -> a, then b and c alphabetically, then d
    assert tokenizer.words == ["a", "b", "c", "d"]
    assert WordTokenizer.train(["d c", "b a c a b a"]).words == ["a", "b", "c", "d"]


def test_word_min_freq_and_max_size():
    texts = ["a a a b b c"]
    assert WordTokenizer.train(texts, min_freq=2).words == ["a", "b"]
    limited = WordTokenizer.train(texts, max_size=8)
    assert limited.words == ["a"] and limited.vocab_size == 8
    assert limited.encode("a b") == [7, UNK_ID]


def test_word_lowercase_option():
    assert WordTokenizer.train(["Good GOOD good"]).words == ["good"]
    cased = WordTokenizer.train(["Good GOOD good"], lowercase=False)
    assert sorted(cased.words) == ["GOOD", "Good", "good"]
    assert cased.encode("Good") != cased.encode("good")


def test_word_decode_joins_with_spaces():
    tokenizer = WordTokenizer.train(["A good film."])
    assert tokenizer.decode(tokenizer.encode("a good film.")) == "a good film ."


@pytest.mark.parametrize("kwargs, message", [
    ({"min_freq": 0}, "min_freq must be an int >= 1"),
    ({"max_size": 3}, "max_size must be None or an int >= 7"),
])
def test_word_train_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WordTokenizer.train(["a"], **kwargs)


# --------------------------------------------------------------------------- BPE


def naive_bpe_merges(texts, n_merges):
    """Reference BPE: recount every pair after every merge (slow, obviously right)."""
    import re

    counts = Counter()
    for text in texts:
        counts.update(re.findall(BPE_PATTERN, text))
    words = {tuple(7 + b for b in w.encode("utf-8")): c for w, c in counts.items()}
    merges = []
    for _ in range(n_merges):
        pairs = Counter()
        for word, count in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += count
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        new_id = FIRST_MERGE_ID + len(merges)
        merges.append(best)
        words = {tuple(merge_pair(list(w), best, new_id)): c for w, c in words.items()}
    return merges


def test_bpe_incremental_training_matches_the_naive_algorithm():
    texts = ["the cat sat on the mat; the cats sat on the mats", "aaaa aaa aa a", "banana bandana"]
    tokenizer = BPETokenizer.train(texts, FIRST_MERGE_ID + 40)
    assert tokenizer.merges == naive_bpe_merges(texts, 40)


def test_bpe_learns_frequent_words_as_single_tokens():
    tokenizer = BPETokenizer.train(["hello world " * 50], 300)
    assert tokenizer.encode(" hello") == [tokenizer.encode(" hello")[0]]
    assert tokenizer.id_to_token(tokenizer.encode(" hello")[0]) == " hello"


def test_bpe_stops_early_when_no_pair_is_left():
    tokenizer = BPETokenizer.train(["ab"], 1000)
    assert tokenizer.vocab_size == FIRST_MERGE_ID + 1


def test_bpe_vocab_size_must_cover_bytes_and_specials():
    with pytest.raises(ValueError, match=r"vocab_size must be an int >= 263"):
        BPETokenizer.train(["abc"], 100)


def test_bpe_training_is_deterministic():
    first = BPETokenizer.train(TEXTS * 3, 300)
    assert first == BPETokenizer.train(TEXTS * 3, 300)


BPE_FOR_PROPERTY = BPETokenizer.train(
    ["Emoji 🙂😀 and control \x00\x1b chars, café € ", "the quick brown fox " * 5], 320)


@given(st.text(max_size=80))
def test_bpe_round_trip_on_arbitrary_text(text):
    tokenizer = BPE_FOR_PROPERTY
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text
    assert all(7 <= i < tokenizer.vocab_size for i in ids)


@given(st.text(alphabet=st.sampled_from("ab \n\t🙂é\x00\x1b€😀"), max_size=40))
def test_bpe_round_trip_with_emoji_and_control_characters(text):
    assert BPE_FOR_PROPERTY.decode(BPE_FOR_PROPERTY.encode(text)) == text


def test_bpe_decode_of_a_cut_character_gives_the_replacement_character():
    tokenizer = BPETokenizer.train(["x"], 263)
    ids = tokenizer.encode("é")  # two bytes
    assert tokenizer.decode(ids[:1]) == "\ufffd"


def test_bpe_cache_gives_the_same_ids():
    tokenizer = BPETokenizer.train(TEXTS, 300)
    first = tokenizer.encode(TEXTS[1])
    assert tokenizer.encode(TEXTS[1]) == first


# --------------------------------------------------------------------------- JSON


@pytest.mark.parametrize("make", [
    lambda: CharTokenizer.train(TEXTS),
    lambda: WordTokenizer.train(TEXTS, lowercase=False),
    lambda: BPETokenizer.train(TEXTS, 300),
])
def test_save_and_load_give_the_same_tokenizer(tmp_path, make):
    tokenizer = make()
    path = tmp_path / "tokenizer.json"
    tokenizer.save(path)
    for loaded in (type(tokenizer).load(path), load_tokenizer(path), Tokenizer.load(path),
                   Tokenizer.from_dict(tokenizer.to_dict())):
        assert loaded == tokenizer
        assert loaded.encode(TEXTS[2]) == tokenizer.encode(TEXTS[2])


def test_bpe_json_holds_the_merges(tmp_path):
    import json

    tokenizer = BPETokenizer.train(TEXTS, 280)
    tokenizer.save(tmp_path / "bpe.json")
    data = json.loads((tmp_path / "bpe.json").read_text(encoding="utf-8"))
    assert data["type"] == "bpe" and len(data["merges"]) == 280 - FIRST_MERGE_ID


def test_load_errors_name_the_file_and_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="WordTokenizer.load: no file"):
        WordTokenizer.load(tmp_path / "missing.json")
    CharTokenizer.train("abc").save(tmp_path / "char.json")
    with pytest.raises(DataFormatError, match="holds a CharTokenizer, not a WordTokenizer"):
        WordTokenizer.load(tmp_path / "char.json")
    with pytest.raises(DataFormatError, match="Tokenizer.from_dict: dict holds no tokenizer type"):
        Tokenizer.from_dict({"type": "sentencepiece"})
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataFormatError, match="bad.json is not a JSON tokenizer file"):
        load_tokenizer(tmp_path / "bad.json")


def test_decode_rejects_ids_outside_the_vocabulary():
    tokenizer = CharTokenizer.train("ab")
    with pytest.raises(ValueError, match="id 99 is outside the vocabulary"):
        tokenizer.decode([7, 99])


def test_decode_accepts_a_tensor_row():
    tokenizer = CharTokenizer.train("ab")
    assert tokenizer.decode(mt.tensor([7, 8])) == "ab"


def test_encode_rejects_non_text():
    with pytest.raises(TypeError, match="expected a str, got int"):
        BPETokenizer.train(["a"], 263).encode(5)
    with pytest.raises(TypeError, match=r"texts\[1\] is a int"):
        WordTokenizer.train(["a", 3])


# --------------------------------------------------------------------------- speed


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "pd_english_mix.txt.gz").exists(),
                    reason="../shared/data is absent")
def test_bpe_trains_on_10_mb_with_vocab_8000_in_under_a_minute():
    raw = gzip.open(SHARED_DATA / "pd_english_mix.txt.gz", "rb").read()[:10_000_000]
    text = raw.decode("utf-8", errors="ignore")  # the cut may split the last character
    start = time.perf_counter()
    tokenizer = BPETokenizer.train(text, 8000)
    seconds = time.perf_counter() - start
    print(f"BPE training on 10 MB, vocab 8000: {seconds:.1f} s")
    assert tokenizer.vocab_size == 8000
    assert seconds < 60
    sample = text[:100_000]
    assert tokenizer.decode(tokenizer.encode(sample)) == sample
