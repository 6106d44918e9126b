"""Train a byte-level BPE tokenizer offline with the tokenizers library, on text shipped with Python.

The corpus is the interactive help text of the running interpreter, `pydoc_data.topics.topics`:
79 topics of the Python language reference, 78 distinct texts with about 465,000 characters of
English prose and code examples in CPython 3.11.7. It needs no download, so the smoke tokenizer and the tokenizer lab's
from-scratch comparison work in a fresh clone with no network.
"""
from __future__ import annotations

import sys

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

# The split pattern of the Qwen2/Qwen3 tokenizer.json pre-tokenizer (identical in both releases):
# English contractions, letter runs with one leading non-letter, single digits (\p{N} without "+",
# so every digit is its own pre-token), punctuation runs, newlines and other whitespace.
QWEN_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# One in this many corpus topics (in sorted order) is held out from training for evaluation.
HELD_OUT_EVERY = 5
CORPUS_SPLITS = ("all", "train", "held_out")


def corpus_description() -> str:
    """Return a one-line description of the local corpus, for notebooks and settings files."""
    version = ".".join(str(part) for part in sys.version_info[:3])
    return f"pydoc_data.topics of CPython {version} (the Python language reference, English)"


def local_corpus(split: str = "all") -> list[str]:
    """Return the corpus documents of one split: 'all', 'train' or 'held_out'.

    Topics are sorted by name and every HELD_OUT_EVERY-th distinct text, starting with the
    first, is held out.
    """
    if split not in CORPUS_SPLITS:
        raise ValueError(f"corpus split {split!r} is invalid; use one of {', '.join(CORPUS_SPLITS)}")
    from pydoc_data.topics import topics

    # Some topic names share one text; keeping the first copy keeps the splits disjoint.
    unique_texts = list(dict.fromkeys(topics[name] for name in sorted(topics)))
    documents = []
    for index, text in enumerate(unique_texts):
        held_out = index % HELD_OUT_EVERY == 0
        if split == "all" or (split == "held_out") == held_out:
            documents.append(text)
    return documents


def byte_level_pre_tokenizer(split_digits: bool = True) -> pre_tokenizers.PreTokenizer:
    """Build Qwen3's pre-tokenizer: the regex split, then bytes mapped to printable characters.

    With split_digits=False it is GPT-2's byte-level pre-tokenizer instead, whose pattern keeps a
    run of digits together (" ?\\p{N}+"), so BPE can learn multi-digit tokens.
    """
    if not split_digits:
        return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT_PATTERN), behavior="isolated", invert=False),
        # use_regex=False because the split above already replaced GPT-2's own pattern.
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])


def train_byte_level_bpe(texts: list[str], vocab_size: int, split_digits: bool = True) -> Tokenizer:
    """Train a byte-level BPE with Qwen3's normalizer, pre-tokenizer and decoder on `texts`.

    The 256 byte symbols are always in the vocabulary, so any string encodes without an unknown
    token. Raises ValueError when the corpus is too small to learn `vocab_size` tokens.
    """
    byte_alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size <= len(byte_alphabet):
        raise ValueError(f"vocab_size={vocab_size} is too small; a byte-level BPE needs more than "
                         f"{len(byte_alphabet)} tokens (one per byte) to learn any merge")

    tokenizer = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = byte_level_pre_tokenizer(split_digits)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=byte_alphabet,
                                  special_tokens=[], show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)

    if tokenizer.get_vocab_size() != vocab_size:
        raise ValueError(f"the corpus yields only {tokenizer.get_vocab_size()} tokens, fewer than "
                         f"vocab_size={vocab_size}; use a smaller vocab_size")
    return tokenizer
