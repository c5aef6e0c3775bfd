# %% setup
# Chapter 13's exercises, graded: write each answer in its cell; the check cell after it says
# what is wrong, if anything. `minitransformer grade` gives each exercise its points.
import numpy as np

import minitransformer as mt
from minitransformer import nn
from minitransformer.data import N_SPECIAL, UNK_ID, BPETokenizer, CharTokenizer, WordTokenizer

FIRST_MERGE_ID = N_SPECIAL + 256  # 7 special ids, then the 256 bytes, then the merges


# %% exercise ch13-first-word (2 points)
# first_word_merge(bpe, words) -> (rank, token): the first merge of the BPETokenizer `bpe`
#   (rank counts from 0) whose token is a whole word: a space followed by one of `words` that
#   has at least two letters (BPE keeps a word's leading space with the word); token is the
#   merged token's text, e.g. " on".
# first_word: first_word_merge of a BPETokenizer trained on mt.data.text_world().texts() with
#   vocab_size=300, and the words of the text world (those of a WordTokenizer trained on the
#   same texts).
# BEGIN SOLUTION
def first_word_merge(bpe, words):
    words = set(words)
    for rank in range(len(bpe.merges)):
        token = bpe.token_bytes(FIRST_MERGE_ID + rank).decode("utf-8", errors="replace")
        if token.startswith(" ") and token[1:] in words and len(token) > 2:
            return rank, token
    return None


texts = mt.data.text_world().texts()
vocabulary = WordTokenizer.train(texts)
world_words = [vocabulary.id_to_token(i) for i in range(N_SPECIAL, vocabulary.vocab_size)]
first_word = first_word_merge(BPETokenizer.train(texts, vocab_size=300), world_words)
# END SOLUTION

# %% check ch13-first-word
def reference_first_word(bpe, words):
    for rank in range(len(bpe.merges)):
        text = bpe.decode([FIRST_MERGE_ID + rank])
        if text[:1] == " " and text[1:] in set(words) and len(text) > 2:
            return rank, text


for n_corpus in (4000, 1000):  # the chapter's full and fast worlds
    check_texts = mt.data.text_world(n_corpus=n_corpus).texts()
    check_bpe = BPETokenizer.train(check_texts, vocab_size=290)
    vocabulary = WordTokenizer.train(check_texts)
    check_words = [vocabulary.id_to_token(i) for i in range(N_SPECIAL, vocabulary.vocab_size)]
    for allowed in (check_words, [w for w in check_words if w != "was"]):
        got, want = first_word_merge(check_bpe, allowed), reference_first_word(check_bpe, allowed)
        assert got is not None and tuple(got) == want, (
            f"on the text world of {n_corpus} sentences, first_word_merge gives {got!r}, which is "
            "not the first merge that makes a space + a word of two letters or more: merge k is "
            f"id {FIRST_MERGE_ID} + k (bpe.token_bytes(id).decode()), and a token without its "
            "leading space is a piece of a word, not a word")
full_texts = mt.data.text_world().texts()
vocabulary = WordTokenizer.train(full_texts)
full_words = [vocabulary.id_to_token(i) for i in range(N_SPECIAL, vocabulary.vocab_size)]
full_first = reference_first_word(BPETokenizer.train(full_texts, vocab_size=300), full_words)
assert first_word is not None and tuple(first_word) == full_first, (
    f"first_word is {first_word!r}: run first_word_merge on a BPETokenizer trained on "
    "mt.data.text_world().texts() with vocab_size=300 and the words of a WordTokenizer trained "
    "on the same texts")

# %% wrong ch13-first-word
def first_word_merge(bpe, words):  # noqa: F811  (merge ids counted from 256, not 7 + 256)
    for rank in range(len(bpe.merges)):
        token = bpe.token_bytes(256 + rank).decode("utf-8", errors="replace")
        if token.startswith(" ") and token[1:] in set(words) and len(token) > 2:
            return rank, token

# %% wrong ch13-first-word
def first_word_merge(bpe, words):  # noqa: F811  (strips the space: "me" inside "game" counts)
    for rank in range(len(bpe.merges)):
        token = bpe.token_bytes(FIRST_MERGE_ID + rank).decode("utf-8", errors="replace")
        if token.strip() in set(words) and len(token.strip()) > 1:
            return rank, token

# %% exercise ch13-no-merges (2 points)
# world = mt.data.text_world(), texts = world.texts().
# bytes_only: a BPETokenizer trained on texts that learns no merge at all.
# mean_tokens: (bytes_only's, chars'), two floats: the mean number of tokens per sentence over
#   the first 200 test sentences (world.test[:200]), with bytes_only and with a CharTokenizer
#   trained on texts.
# odd_tokens: (bytes_only's, chars'), two ints: how many tokens each of the two gives for the
#   text "naïve 🙂".
# BEGIN SOLUTION
world = mt.data.text_world()
texts = world.texts()
bytes_only = BPETokenizer.train(texts, vocab_size=FIRST_MERGE_ID)  # 7 special + 256 bytes
chars = CharTokenizer.train(texts)
sample_texts = [text for text, _ in world.test[:200]]
mean_tokens = tuple(float(np.mean([len(tokenizer.encode(t)) for t in sample_texts]))
                    for tokenizer in (bytes_only, chars))
odd_tokens = (len(bytes_only.encode("naïve 🙂")), len(chars.encode("naïve 🙂")))
# END SOLUTION

# %% check ch13-no-merges
assert isinstance(bytes_only, BPETokenizer) and len(bytes_only.merges) == 0, (
    f"bytes_only has {len(bytes_only.merges)} merges; with vocab_size = 7 special ids + 256 "
    "bytes there is no room for any")
check_world = mt.data.text_world()
utf8 = np.mean([len(text.encode()) for text, _ in check_world.test[:200]])
characters = np.mean([len(text) for text, _ in check_world.test[:200]])
assert np.allclose(mean_tokens, (utf8, characters)), (
    f"mean_tokens is {mean_tokens}: average len(tokenizer.encode(text)) over the 200 texts of "
    "world.test[:200], first for bytes_only, then for the CharTokenizer")
assert tuple(odd_tokens) == (len("naïve 🙂".encode()), len("naïve 🙂")), (
    f"odd_tokens is {odd_tokens}: count the ids of bytes_only.encode('naïve 🙂') and of the "
    "CharTokenizer's encode; without merges every UTF-8 byte is one token, while the "
    "CharTokenizer gives one id per character (<unk> for those it never saw)")

# %% wrong ch13-no-merges
bytes_only = BPETokenizer.train(texts, vocab_size=300)  # some merges left

# %% wrong ch13-no-merges
odd_tokens = (len("naïve 🙂"), len("naïve 🙂"))  # a byte per character, as in ASCII

# %% exercise ch13-unseen-words (3 points)
# world = mt.data.text_world(); the training sentences are [text for text, _ in world.train].
# unknown_words: the words of world.test (text.split() of every test sentence, in order,
#   repeats included) that a WordTokenizer trained on the training sentences encodes as
#   [UNK_ID].
# bpe_pieces(tokenizer, word) -> list of str: the pieces (each token's text) that the
#   BPETokenizer `tokenizer` spells " " + word with, as the word appears inside a sentence.
# spelled: {word: bpe_pieces(bpe_train, word)} for every distinct word of unknown_words, with
#   bpe_train a BPETokenizer trained on the training sentences with vocab_size=400.
# BEGIN SOLUTION
world = mt.data.text_world()
train_texts = [text for text, _ in world.train]
word_tok = WordTokenizer.train(train_texts)
unknown_words = [word for text, _ in world.test for word in text.split()
                 if word_tok.encode(word) == [UNK_ID]]


def bpe_pieces(tokenizer, word):
    return [tokenizer.token_bytes(i).decode("utf-8") for i in tokenizer.encode(" " + word)]


bpe_train = BPETokenizer.train(train_texts, vocab_size=400)
spelled = {word: bpe_pieces(bpe_train, word) for word in sorted(set(unknown_words))}
# END SOLUTION

# %% check ch13-unseen-words
check_world = mt.data.text_world()
unseen = {w for words in check_world.unseen_words.values() for w in words}
test_words = [word for text, _ in check_world.test for word in text.split()]
assert len(unknown_words) == len(check_world.test), (
    f"unknown_words holds {len(unknown_words)} words; count every unknown word of every test "
    f"sentence, repeats included ({len(test_words)} test words in all), with a WordTokenizer "
    "trained on world.train's sentences only")
assert set(unknown_words) == unseen, (
    f"unknown_words holds the distinct words {sorted(set(unknown_words))[:5]}...: they should "
    "be exactly the test words that no training sentence uses")
assert set(spelled) == set(unknown_words), (
    f"spelled has {len(spelled)} keys; it needs one per distinct unknown word "
    f"({len(set(unknown_words))})")
check_bpe = BPETokenizer.train([text for text, _ in check_world.train], vocab_size=400)
for word in sorted(unseen):
    pieces = bpe_pieces(check_bpe, word)
    assert "".join(pieces) == " " + word, (
        f"bpe_pieces(tokenizer, {word!r}) gives {pieces}, which do not spell ' {word}': encode "
        "the word with its leading space, as it appears inside a sentence")
    assert [check_bpe.token_bytes(i).decode() for i in check_bpe.encode(" " + word)] == pieces, (
        f"bpe_pieces(tokenizer, {word!r}) gives {pieces}: take the text of each id of "
        "tokenizer.encode(' ' + word), in order")
    assert spelled.get(word) == pieces and len(pieces) > 1, (
        f"spelled[{word!r}] is {spelled.get(word)!r}: use bpe_pieces with a BPETokenizer trained "
        "on world.train's sentences, vocab_size=400")

# %% wrong ch13-unseen-words
word_tok = WordTokenizer.train(world.texts())  # trained on every sentence, the test ones too
unknown_words = [word for text, _ in world.test for word in text.split()
                 if word_tok.encode(word) == [UNK_ID]]

# %% wrong ch13-unseen-words
unknown_words = sorted(set(unknown_words))  # the distinct words, not every occurrence

# %% wrong ch13-unseen-words
def bpe_pieces(tokenizer, word):  # noqa: F811  (the word alone, as at the start of a text)
    return [tokenizer.token_bytes(i).decode("utf-8") for i in tokenizer.encode(word)]

# %% exercise ch13-vocab-parameters (2 points)
# vocab_parameters(vocab_size, d_model=512) -> (embedding, output, both), three ints: the
#   parameters of the embedding table nn.Embedding(vocab_size, d_model), of the output layer
#   nn.Linear(d_model, vocab_size), and the two together. Compute them, don't build the layers.
# tied_real: the parameters of embedding and output together for a real vocabulary of 37,000
#   at d_model 512 when the output weight is tied to the embedding (chapter 10): the output
#   layer keeps only its bias.
# BEGIN SOLUTION
def vocab_parameters(vocab_size, d_model=512):
    embedding = vocab_size * d_model
    output = d_model * vocab_size + vocab_size  # weights and biases
    return embedding, output, embedding + output


tied_real = vocab_parameters(37000)[0] + 37000
# END SOLUTION

# %% check ch13-vocab-parameters
for vocab_size, d_model in [(35, 512), (586, 512), (107, 64)]:
    want = (nn.Embedding(vocab_size, d_model).num_parameters(),
            nn.Linear(d_model, vocab_size).num_parameters())
    got = vocab_parameters(vocab_size, d_model)
    assert tuple(got[:2]) == want, (
        f"vocab_parameters({vocab_size}, {d_model}) gives embedding and output {tuple(got[:2])}, "
        "but the layers hold a different number: the embedding is a V × d table, the output "
        "layer d × V weights plus V biases")
    assert got[2] == sum(want), f"both should be embedding + output, got {got[2]}"
assert tied_real == nn.Embedding(37000, 1).num_parameters() * 512 + 37000, (
    f"tied_real is {tied_real:,}: with tying, the output layer reuses the embedding table as "
    "its weight and keeps only its V biases")

# %% wrong ch13-vocab-parameters
def vocab_parameters(vocab_size, d_model=512):  # noqa: F811  (the output layer's bias forgotten)
    return vocab_size * d_model, d_model * vocab_size, 2 * vocab_size * d_model

# %% wrong ch13-vocab-parameters
tied_real = vocab_parameters(37000)[2] // 2  # "half the parameters": the bias is not shared
