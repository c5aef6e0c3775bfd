r"""WordTokenizer: words, numbers and punctuation marks as tokens, vocabulary by frequency.

The split is one regular expression, tried left to right at each position (spaces are dropped)::

    [^\W\d_]+?(?=n't\b) | n't        English "not" clitic: don't -> do n't, can't -> ca n't
    '(?:s|re|ve|m|ll|d)\b           other clitics: it's -> it 's, we'll -> we 'll
    [^\W\d_]+(?:'[^\W\d_]+)*       a word: letters of any script, inner apostrophes that are
                                   not clitics kept (l'été, rock'n'roll stay one token)
    \d+(?:[.,]\d+)*                a number, with inner "." or "," (3.14, 1,000)
    \S                             any other single character: punctuation, symbols, emoji

    "The film's 2.5 hours didn't drag!"
        -> ["the", "film", "'s", "2.5", "hours", "did", "n't", "drag", "!"]

Clitics are split as the Penn Treebank (and so GloVe's vocabulary) splits them, which lets
``glove_embedding_matrix`` find "n't" and "'s"; the apostrophe may be ' or ’ and the clitics match
in any case.

The vocabulary: the special tokens, then the words by decreasing frequency, ties broken
alphabetically (so training is deterministic), keeping words seen at least ``min_freq`` times
and at most ``max_size`` tokens in all (special tokens included).

Deviation: decoding joins tokens with single spaces, so it does not restore the original spacing
or case ("did n't drag !"); use CharTokenizer or BPETokenizer where an exact round trip matters.
"""

import re
from collections import Counter

from minitransformer.data.tokenizer import (
    N_SPECIAL,
    SPECIAL_TOKENS,
    UNK_ID,
    Tokenizer,
    as_texts,
    field,
    regex_field,
    register_kind,
)

__all__ = ["WORD_PATTERN", "WordTokenizer"]

_CLITIC = r"['’](?i:s|re|ve|m|ll|d)\b"
WORD_PATTERN = (
    r"[^\W\d_]+?(?=(?i:n['’]t)\b)|(?i:n['’]t)\b"  # do|n't
    rf"|{_CLITIC}"  # 's 're 've 'm 'll 'd
    rf"|[^\W\d_]+(?:(?!{_CLITIC})['’][^\W\d_]+)*"  # a word, with non-clitic inner apostrophes
    r"|\d+(?:[.,]\d+)*"  # a number
    r"|\S"  # any other character
)


@register_kind
class WordTokenizer(Tokenizer):
    """Words <-> ids, with an optional lower-casing step before the split.

    >>> tokenizer = WordTokenizer.train(["A good film.", "A bad film!"])
    >>> tokenizer.encode("A good, good film")
    [7, 12, 1, 12, 8]
    >>> tokenizer.decode([7, 12, 1, 12, 8])
    'a good <unk> good film'
    """

    kind = "word"
    FIELDS = ("words", "lowercase", "pattern")

    def __init__(self, words, lowercase=True, pattern=WORD_PATTERN):
        words = list(words)
        if len(set(words)) != len(words):
            raise ValueError("WordTokenizer: the word list has duplicates")
        clash = set(words) & set(SPECIAL_TOKENS)
        if clash:
            raise ValueError(f"WordTokenizer: words {sorted(clash)} are special tokens")
        self.words = words
        self.lowercase = bool(lowercase)
        self.pattern = pattern
        self._regex = re.compile(pattern)
        self._ids = {w: N_SPECIAL + i for i, w in enumerate(words)}

    @classmethod
    def train(cls, texts, min_freq=1, max_size=None, lowercase=True, pattern=WORD_PATTERN):
        """Count the words of ``texts`` and keep the frequent ones.

        min_freq: keep words seen at least this often.
        max_size: the largest vocabulary, special tokens included (None: no limit).
        """
        if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
            raise ValueError(f"WordTokenizer.train: min_freq must be an int >= 1, got {min_freq!r}")
        if max_size is not None and (not isinstance(max_size, int) or max_size < N_SPECIAL):
            raise ValueError(f"WordTokenizer.train: max_size must be None or an int >= "
                             f"{N_SPECIAL} (the special tokens count), got {max_size!r}")
        splitter = cls([], lowercase, pattern)
        counts = Counter()
        for text in as_texts(texts, "WordTokenizer.train"):
            counts.update(splitter.tokenize(text))
        for special in SPECIAL_TOKENS:
            counts.pop(special, None)
        ranked = sorted((w for w, c in counts.items() if c >= min_freq),
                        key=lambda w: (-counts[w], w))
        if max_size is not None:
            ranked = ranked[:max_size - N_SPECIAL]
        return cls(ranked, lowercase, pattern)

    @property
    def vocab_size(self):
        return N_SPECIAL + len(self.words)

    def tokenize(self, text):
        """text -> list of token strings (lower-cased if the tokenizer lower-cases)."""
        if not isinstance(text, str):
            raise TypeError(f"WordTokenizer.encode: expected a str, got {type(text).__name__}")
        if self.lowercase:
            text = text.lower()
        return self._regex.findall(text)

    def encode(self, text):
        ids = self._ids
        return [ids.get(w, UNK_ID) for w in self.tokenize(text)]

    def token_to_id(self, token):
        """The id of ``token`` (``<unk>``'s id when it is not in the vocabulary)."""
        if token in SPECIAL_TOKENS:
            return SPECIAL_TOKENS.index(token)
        return self._ids.get(token, UNK_ID)

    def _token_text(self, token_id):
        return self.words[token_id - N_SPECIAL]

    def _join(self, pieces):
        return " ".join(pieces)

    def _config(self):
        return {"lowercase": self.lowercase, "pattern": self.pattern, "words": self.words}

    @classmethod
    def _from_config(cls, config, source):
        return cls(field(config, "words", list, str), field(config, "lowercase", bool),
                   regex_field(config, "pattern"))
