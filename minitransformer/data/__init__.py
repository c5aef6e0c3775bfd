"""Data: tokenizers, readers for real formats, batches for the models, built-in data, downloads.

Read in this order:
- tokenizer (special tokens and their fixed ids, the shared interface), char, word, bpe;
- text_io (plain and gzip text, the UTF-8 policy), imdb, glove, parallel (Multi30k);
- batches (padding, causal-LM blocks, classification and seq2seq batches), masking (BERT's masked
  LM, T5's span corruption), loader (shuffling, length bucketing, drop_last);
- builtin (copy and reverse tasks, the text world), download (fetching the real data sets).
"""

from minitransformer.data.batches import (
    IGNORE_INDEX,
    ClassificationBatch,
    LMBatch,
    Seq2SeqBatch,
    causal_lm_blocks,
    collate_causal_lm,
    collate_classification,
    collate_seq2seq,
    pad_sequences,
)
from minitransformer.data.bpe import BPETokenizer
from minitransformer.data.builtin import TextWorld, copy_task, reverse_task, text_world
from minitransformer.data.char import CharTokenizer
from minitransformer.data.errors import ChecksumError, DataFormatError
from minitransformer.data.glove import GloveCoverage, glove_embedding_matrix, load_glove
from minitransformer.data.imdb import load_imdb
from minitransformer.data.loader import DataLoader, batch_indices
from minitransformer.data.masking import (
    MaskedLMBatch,
    MaskedLMCollator,
    SpanCorruptionCollator,
    corrupt_spans,
    mask_tokens,
)
from minitransformer.data.parallel import load_multi30k, read_parallel
from minitransformer.data.text_io import read_lines, read_text
from minitransformer.data.tokenizer import (
    BOS_ID,
    CLS_ID,
    EOS_ID,
    MASK_ID,
    N_SPECIAL,
    PAD_ID,
    SEP_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    Tokenizer,
    load_tokenizer,
)
from minitransformer.data.word import WordTokenizer

__all__ = [
    "BOS_ID", "BPETokenizer", "batch_indices", "causal_lm_blocks", "CharTokenizer",
    "ChecksumError", "ClassificationBatch", "CLS_ID", "collate_causal_lm",
    "collate_classification", "collate_seq2seq", "copy_task", "corrupt_spans", "DataFormatError",
    "DataLoader", "EOS_ID", "glove_embedding_matrix", "GloveCoverage", "IGNORE_INDEX",
    "LMBatch", "load_glove", "load_imdb", "load_multi30k", "load_tokenizer", "MASK_ID",
    "mask_tokens", "MaskedLMBatch", "MaskedLMCollator", "N_SPECIAL", "pad_sequences", "PAD_ID",
    "read_lines", "read_parallel", "read_text", "reverse_task", "SEP_ID", "Seq2SeqBatch",
    "SpanCorruptionCollator", "SPECIAL_TOKENS", "text_world", "TextWorld", "Tokenizer",
    "UNK_ID", "WordTokenizer",
]
