"""CharTokenizer: one token per Unicode character.

The vocabulary is the special tokens followed by every character seen in training, in code point
order. Any text made of those characters round-trips exactly: ``decode(encode(text)) == text``.
Characters never seen in training become ``<unk>``.
"""

from minitransformer.data.tokenizer import (
    N_SPECIAL,
    SPECIAL_TOKENS,
    UNK_ID,
    Tokenizer,
    as_texts,
    field,
    register_kind,
)

__all__ = ["CharTokenizer"]


@register_kind
class CharTokenizer(Tokenizer):
    """Characters <-> ids.

    >>> tokenizer = CharTokenizer.train(["hello"])
    >>> tokenizer.encode("hole")
    [8, 10, 9, 7]
    >>> tokenizer.decode([8, 10, 9, 7])
    'hole'
    """

    kind = "char"
    FIELDS = ("chars",)

    def __init__(self, chars):
        chars = list(chars)
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError("CharTokenizer: chars must be distinct single characters")
        self.chars = chars
        self._ids = {c: N_SPECIAL + i for i, c in enumerate(chars)}

    @classmethod
    def train(cls, texts):
        """The vocabulary of all characters in ``texts`` (a string or an iterable of strings)."""
        seen = set()
        for text in as_texts(texts, "CharTokenizer.train"):
            seen.update(text)
        return cls(sorted(seen))

    @property
    def vocab_size(self):
        return N_SPECIAL + len(self.chars)

    def encode(self, text):
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer.encode: expected a str, got {type(text).__name__}")
        ids = self._ids
        return [ids.get(c, UNK_ID) for c in text]

    def token_to_id(self, token):
        """The id of a character or special token (``<unk>``'s id when unknown)."""
        if token in SPECIAL_TOKENS:
            return SPECIAL_TOKENS.index(token)
        return self._ids.get(token, UNK_ID)

    def _token_text(self, token_id):
        return self.chars[token_id - N_SPECIAL]

    def _config(self):
        return {"chars": "".join(self.chars)}

    @classmethod
    def _from_config(cls, config, source):
        return cls(field(config, "chars", str))
