# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 13 — Tokenizers
#
# A Transformer reads integers, not text. A **tokenizer** cuts text into pieces (tokens) and maps
# each to an id, and maps ids back to text. The choice of pieces is a trade-off: characters give a
# tiny vocabulary but long sequences (attention costs grow with the square of the length); words
# give short sequences but a huge vocabulary and no way to spell a word never seen. **Byte-pair
# encoding** (BPE, used by the paper and by GPT) sits in between: it starts from bytes and learns
# to merge frequent pairs. This chapter meets minitransformer's three tokenizers on the built-in
# text world.
#
# **Learning objectives.** After this chapter you can
#
# 1. name the seven special tokens and their fixed ids;
# 2. train and use `CharTokenizer`, `WordTokenizer` (`min_freq`, `max_size`, `lowercase`) and
#    `BPETokenizer`, and say which round trips are exact;
# 3. explain how BPE learns merges, and read the first merges it learned;
# 4. measure the trade-off between vocabulary size and sequence length;
# 5. save a tokenizer to JSON and load it back.

# %%
import importlib.util
import os
import re
import tempfile
from collections import Counter
from pathlib import Path

import minitransformer as mt
from minitransformer.data import BPETokenizer, CharTokenizer, WordTokenizer

FAST = os.environ.get("MINITRANSFORMER_FAST") == "1"  # a smaller corpus when set
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
world = mt.data.text_world(n_corpus=1000 if FAST else 4000)
texts = world.texts()
print(world)
print(texts[:3])

# %% [markdown]
# ## 1. Special tokens
#
# Every minitransformer tokenizer reserves ids 0–6 for the same special tokens, so batching code
# (`collate_seq2seq`, the masks) can rely on them whatever the tokenizer: `<pad>` fills short
# rows, `<unk>` stands for unknown pieces, `<bos>`/`<eos>` start and end a generated sequence,
# `<cls>`/`<sep>` serve classification, `<mask>` masked-language-model pretraining.

# %%
print(list(enumerate(mt.data.SPECIAL_TOKENS)))
assert (mt.data.PAD_ID, mt.data.UNK_ID, mt.data.BOS_ID, mt.data.EOS_ID) == (0, 1, 2, 3)
assert (mt.data.CLS_ID, mt.data.SEP_ID, mt.data.MASK_ID, mt.data.N_SPECIAL) == (4, 5, 6, 7)

# %% [markdown]
# ## 2. Characters
#
# `CharTokenizer.train(texts)` gives every character seen an id from 7 on. Any text made of known
# characters round-trips exactly; an unknown character becomes `<unk>`.

# %%
chars = CharTokenizer.train(texts)
sentence = "the film was really splendid !"
ids = chars.encode(sentence)
print(chars, ids[:10])
assert chars.decode(ids) == sentence
assert min(ids) >= mt.data.N_SPECIAL
assert chars.encode("€") == [mt.data.UNK_ID]
assert chars.decode([mt.data.BOS_ID] + ids, skip_special=True) == sentence

# %% [markdown]
# ## 3. Words
#
# `WordTokenizer.train(texts, min_freq, max_size, lowercase)` splits on words, numbers and
# punctuation, counts them and keeps the frequent ones, most frequent first. `min_freq` drops rare
# words, `max_size` caps the vocabulary (special tokens included); everything else becomes
# `<unk>`. Decoding joins tokens with single spaces, so the original spacing and case are lost.

# %%
words = WordTokenizer.train(texts)
print(words, "first words:", [words.id_to_token(i) for i in range(7, 15)])
small = WordTokenizer.train(texts, max_size=50)
rare = WordTokenizer.train(texts, min_freq=1000)
print(f"vocabulary: all {words.vocab_size}, max_size=50 -> {small.vocab_size}, "
      f"min_freq=1000 -> {rare.vocab_size}")
assert small.vocab_size == 50 and rare.vocab_size < words.vocab_size

odd = "The film's ending didn't work,  sadly!"
print(words.decode(words.encode(odd)))
assert words.decode(words.encode(odd)) != odd  # case, spacing and unknown words are lost
assert mt.data.UNK_ID in words.encode("a zyzzyva")
cased = WordTokenizer.train(["Good good GOOD"], lowercase=False)
assert cased.vocab_size == mt.data.N_SPECIAL + 3  # three distinct words without lower-casing

# %% [markdown]
# ## 4. Byte-pair encoding
#
# BPE starts from the 256 bytes (ids 7–262), so *any* text can be encoded: nothing is unknown.
# Training counts, within each word, every pair of adjacent tokens, merges the most frequent pair
# into a new token, and repeats until the vocabulary has `vocab_size` entries (7 special + 256
# bytes + the merges). Encoding applies the learned merges in the order they were learned.

# %%
bpe = BPETokenizer.train(texts, vocab_size=400)
print(bpe, f"{len(bpe.merges)} merges")


def show(token_id):
    return repr(bpe.token_bytes(token_id).decode("utf-8", errors="replace"))


for rank, (first, second) in enumerate(bpe.merges[:10]):
    print(f"merge {rank}: {show(first)} + {show(second)} -> {show(263 + rank)}")
assert bpe.vocab_size == 400 and len(bpe.merges) == 400 - 263

# %% [markdown]
# The first merge can be recomputed by hand: cut every text into words with the tokenizer's
# pattern, count every pair of adjacent bytes *inside* a word, and take the most frequent pair
# (ties go to the smaller pair). Byte b has id 7 + b.

# %%
# BEGIN SOLUTION
pair_counts = Counter()
for text in texts:
    for word in re.findall(bpe.pattern, text):  # merges never cross a word boundary
        word_bytes = word.encode("utf-8")
        pair_counts.update(zip(word_bytes, word_bytes[1:]))  # adjacent byte pairs
# END SOLUTION
first_pair, first_count = min(pair_counts.items(), key=lambda item: (-item[1], item[0]))
print(f"most frequent pair {bytes(first_pair)!r}, seen {first_count} times")
assert tuple(mt.data.N_SPECIAL + b for b in first_pair) == bpe.merges[0], (
    f"your most frequent pair {bytes(first_pair)!r} ({first_count} times) should be BPE's first "
    f"merge, {bytes(i - mt.data.N_SPECIAL for i in bpe.merges[0])!r}: count the adjacent byte "
    "pairs inside each word of re.findall(bpe.pattern, text), over every text"
)
assert pair_counts[(ord("e"), ord(" "))] == 0, (  # a space only ever starts a word
    f"the pair ('e', ' ') was counted {pair_counts[(ord('e'), ord(' '))]} times: count pairs "
    "inside each word from re.findall(bpe.pattern, text), never across word boundaries"
)

# %% [markdown]
# The first merges join frequent letter pairs and a space with the letter after it (spaces belong
# to the *following* word); later merges build whole frequent words such as " the". Round trips
# are exact, even for text the tokenizer never saw.

# %%
for text in (sentence, odd, "naïve café 🙂 3.14"):
    assert bpe.decode(bpe.encode(text)) == text
pieces = [bpe.token_bytes(i).decode("utf-8") for i in bpe.encode(sentence)]
print(pieces)
assert len(pieces) < len(sentence) / 2  # common words are single tokens

# %% [markdown]
# ## 5. Vocabulary size versus sequence length
#
# On the same text we count tokens per sentence for each tokenizer. More merges mean a larger
# embedding table and output layer, but shorter sequences, and attention's cost grows with the
# length squared.

# %%
sample = world.test[:200]
sample_texts = [text for text, _ in sample]


def mean_length(tokenizer):
    return sum(len(tokenizer.encode(t)) for t in sample_texts) / len(sample_texts)


rows = [("char", chars), ("bpe 300", BPETokenizer.train(texts, vocab_size=300)),
        ("bpe 400", bpe), ("bpe 600", BPETokenizer.train(texts, vocab_size=600)),
        ("word", words)]
lengths = []
for name, tokenizer in rows:
    lengths.append(mean_length(tokenizer))
    print(f"{name:<8} vocabulary {tokenizer.vocab_size:>4}   tokens per sentence {lengths[-1]:.1f}")
assert lengths[:4] == sorted(lengths[:4], reverse=True)  # bigger vocabulary, shorter sequences
assert lengths[3] <= 1.1 * lengths[4]  # enough merges: about one token per word

# %% [markdown]
# The trade-off as a picture, one point per tokenizer: look at each larger BPE vocabulary buying
# shorter sequences, and at the words reaching BPE 600's length with a fraction of its vocabulary
# (possible only because this world has so few distinct words).

# %%
if HAS_MATPLOTLIB:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 3.2), layout="constrained")
    for (name, tokenizer), length in zip(rows, lengths):
        axis.plot(tokenizer.vocab_size, length, "o")
        axis.annotate(name, (tokenizer.vocab_size, length), (4, 4), textcoords="offset points")
    axis.set(xlabel="vocabulary size", ylabel="tokens per sentence")
    axis.margins(0.15)
    figure.savefig("ch13_vocab_vs_length.png", dpi=110)
    plt.close(figure)
    mt.viz.show("ch13_vocab_vs_length.png")
else:
    print("matplotlib is not installed: no plot (pip install 'minitransformer[plot]')")

# %% [markdown]
# The text world has only about a hundred distinct words, so here words win with a small
# vocabulary, and BPE runs out of pairs before 600 (every word is already one token). On real
# text the word vocabulary runs into the hundreds of thousands, and BPE with a few tens of
# thousands of merges gets almost the same lengths while never producing `<unk>`.

# %% [markdown]
# ## 6. Saving and loading
#
# A model is useless without the tokenizer it was trained with, so tokenizers save to a small
# JSON file (`save`) and load back (`load` on the class, or `mt.data.load_tokenizer`, which reads
# the kind from the file).

# %%
with tempfile.TemporaryDirectory() as folder:
    for name, tokenizer in (("char", chars), ("word", words), ("bpe", bpe)):
        path = Path(folder) / f"{name}.json"
        tokenizer.save(path)
        loaded = mt.data.load_tokenizer(path)
        assert type(loaded) is type(tokenizer) and loaded == tokenizer
        assert loaded.encode(odd) == tokenizer.encode(odd)
    print("saved and reloaded:", sorted(p.name for p in Path(folder).iterdir()))

# %% [markdown]
# ## Summary
#
# - Ids 0–6 are always `<pad> <unk> <bos> <eos> <cls> <sep> <mask>`.
# - Characters: tiny vocabulary, long sequences, exact round trips over known characters.
# - Words: short sequences, a large vocabulary, `<unk>` for everything outside it; decoding loses
#   case and spacing.
# - Byte-level BPE: never unknown, exact round trips, and `vocab_size` trades vocabulary size for
#   sequence length.
# - `save` / `load_tokenizer` keep a tokenizer with its model.
#
# ## Exercises
#
# ```{exercise} The first whole word
# :label: ch13-first-word
#
# Which merge first produces a whole word? Print the merges until you find it.
# ```
#
# ````{solution} ch13-first-word
# :class: dropdown
#
# ```python
# for rank in range(12):
#     print(rank, show(263 + rank))
# ```
#
# In full mode (4000 sentences) the first merges are `' t'`, `' a'`, `'nd'`, `' w'`, `' m'`,
# `'as'`, `'er'`, `'he'`, `' s'`, and then merge 9 is `' w'` + `'as'` → **`' was'`**, the first
# token that is a whole word of more than one letter ("was" is the second most frequent word of
# the text world, 2,266 times). In fast mode the order of the first nine differs a little, but
# merge 9 is `' was'` as well; `' the'` follows at merge 13 (17 in fast mode), because `'he'`
# must be built first. Strictly, merge 1, `' a'`, is already a word, the article "a" (1,671
# times), but the same token also starts "and", "all", "about", …: BPE does not know words, only
# frequent byte sequences.
# ````
#
# ```{exercise} No merges at all
# :label: ch13-no-merges
#
# Train BPE with `vocab_size=263` (no merges). How long are the sequences now?
# ```
#
# ````{solution} ch13-no-merges
# :class: dropdown
#
# ```python
# bytes_only = BPETokenizer.train(texts, vocab_size=263)
# print(len(bytes_only.merges), mean_length(bytes_only), mean_length(chars))  # 0 28.2 28.2
# ```
#
# With no merges every byte is a token, so a sentence is as long as its UTF-8 encoding: 28.2
# tokens on average (27.9 in fast mode), exactly the character tokenizer's length, because the
# text world is pure ASCII (one byte per character). The vocabulary is 263 instead of 35: all
# 256 bytes are reserved even though only 28 occur. On text with accents or emoji the byte
# sequences would be *longer* than the character sequences (é is 2 bytes, 🙂 is 4).
# ````
#
# ```{exercise} Unseen words
# :label: ch13-unseen-words
#
# How many words of `world.test` (the *unseen* adjectives) does a `WordTokenizer` trained on
# `world.train` map to `<unk>`? How does BPE trained on the same text spell them?
# ```
#
# ````{solution} ch13-unseen-words
# :class: dropdown
#
# ```python
# train_texts = [text for text, _ in world.train]
# word_tok = WordTokenizer.train(train_texts)
# test_words = [w for text, _ in world.test for w in text.split()]
# unknown = [w for w in test_words if word_tok.encode(w) == [mt.data.UNK_ID]]
# print(len(test_words), len(unknown), sorted(set(unknown)))
# bpe_train = BPETokenizer.train(train_texts, vocab_size=400)
# for adjective in sorted(set(unknown)):
#     pieces = [bpe_train.token_bytes(i).decode() for i in bpe_train.encode(" " + adjective)]
#     print(adjective, pieces)
# ```
#
# In full mode 400 of the 2,109 word tokens of `world.test` become `<unk>`: one per test
# sentence, and exactly the twelve unseen adjectives (superb, terrific, splendid, …, miserable),
# nothing else. To the word model "a very terrific movie" and "a very horrible movie" are the
# same sentence, so it cannot get either right. BPE (it runs out of pairs after 137 merges on
# this small training text) spells them from pieces it learned elsewhere, e.g.
# `' d' 're' 'ad' 'ful'`, `' m' 'is' 'er' 'a' 'ble'`, `' ter' 'r' 'i' 'f' 'i' 'c'`: nothing is
# lost, and suffixes such as "ful" and "ble" are shared with seen words, which gives a model
# something to generalise from. (The exact pieces differ slightly in fast mode, whose training
# split is drawn differently.)
# ````
#
# ```{exercise} What the vocabulary costs
# :label: ch13-vocab-parameters
#
# Count the parameters of the embedding table and the output layer of a d_model 512 model for
# each row of the table in section 5.
# ```
#
# ```{solution} ch13-vocab-parameters
# :class: dropdown
#
# The embedding is V × 512; the output layer is a `Linear(512, V)`, 512 · V weights plus V
# biases. Full-mode vocabularies (bpe 600 stops at 586 when the pairs run out; 578 in fast mode):
#
# | tokenizer | V | embedding | output layer | both | tokens per sentence |
# |---|---|---|---|---|---|
# | char | 35 | 17,920 | 17,955 | 35,875 | 28.2 |
# | bpe 300 | 300 | 153,600 | 153,900 | 307,500 | 18.3 |
# | bpe 400 | 400 | 204,800 | 205,200 | 410,000 | 12.0 |
# | bpe 600 | 586 | 300,032 | 300,618 | 600,650 | 5.3 |
# | word | 107 | 54,784 | 54,891 | 109,675 | 5.3 |
#
# Tying the output weight to the embedding (Chapter 10) removes the 512 · V weights of the
# output layer. All of these are small next to one Transformer layer (about 3.2 M), but with a
# real vocabulary of 37,000 the table alone is 18.9 M parameters; that is the price of short
# sequences.
# ```
