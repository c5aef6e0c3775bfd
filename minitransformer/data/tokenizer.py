"""What every tokenizer shares: the special tokens and their fixed ids, ``vocab_size``,
``encode``/``decode``, and saving to (and loading from) a JSON file.

The special tokens have the same ids in every tokenizer, so batching code and models can name them
without asking which tokenizer made the ids:

    id  token    used for
    0   <pad>    padding a batch to one length (masked out of attention and losses)
    1   <unk>    a token the vocabulary lacks (word and char tokenizers; byte-level BPE needs none)
    2   <bos>    beginning of sequence: the decoder's first input
    3   <eos>    end of sequence: the decoder's last target
    4   <cls>    the classification position (BERT)
    5   <sep>    separates two segments
    6   <mask>   a token hidden for masked-LM pretraining

``encode`` never adds special tokens (the batching code does); ``decode`` writes them as their
text, or leaves them out with ``skip_special=True``.
"""

import json
import re
from pathlib import Path

from minitransformer.data.errors import DataFormatError

__all__ = [
    "BOS_ID",
    "CLS_ID",
    "EOS_ID",
    "MASK_ID",
    "N_SPECIAL",
    "PAD_ID",
    "SEP_ID",
    "SPECIAL_TOKENS",
    "Tokenizer",
    "UNK_ID",
    "load_tokenizer",
]

SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>", "<cls>", "<sep>", "<mask>")
PAD_ID, UNK_ID, BOS_ID, EOS_ID, CLS_ID, SEP_ID, MASK_ID = range(len(SPECIAL_TOKENS))
N_SPECIAL = len(SPECIAL_TOKENS)  # ids below N_SPECIAL are special

FORMAT_VERSION = 1


def as_texts(texts, function):
    """``texts`` as a list of strings: one string, or an iterable of strings."""
    if isinstance(texts, str):
        return [texts]
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(
            f"{function}: expected a string or an iterable of strings, got {type(texts).__name__}"
        ) from None
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{function}: texts[{index}] is a {type(text).__name__}, not a str")
    return texts


def as_id_list(ids, function):
    """``ids`` (a list of ints, a 1-D Tensor or array) as a list of Python ints."""
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    ids = list(ids)
    for index, value in enumerate(ids):
        if isinstance(value, (list, tuple)):
            raise TypeError(f"{function}: expected one sequence of ids, got a nested list at "
                            f"position {index} (decode each row separately)")
    return [int(value) for value in ids]


class Tokenizer:
    """Base class: a vocabulary of ``vocab_size`` tokens whose first ids are SPECIAL_TOKENS.

    Subclasses implement ``encode``, ``_token_text`` and the JSON fields (``_config`` and
    ``_from_config``), and set ``kind``, the name stored in the JSON file.
    """

    kind = None

    @property
    def vocab_size(self):
        raise NotImplementedError

    def encode(self, text):
        """text -> list of token ids (no special tokens added)."""
        raise NotImplementedError

    def encode_batch(self, texts):
        """A list of texts -> a list of id lists."""
        return [self.encode(text) for text in as_texts(texts, f"{type(self).__name__}.encode")]

    def _token_text(self, token_id):
        """The text of one non-special token (for decode)."""
        raise NotImplementedError

    def _join(self, pieces):
        """Join the decoded pieces into one string."""
        return "".join(pieces)

    def decode(self, ids, skip_special=False):
        """list of ids (or a 1-D Tensor) -> text. Special tokens appear as ``<pad>`` etc.,
        or not at all with ``skip_special=True``."""
        name = f"{type(self).__name__}.decode"
        pieces = []
        for token_id in as_id_list(ids, name):
            if not 0 <= token_id < self.vocab_size:
                raise ValueError(f"{name}: id {token_id} is outside the vocabulary "
                                 f"(ids run from 0 to {self.vocab_size - 1})")
            if token_id < N_SPECIAL:
                if not skip_special:
                    pieces.append(SPECIAL_TOKENS[token_id])
            else:
                pieces.append(self._token_text(token_id))
        return self._join(pieces)

    def id_to_token(self, token_id):
        """The token with this id, as text (special tokens as ``<pad>`` etc.)."""
        if not 0 <= token_id < self.vocab_size:
            raise ValueError(f"{type(self).__name__}.id_to_token: id {token_id} is outside the "
                             f"vocabulary of {self.vocab_size} tokens")
        if token_id < N_SPECIAL:
            return SPECIAL_TOKENS[token_id]
        return self._token_text(token_id)

    # ----------------------------------------------------------------------- JSON

    def _config(self):
        raise NotImplementedError

    @classmethod
    def _from_config(cls, config, source):
        raise NotImplementedError

    def to_dict(self):
        """The tokenizer as a JSON-able dict (what ``save`` writes; e.g. to store in a
        checkpoint). ``from_dict`` reads it back."""
        return {"type": self.kind, "version": FORMAT_VERSION,
                "special_tokens": list(SPECIAL_TOKENS), **self._config()}

    @classmethod
    def from_dict(cls, data, source="dict", function=None):
        """The tokenizer ``to_dict`` described; on the base class, of the kind ``data`` names.
        ``source`` names where the dict came from (a file, "checkpoint"), in error messages."""
        name = function or f"{cls.__name__}.from_dict"
        if not isinstance(data, dict):
            raise DataFormatError(f"{name}: {source} holds a {type(data).__name__}, not a "
                                  "tokenizer dict")
        kind = data.get("type")
        target = _KINDS.get(kind) if isinstance(kind, str) else None
        if target is None:
            raise DataFormatError(f"{name}: {source} holds no tokenizer type this library knows "
                                  f"(type {kind!r}; expected one of {sorted(_KINDS)})")
        if cls is not Tokenizer and target is not cls:
            raise DataFormatError(f"{name}: {source} holds a {target.__name__}, not a "
                                  f"{cls.__name__}; use {target.__name__} or load_tokenizer")
        if data.get("version") != FORMAT_VERSION:
            raise DataFormatError(f"{name}: {source} has format version {data.get('version')!r}; "
                                  f"this library reads version {FORMAT_VERSION}")
        if data.get("special_tokens") != list(SPECIAL_TOKENS):
            raise DataFormatError(f"{name}: {source} has special tokens "
                                  f"{data.get('special_tokens')}, expected {list(SPECIAL_TOKENS)}")
        try:
            return target._from_config(data, source=source)
        except KeyError as error:
            raise DataFormatError(f"{name}: {source} has no field {error} (a {target.__name__} "
                                  f"needs {', '.join(target.FIELDS)})") from None
        except (TypeError, ValueError) as error:
            raise DataFormatError(f"{name}: {source} is malformed: {error}") from None

    def save(self, path):
        """Write the tokenizer to ``path`` as JSON (UTF-8)."""
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path):
        """Read a tokenizer saved by ``save``. On the base class, returns the saved kind."""
        name = f"{cls.__name__}.load"
        return cls.from_dict(_read_json(path, name), source=str(path), function=name)

    def __eq__(self, other):
        return type(self) is type(other) and self._config() == other._config()

    __hash__ = None

    def __repr__(self):
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


_KINDS = {}


def field(config, key, kind, item=None):
    """``config[key]`` checked to be a ``kind`` (a bool is not an int here), each element an
    ``item`` when given; "pattern"-like fields are checked by ``regex_field``. KeyError when
    missing, TypeError when of another type: ``from_dict`` turns both into one clear line."""
    value = config[key]

    def fits(x, kind):
        return isinstance(x, kind) and (kind is bool or not isinstance(x, bool))

    if not fits(value, kind):
        raise TypeError(f"field {key!r} should be a {kind.__name__}, got "
                        f"{type(value).__name__}")
    for element in value if item is not None else ():
        if not fits(element, item):
            raise TypeError(f"field {key!r} should hold {item.__name__} values, got a "
                            f"{type(element).__name__} ({element!r})")
    return value


def regex_field(config, key):
    """``config[key]``: a string that compiles as a regular expression."""
    pattern = field(config, key, str)
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"field {key!r} is not a regular expression ({error})") from None
    return pattern


def register_kind(cls):
    """Class decorator: lets ``Tokenizer.load`` and ``load_tokenizer`` find ``cls`` by its kind."""
    _KINDS[cls.kind] = cls
    return cls


def load_tokenizer(path):
    """Load any tokenizer saved by ``save`` (its kind is read from the file)."""
    return Tokenizer.load(path)


def _read_json(path, function):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{function}: no file {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataFormatError(f"{function}: {path} is not a JSON tokenizer file ({error})") \
            from None
