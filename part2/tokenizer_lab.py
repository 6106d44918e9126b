"""Logic of the tokenizer lab: loading, vocabulary statistics, round trips, byte-level BPE, chat
markers and the analysis of a student ID. The notebook part2/Tokenizer_Lab.ipynb imports these
functions and shows, prints and plots their results.

The tokenizer is the Qwen3 one from part2/tokenizer/ (written by `python -m part2.download`), from
the directory in the TOKENIZER_DIR environment variable, or from an explicit path.
"""
from __future__ import annotations

import functools
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, pre_tokenizers

from part2.local_bpe import corpus_description, local_corpus, train_byte_level_bpe
from tools.student import EXAMPLE_FILE, load_student_info

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TOKENIZER_DIR = REPO_ROOT / "part2" / "tokenizer"
TOKENIZER_DIR_ENV = "TOKENIZER_DIR"
DOWNLOAD_COMMAND = "python -m part2.download"
SMOKE_SETTINGS_FILE = "smoke_tokenizer_settings.json"
ID_ANALYSIS_FILE = "id_analysis.json"
# The notebook writes ID_ANALYSIS_FILE into this directory when the variable is set.
OUTPUT_DIR_ENV = "TOKENIZER_LAB_OUTPUT_DIR"
# The runner's --student-id reaches the notebook through this variable, which takes precedence
# over STUDENT_ID.
STUDENT_ID_OPTION_ENV = "TOKENIZER_LAB_STUDENT_ID"

# Rows of Qwen3-0.6B's token embedding (vocab_size in its config.json), larger than the tokenizer.
QWEN3_EMBEDDING_ROWS = 151936
QWEN3_BASE_VOCAB_SIZE = 151643
QWEN3_THINK_ID = 151667
# Embedding matrices are commonly padded to a multiple of this for GPU matrix-multiply tiles.
EMBEDDING_PAD_MULTIPLE = 128

SAMPLE_TEXTS = {
    "english": "The quick brown fox jumps over the lazy dog. Tokenizers don't see words, they see bytes.",
    "code": "def add(a, b):\n    return a + b  # 42\n\nprint(add(3, 4))\n",
    "chinese": "我的学号是一个数字。语言模型把文本切分成词元。",
    "emoji": "Great job! 🎉👍🏽 👩‍💻 ❤️",
    "whitespace": "two  spaces,\ttab,\r\nwindows newline,\u00a0no-break space, trailing   ",
    "numbers": "In 2024 the price rose from 1,999.99 to 12345678 (+3.5%).",
    # "e" followed by a combining acute accent: NFC normalization turns it into one code point.
    "decomposed_accent": "cafe\u0301 re\u0301sume\u0301",
}
# General English written for this lab, outside the Python-documentation corpus of local_bpe.
OUT_OF_DOMAIN_ENGLISH = (
    "Every morning the baker opened the shop before sunrise. Neighbours queued for warm bread, "
    "and children pressed their faces against the window to watch the loaves come out of the oven. "
    "In winter she sold soup as well, and on Fridays a small band played in the square outside."
)
CONTEXT_TEMPLATES = ("{id}", " {id}", "My student ID is {id}.", "ID:{id}", "#{id}", "({id})",
                     "Student {id} passed.")
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


class TokenizerNotFoundError(FileNotFoundError):
    """Missing tokenizer directory or tokenizer files, with the command that downloads them."""



def resolve_tokenizer_dir(path: str | os.PathLike | None = None) -> Path:
    """Return the tokenizer directory: `path`, else $TOKENIZER_DIR, else part2/tokenizer/.

    Raises TokenizerNotFoundError when the directory or its tokenizer.json is missing.
    """
    if path:
        directory, origin = Path(path), "the given path"
    elif os.environ.get(TOKENIZER_DIR_ENV):
        directory, origin = Path(os.environ[TOKENIZER_DIR_ENV]), f"${TOKENIZER_DIR_ENV}"
    else:
        directory, origin = DEFAULT_TOKENIZER_DIR, "the default location"

    if not directory.is_dir():
        problem = f"tokenizer directory {directory} ({origin}) not found"
    elif not (directory / "tokenizer.json").is_file():
        problem = f"tokenizer directory {directory} ({origin}) has no tokenizer.json"
    else:
        return directory
    raise TokenizerNotFoundError(
        f"{problem}; run `{DOWNLOAD_COMMAND}` to write part2/tokenizer/, or point "
        f"{TOKENIZER_DIR_ENV} or --tokenizer-dir at a directory with the tokenizer files")


def load_tokenizer(path: str | os.PathLike | None = None):
    """Load the tokenizer with transformers' AutoTokenizer from resolve_tokenizer_dir(path)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_tokenizer_dir(path))


def describe_tokenizer(tokenizer, directory: str | os.PathLike) -> dict[str, Any]:
    """Summarize which tokenizer was used: its directory, class, sizes and kind."""
    directory = Path(directory)
    if (directory / SMOKE_SETTINGS_FILE).is_file():
        kind = "smoke (offline byte-level BPE from part2.smoke_tokenizer, not Qwen3)"
    elif (tokenizer.vocab_size == QWEN3_BASE_VOCAB_SIZE
          and tokenizer.convert_tokens_to_ids("<think>") == QWEN3_THINK_ID):
        kind = "Qwen3"
    else:
        kind = "other"
    return {"directory": str(directory.resolve()), "class": type(tokenizer).__name__,
            "kind": kind, "base_vocab_size": tokenizer.vocab_size, "total_tokens": len(tokenizer)}



def byte_to_unicode() -> dict[int, str]:
    """Map every byte to the printable character that byte-level BPE uses for it (GPT-2's scheme).

    Printable Latin-1 bytes stand for themselves. The other 68 (controls, space, DEL, no-break
    space, soft hyphen) take the code points 256, 257, ... in byte order, so the space 0x20 is
    "Ġ" (U+0120) and the newline 0x0A is "Ċ" (U+010A). tokenizers has the same table inside its
    ByteLevel pre-tokenizer but does not expose it; the tests compare the two.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    mapping = {byte: chr(byte) for byte in printable}
    shifted = 0
    for byte in range(256):
        if byte not in mapping:
            mapping[byte] = chr(256 + shifted)
            shifted += 1
    return dict(sorted(mapping.items()))


@functools.lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    return {char: byte for byte, char in byte_to_unicode().items()}


def token_to_bytes(token: str) -> bytes:
    """Return the raw bytes behind a byte-level BPE token string such as 'Ġthe'."""
    unicode_to_byte = _unicode_to_byte()
    return bytes(unicode_to_byte[char] for char in token)


def vocab_statistics(tokenizer, embedding_rows: int | None = QWEN3_EMBEDDING_ROWS) -> dict[str, Any]:
    """Count the base and added tokens, the token lengths in bytes and the embedding padding.

    `embedding_rows` is the model's embedding size; pass None when it is not the Qwen3 model's.
    """
    base_vocab = {token: index for token, index in tokenizer.get_vocab().items()
                  if index < tokenizer.vocab_size}
    byte_lengths = [len(token_to_bytes(token)) for token in base_vocab]
    total = len(tokenizer)
    stats: dict[str, Any] = {
        "base_vocab_size": tokenizer.vocab_size,
        "added_tokens": total - tokenizer.vocab_size,
        "total_tokens": total,
        "byte_lengths": byte_lengths,
        "max_token_bytes": max(byte_lengths),
        "space_prefixed_tokens": sum(token.startswith("Ġ") for token in base_vocab),
        "digit_only_tokens": sorted(token for token in base_vocab if token.isascii() and token.isdecimal()),
    }
    if embedding_rows is not None and embedding_rows >= total:
        multiple = EMBEDDING_PAD_MULTIPLE
        stats.update({
            "embedding_rows": embedding_rows,
            "padding_rows": embedding_rows - total,
            "embedding_rows_multiple_of_128": embedding_rows % multiple == 0,
            "smallest_multiple_of_128": -(-total // multiple) * multiple,
        })
    return stats


def special_token_table(tokenizer) -> list[dict[str, Any]]:
    """List the added tokens in id order with their content and their "special" flag."""
    return [{"id": index, "token": added.content, "special": bool(added.special)}
            for index, added in sorted(tokenizer.added_tokens_decoder.items())]



def encode_ids(tokenizer, text: str) -> list[int]:
    """Encode without special tokens, for a transformers tokenizer or a tokenizers.Tokenizer."""
    if isinstance(tokenizer, Tokenizer):
        return tokenizer.encode(text, add_special_tokens=False).ids
    return tokenizer.encode(text, add_special_tokens=False)


def ids_to_tokens(tokenizer, ids: list[int]) -> list[str]:
    """Return the vocabulary strings of `ids`, for either kind of tokenizer."""
    if isinstance(tokenizer, Tokenizer):
        return [tokenizer.id_to_token(index) for index in ids]
    return tokenizer.convert_ids_to_tokens(ids)


def decode_ids(tokenizer, ids: list[int]) -> str:
    if isinstance(tokenizer, Tokenizer):
        return tokenizer.decode(ids, skip_special_tokens=False)
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def token_pieces(tokenizer, ids: list[int]) -> list[str]:
    """Decode each id on its own. A piece is '\\ufffd' when its token contains only part of a
    multi-byte character."""
    return [decode_ids(tokenizer, [index]) for index in ids]


def round_trip(tokenizer, text: str) -> dict[str, Any]:
    """Encode and decode `text` and report whether the decoded text is identical."""
    ids = encode_ids(tokenizer, text)
    decoded = decode_ids(tokenizer, ids)
    return {
        "text": text,
        "ids": ids,
        "tokens": ids_to_tokens(tokenizer, ids),
        "decoded": decoded,
        "identical": decoded == text,
        "identical_after_nfc": decoded == unicodedata.normalize("NFC", text),
        "characters": len(text),
        "utf8_bytes": len(text.encode("utf-8")),
        "token_count": len(ids),
    }


def pre_tokenize(tokenizer, text: str) -> list[tuple[str, str]]:
    """Split `text` with the tokenizer's normalizer and pre-tokenizer, before any BPE merge.

    Returns (byte-level piece, the text it covers) pairs.
    """
    backend = tokenizer.backend_tokenizer if not isinstance(tokenizer, Tokenizer) else tokenizer
    normalized = backend.normalizer.normalize_str(text) if backend.normalizer else text
    pieces = backend.pre_tokenizer.pre_tokenize_str(normalized)
    return [(piece, normalized[start:end]) for piece, (start, end) in pieces]


def byte_level_alphabet_matches_library() -> bool:
    """Check byte_to_unicode() against the alphabet of tokenizers' ByteLevel pre-tokenizer."""
    return set(byte_to_unicode().values()) == set(pre_tokenizers.ByteLevel.alphabet())



def chat_template_examples(tokenizer, messages: list[dict[str, str]]) -> dict[str, dict[str, Any]]:
    """Render the chat template with thinking on and off; return each prompt's text and ids."""
    examples = {}
    for name, enable_thinking in (("thinking_on", True), ("thinking_off", False)):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                             enable_thinking=enable_thinking)
        ids = encode_ids(tokenizer, text)
        examples[name] = {"text": text, "ids": ids, "tokens": ids_to_tokens(tokenizer, ids)}
    return examples



@dataclass
class StudentIdChoice:
    student_id: str
    source: str
    is_example: bool  # True when no ID is configured and student.example.toml's value is used


def resolve_student_id(explicit: str | None = None) -> StudentIdChoice:
    """Pick the ID to analyse: `explicit`, else $TOKENIZER_LAB_STUDENT_ID (the runner's
    --student-id), else STUDENT_ID or student.toml via load_student_info().

    Falls back to the example value of student.example.toml, marked as an example.
    """
    if explicit is not None and explicit.strip():
        return StudentIdChoice(explicit.strip(), "argument", False)
    if os.environ.get(STUDENT_ID_OPTION_ENV, "").strip():
        return StudentIdChoice(os.environ[STUDENT_ID_OPTION_ENV].strip(), "--student-id", False)
    info = load_student_info()
    student_id = info.student_id.strip()
    if not student_id:
        raise ValueError(f"student_id is empty in {info.source}; set it there or export STUDENT_ID")
    source = "example value from " + EXAMPLE_FILE.name if info.is_example else info.source
    return StudentIdChoice(student_id, source, info.is_example)


def analyze_id(tokenizer, student_id: str) -> dict[str, Any]:
    """Tokenize the ID alone; return its token count, ids, token strings and digit statistics."""
    ids = encode_ids(tokenizer, student_id)
    tokens = ids_to_tokens(tokenizer, ids)
    digit_count = sum(char.isdecimal() for char in student_id)
    single_digit_tokens = sum(len(token) == 1 and token.isdecimal() for token in tokens)
    return {
        "student_id": student_id,
        "token_count": len(ids),
        "ids": ids,
        "tokens": tokens,
        "pieces": token_pieces(tokenizer, ids),
        "characters": len(student_id),
        "digit_count": digit_count,
        "single_digit_tokens": single_digit_tokens,
        "one_token_per_digit": digit_count > 0 and single_digit_tokens == digit_count,
    }


def id_in_context(tokenizer, student_id: str,
                  templates: tuple[str, ...] = CONTEXT_TEMPLATES) -> list[dict[str, Any]]:
    """Tokenize the ID inside short contexts and list the tokens that overlap the ID's characters.

    Uses the offset mapping of the transformers tokenizer, so `tokenizer` must be one.
    """
    alone = encode_ids(tokenizer, student_id)
    rows = []
    for template in templates:
        text = template.format(id=student_id)
        start = text.index(student_id)
        end = start + len(student_id)
        encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        id_ids = [index for index, (left, right) in zip(encoding["input_ids"], encoding["offset_mapping"])
                  if left < end and right > start]
        rows.append({
            "context": template,
            "text": text,
            "total_tokens": len(encoding["input_ids"]),
            "id_tokens": ids_to_tokens(tokenizer, id_ids),
            "id_token_count": len(id_ids),
            "same_as_alone": id_ids == alone,
        })
    return rows


def id_formats(student_id: str) -> dict[str, str]:
    """Write the ID in other formats: grouped with dashes or spaces, digit by digit, spelled out."""
    compact = student_id.replace("-", "").replace(" ", "")
    groups = [compact[index:index + 4] for index in range(0, len(compact), 4)]
    spelled = [DIGIT_WORDS[int(char)] if char.isdecimal() else char for char in compact]
    formats = {
        "plain": compact,
        "dashes": "-".join(groups),
        "spaces": " ".join(groups),
        "digit by digit": " ".join(compact),
        "spelled out": " ".join(spelled),
    }
    if compact.isdecimal():
        formats["thousands separators"] = f"{int(compact):,}"
    return formats


def compare_id_formats(tokenizer, student_id: str) -> list[dict[str, Any]]:
    """Tokenize every format of id_formats() and return token counts and token strings."""
    rows = []
    for name, text in id_formats(student_id).items():
        ids = encode_ids(tokenizer, text)
        rows.append({"format": name, "text": text, "token_count": len(ids),
                     "tokens": ids_to_tokens(tokenizer, ids)})
    return rows



def train_scratch_bpe(vocab_size: int, split_digits: bool = True) -> Tokenizer:
    """Train a byte-level BPE on the training split of the local corpus.

    split_digits=True uses Qwen3's pre-tokenizer, False GPT-2's, which keeps digit runs together.
    """
    return train_byte_level_bpe(local_corpus("train"), vocab_size, split_digits)


def evaluation_texts() -> dict[str, str]:
    """Return the texts for the fertility comparison, none of them in the BPE training split."""
    return {
        "Python docs (held out)": "\n".join(local_corpus("held_out")),
        "general English": OUT_OF_DOMAIN_ENGLISH,
        "code": SAMPLE_TEXTS["code"],
        "Chinese": SAMPLE_TEXTS["chinese"],
    }


def fertility(tokenizer, text: str) -> dict[str, float]:
    """Measure tokens per whitespace-separated word and per character of `text`.

    Words are runs of non-space characters, which undercounts words in Chinese (no spaces).
    """
    token_count = len(encode_ids(tokenizer, text))
    words = len(text.split())
    return {
        "tokens": token_count,
        "words": words,
        "characters": len(text),
        "tokens_per_word": token_count / max(words, 1),
        "tokens_per_character": token_count / max(len(text), 1),
    }


def compare_fertility(tokenizers: dict[str, Any], texts: dict[str, str]) -> list[dict[str, Any]]:
    """Return one row per (tokenizer, text) with the fertility() measures."""
    return [{"tokenizer": tokenizer_name, "text": text_name, **fertility(tokenizer, text)}
            for tokenizer_name, tokenizer in tokenizers.items()
            for text_name, text in texts.items()]


def scratch_corpus_description() -> str:
    return corpus_description() + ", training split"



def id_analysis_record(tokenizer, tokenizer_dir: str | os.PathLike, choice: StudentIdChoice,
                       extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the id_analysis.json content with provenance and the run profile."""
    from tools.provenance import collect_provenance, run_profile

    analysis = analyze_id(tokenizer, choice.student_id)
    record = {
        "profile": run_profile(),
        "student_id": choice.student_id,
        "student_id_source": choice.source,
        "student_id_is_example": choice.is_example,
        "tokenizer": describe_tokenizer(tokenizer, tokenizer_dir),
        "token_count": analysis["token_count"],
        "ids": analysis["ids"],
        "tokens": analysis["tokens"],
        "pieces": analysis["pieces"],
        "digit_count": analysis["digit_count"],
        "one_token_per_digit": analysis["one_token_per_digit"],
        "contexts": id_in_context(tokenizer, choice.student_id),
        "formats": compare_id_formats(tokenizer, choice.student_id),
        **(extra or {}),
    }
    record["provenance"] = collect_provenance({"tokenizer_dir": str(tokenizer_dir),
                                               "student_id_source": choice.source})
    return record


def write_id_analysis(path: str | os.PathLike, record: dict[str, Any]) -> None:
    from tools.provenance import write_json_atomic

    write_json_atomic(path, record)
