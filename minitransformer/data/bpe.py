"""BPETokenizer: byte-level byte-pair encoding (Sennrich et al. 2016; byte-level as in GPT-2).

Every text is first UTF-8 encoded; each of the 256 byte values is a base token, so any string
(emoji, control characters, any script) is encoded without ``<unk>`` and round-trips exactly.

Training repeats one step until the vocabulary is full: find the most frequent adjacent pair of
tokens and make it a new token (a *merge*). Two habits keep it fast (10 MB in well under a
minute on one core):

1. Pre-tokenization. A regular expression cuts the text into words (a leading space stays with its
   word: " the"), merges never cross a word boundary, and each distinct word is stored once with
   its count. Pair counts are counts over distinct words times their frequency.
2. Incremental counts. A merge only touches the words that contain the pair (an index
   pair -> words remembers them), so only those words' pair counts are updated; a heap gives the
   most frequent pair, its stale entries skipped when popped (ties go to the smaller id pair, so
   training is deterministic).

Encoding a word applies the merges in the order they were learned (lowest rank first), and a
cache remembers each word's ids.

Ids: 0..6 the special tokens, 7..262 the bytes 0..255, then one id per merge in learned order.
"""

import heapq
import re
from collections import Counter, defaultdict

from minitransformer.data.tokenizer import (
    N_SPECIAL,
    Tokenizer,
    as_id_list,
    as_texts,
    field,
    regex_field,
    register_kind,
)

__all__ = ["BPE_PATTERN", "BPETokenizer"]

# GPT-2's pre-tokenizer written with the standard ``re`` module: English contractions; a word of
# letters, a number or a run of other symbols, each with an optional leading space; whitespace.
# Every character falls in one branch, so the pieces always join back to the input.
BPE_PATTERN = (r"'(?:s|t|re|ve|m|ll|d)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+")

BYTE_OFFSET = N_SPECIAL  # id of byte b is BYTE_OFFSET + b
FIRST_MERGE_ID = BYTE_OFFSET + 256
CACHE_SIZE = 100_000  # words remembered by encode before the cache is emptied


def merge_pair(word, pair, new_id):
    """Replace every non-overlapping occurrence of ``pair`` in ``word`` (left to right)."""
    first, second = pair
    merged = []
    i, n = 0, len(word)
    while i < n:
        if i + 1 < n and word[i] == first and word[i + 1] == second:
            merged.append(new_id)
            i += 2
        else:
            merged.append(word[i])
            i += 1
    return merged


def learn_merges(word_counts, n_merges):
    """The ``n_merges`` most frequent pair merges of ``word_counts`` (a dict: tuple of ids ->
    count), as a list of id pairs; merge k creates id FIRST_MERGE_ID + k."""
    words = [list(word) for word in word_counts]
    freqs = list(word_counts.values())
    pair_counts = defaultdict(int)
    where = defaultdict(set)  # pair -> indices of the words that contain it (may be stale)
    for index, (word, freq) in enumerate(zip(words, freqs)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += freq
            where[pair].add(index)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)
    merges = []
    while heap and len(merges) < n_merges:
        negative_count, pair = heapq.heappop(heap)
        count = pair_counts.get(pair, 0)
        if count <= 0:
            continue
        if -negative_count != count:  # a stale entry: the count fell since it was pushed
            heapq.heappush(heap, (-count, pair))
            continue
        new_id = FIRST_MERGE_ID + len(merges)
        merges.append(pair)
        changes = defaultdict(int)  # pair -> change of its count, over all touched words
        for index in where.pop(pair):
            word, freq = words[index], freqs[index]
            merged = merge_pair(word, pair, new_id)
            if len(merged) == len(word):
                continue  # a stale index: an earlier merge already consumed the pair here
            for old in zip(word, word[1:]):
                changes[old] -= freq
            for new in zip(merged, merged[1:]):
                changes[new] += freq
                where[new].add(index)
            words[index] = merged
        for changed, change in changes.items():
            pair_counts[changed] += change
            if change > 0:  # a rise needs a fresh heap entry; a fall is caught when popped
                heapq.heappush(heap, (-pair_counts[changed], changed))
        pair_counts.pop(pair, None)
    return merges


@register_kind
class BPETokenizer(Tokenizer):
    """Byte-level BPE. ``vocab_size`` = 7 special + 256 bytes + the number of merges.

    >>> tokenizer = BPETokenizer.train(["low lower lowest"] * 10, vocab_size=266)
    >>> tokenizer.decode(tokenizer.encode("slower 🙂"))
    'slower 🙂'
    """

    kind = "bpe"
    FIELDS = ("merges", "pattern")

    def __init__(self, merges, pattern=BPE_PATTERN):
        self.merges = [tuple(pair) for pair in merges]
        self.pattern = pattern
        self._regex = re.compile(pattern)
        self._ranks = {}
        self._bytes = [b""] * N_SPECIAL + [bytes([b]) for b in range(256)]
        for rank, (first, second) in enumerate(self.merges):
            new_id = FIRST_MERGE_ID + rank
            if not (0 <= first < new_id and 0 <= second < new_id) or min(first, second) < N_SPECIAL:
                raise ValueError(f"BPETokenizer: merge {rank} {(first, second)} uses an id that "
                                 f"is special or not yet defined (ids below {new_id} allowed)")
            self._ranks[(first, second)] = rank
            self._bytes.append(self._bytes[first] + self._bytes[second])
        self._cache = {}

    @classmethod
    def train(cls, texts, vocab_size, pattern=BPE_PATTERN):
        """Learn ``vocab_size - 263`` merges from ``texts`` (a string or an iterable of
        strings). Training stops early, with a smaller vocabulary, when no pair is left."""
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) \
                or vocab_size < FIRST_MERGE_ID:
            raise ValueError(f"BPETokenizer.train: vocab_size must be an int >= {FIRST_MERGE_ID} "
                             f"(7 special tokens + 256 bytes), got {vocab_size!r}")
        regex = re.compile(pattern)
        counts = Counter()
        for text in as_texts(texts, "BPETokenizer.train"):
            counts.update(regex.findall(text))
        word_counts = {}
        for word, count in counts.items():
            word_counts[tuple(BYTE_OFFSET + b for b in word.encode("utf-8"))] = count
        return cls(learn_merges(word_counts, vocab_size - FIRST_MERGE_ID), pattern)

    @property
    def vocab_size(self):
        return FIRST_MERGE_ID + len(self.merges)

    def _encode_word(self, word):
        ids = self._cache.get(word)
        if ids is not None:
            return ids
        ids = [BYTE_OFFSET + b for b in word.encode("utf-8")]
        ranks = self._ranks
        while len(ids) > 1:
            best_rank, best_pair = None, None
            for pair in zip(ids, ids[1:]):
                rank = ranks.get(pair)
                if rank is not None and (best_rank is None or rank < best_rank):
                    best_rank, best_pair = rank, pair
            if best_pair is None:
                break
            ids = merge_pair(ids, best_pair, FIRST_MERGE_ID + best_rank)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[word] = ids
        return ids

    def encode(self, text):
        if not isinstance(text, str):
            raise TypeError(f"BPETokenizer.encode: expected a str, got {type(text).__name__}")
        ids = []
        for word in self._regex.findall(text):
            ids.extend(self._encode_word(word))
        return ids

    def token_bytes(self, token_id):
        """The bytes a (non-special) token stands for."""
        return self._bytes[token_id]

    def _token_text(self, token_id):
        # one token may hold part of a UTF-8 character: show its bytes readably
        return self._bytes[token_id].decode("utf-8", errors="backslashreplace")

    def decode(self, ids, skip_special=False):
        """ids -> text: the tokens' bytes joined, then decoded as UTF-8. A sequence cut inside
        a character (e.g. by max_len) decodes its broken tail as U+FFFD."""
        name = "BPETokenizer.decode"
        pieces, chunk = [], []
        for token_id in _checked(ids, self.vocab_size, name):
            if token_id < N_SPECIAL:
                pieces.append(b"".join(chunk).decode("utf-8", errors="replace"))
                chunk = []
                if not skip_special:
                    pieces.append(super().id_to_token(token_id))
            else:
                chunk.append(self._bytes[token_id])
        pieces.append(b"".join(chunk).decode("utf-8", errors="replace"))
        return "".join(pieces)

    def _config(self):
        return {"pattern": self.pattern, "merges": [list(pair) for pair in self.merges]}

    @classmethod
    def _from_config(cls, config, source):
        merges = field(config, "merges", list, list)
        for pair in merges:
            field({"merge": pair}, "merge", list, int)
            if len(pair) != 2:
                raise ValueError(f"field 'merges' should hold pairs of ids, got {pair!r}")
        return cls(merges, regex_field(config, "pattern"))


def _checked(ids, vocab_size, function):
    ids = as_id_list(ids, function)
    for token_id in ids:
        if not 0 <= token_id < vocab_size:
            raise ValueError(f"{function}: id {token_id} is outside the vocabulary "
                             f"(ids run from 0 to {vocab_size - 1})")
    return ids
