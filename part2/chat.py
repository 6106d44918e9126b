"""Chat formatting, sampling defaults and reply decoding for Qwen3 generation.

The prompt of a chat comes from the tokenizer's own chat template through
`apply_chat_template(..., enable_thinking=...)`, never from a hand-written copy. Qwen3 answers a
thinking-mode prompt with `<think>reasoning</think>answer`. The functions here split a reply at the
first `</think>` token, both for a finished reply and token by token while it streams. Both paths
use the same rule, so streamed and non-streamed output agree.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

END_OF_TURN_TOKEN = "<|im_end|>"    # 151645 in the Qwen3 vocabulary
END_OF_TEXT_TOKEN = "<|endoftext|>"  # 151643
THINK_START_TOKEN = "<think>"        # 151667
THINK_END_TOKEN = "</think>"         # 151668

# Qwen3's published sampling settings (Qwen3-0.6B model card, "Best Practices"). Completion mode
# uses the non-thinking ones, because a plain continuation has no reasoning phase.
QWEN3_SAMPLING = {
    True: {"temperature": 0.6, "top_p": 0.95, "top_k": 20},
    False: {"temperature": 0.7, "top_p": 0.8, "top_k": 20},
}


@dataclass
class SamplingSettings:
    """Decoding settings of one request, in the terms of RocLMForCausalLM.generate."""

    max_new_tokens: int
    do_sample: bool
    temperature: float
    top_p: float
    top_k: int
    repetition_penalty: float

    def describe(self) -> str:
        if not self.do_sample:
            text = "greedy"
        else:
            text = f"temperature {self.temperature:g}, top_p {self.top_p:g}, top_k {self.top_k}"
        return (f"{text}, repetition penalty {self.repetition_penalty:g}, "
                f"max {self.max_new_tokens} new tokens")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_sampling(thinking: bool, max_new_tokens: int, greedy: bool = False,
                     temperature: float | None = None, top_p: float | None = None,
                     top_k: int | None = None, repetition_penalty: float = 1.0) -> SamplingSettings:
    """Fill the sampling values the user left unset with Qwen3's defaults for the mode.

    A temperature of 0 means greedy decoding, as in RocLMForCausalLM.generate.
    """
    defaults = QWEN3_SAMPLING[thinking]
    temperature = defaults["temperature"] if temperature is None else temperature
    do_sample = not greedy and temperature > 0
    return SamplingSettings(
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        temperature=temperature if do_sample else 0.0,
        top_p=defaults["top_p"] if top_p is None else top_p,
        top_k=defaults["top_k"] if top_k is None else top_k,
        repetition_penalty=repetition_penalty,
    )


def load_tokenizer(tokenizer_dir: str | os.PathLike):
    """Load a tokenizer with transformers' AutoTokenizer from a local folder only."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)


def token_id(tokenizer, token: str) -> int | None:
    """Return the id of a special token, or None when the vocabulary lacks it."""
    ids = tokenizer.convert_tokens_to_ids([token])
    value = ids[0] if ids else None
    if value is None or value == tokenizer.unk_token_id:
        return None
    return int(value)


def stop_token_ids(tokenizer) -> list[int]:
    """Return the ids that end a reply: <|im_end|>, <|endoftext|> and the tokenizer's eos."""
    candidates = [token_id(tokenizer, END_OF_TURN_TOKEN), token_id(tokenizer, END_OF_TEXT_TOKEN),
                  tokenizer.eos_token_id]
    stops: list[int] = []
    for value in candidates:
        if value is not None and int(value) not in stops:
            stops.append(int(value))
    if not stops:
        raise ValueError(f"the tokenizer has none of {END_OF_TURN_TOKEN}, {END_OF_TEXT_TOKEN} or an "
                         "eos token, so generation could not stop; use a Qwen3 tokenizer")
    return stops


def chat_prompt_ids(tokenizer, messages: list[dict[str, str]], thinking: bool) -> list[int]:
    """Format `messages` with the tokenizer's chat template and return the prompt's token ids."""
    encoding = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                             enable_thinking=thinking, tokenize=True,
                                             return_dict=True)
    return list(encoding["input_ids"])


def chat_prompt_text(tokenizer, messages: list[dict[str, str]], thinking: bool) -> str:
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                         enable_thinking=thinking, tokenize=False)


def completion_prompt_ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text)["input_ids"])


@dataclass
class Reply:
    """A decoded reply: reasoning (empty without thinking) and answer, both stripped."""

    reasoning: str
    answer: str
    reasoning_finished: bool

    def history_content(self, thinking: bool) -> str:
        """Return the assistant message to keep in the chat history.

        The reasoning stays inside <think></think>, so the chat template itself drops it from
        earlier turns, as Qwen3's template does for every turn before the latest user message.
        """
        if thinking and self.reasoning_finished:
            return f"{THINK_START_TOKEN}\n{self.reasoning}\n{THINK_END_TOKEN}\n\n{self.answer}"
        return self.answer


def think_marker_ids(tokenizer) -> set[int]:
    """Return the ids of <think> and </think>. Qwen3 marks them as not special, so decode with
    skip_special_tokens=True would print them; the reply text leaves them out explicitly."""
    return {value for value in (token_id(tokenizer, THINK_START_TOKEN),
                                token_id(tokenizer, THINK_END_TOKEN)) if value is not None}


def decode_text(tokenizer, ids: list[int], hidden_ids: set[int] | frozenset[int] = frozenset()) -> str:
    """Decode ids without special tokens and without the ids in `hidden_ids`."""
    return tokenizer.decode([i for i in ids if i not in hidden_ids], skip_special_tokens=True)


def split_reply(tokenizer, new_ids: list[int], thinking: bool) -> Reply:
    """Split generated ids into reasoning and answer at the first </think> token.

    With thinking on, everything before </think> is reasoning; without a </think> the reasoning
    did not finish (usually --max-new-tokens ran out) and the answer is empty. With thinking off,
    every token belongs to the answer. Special tokens and think markers are left out of the text.
    """
    hidden = think_marker_ids(tokenizer)
    end_id = token_id(tokenizer, THINK_END_TOKEN)
    if not thinking:
        return Reply("", decode_text(tokenizer, new_ids, hidden).strip(), reasoning_finished=True)
    if end_id is None or end_id not in new_ids:
        return Reply(decode_text(tokenizer, new_ids, hidden).strip(), "", reasoning_finished=False)
    cut = new_ids.index(end_id)
    return Reply(decode_text(tokenizer, new_ids[:cut], hidden).strip(),
                 decode_text(tokenizer, new_ids[cut + 1:], hidden).strip(), reasoning_finished=True)


class IncrementalDecoder:
    """Turn token ids into text as they arrive, never printing half of a UTF-8 character.

    Byte-level BPE splits multi-byte characters across tokens. A decoded tail of U+FFFD means the
    character is still incomplete, so that text is held back until the next token completes it.
    The window restarts after each newline, which bounds the cost of re-decoding.
    """

    def __init__(self, tokenizer, hidden_ids: set[int] | frozenset[int] = frozenset()) -> None:
        self.tokenizer = tokenizer
        self.hidden_ids = hidden_ids
        self.ids: list[int] = []
        self.emitted = 0

    def add(self, token: int) -> str:
        if token in self.hidden_ids:
            return ""
        self.ids.append(token)
        text = decode_text(self.tokenizer, self.ids)
        if text.endswith("\ufffd"):
            return ""
        new_text = text[self.emitted:]
        if text.endswith("\n"):
            self.ids, self.emitted = [], 0
        else:
            self.emitted = len(text)
        return new_text

    def flush(self) -> str:
        text = decode_text(self.tokenizer, self.ids)[self.emitted:]
        self.ids, self.emitted = [], 0
        return text


REASONING_LABEL = "Reasoning:"
ANSWER_LABEL = "Answer:"


class ReplyPrinter:
    """Print a reply token by token under the labels 'Reasoning:' and 'Answer:'.

    It follows the same rule as split_reply: with thinking on, tokens before the first </think>
    are reasoning. Whitespace at the start and end of each part is dropped, as split_reply strips
    it, so the printed text equals format_reply(split_reply(...)).
    """

    def __init__(self, tokenizer, thinking: bool, stream: TextIO,
                 stop_ids: list[int] | tuple[int, ...] = ()) -> None:
        self.stream = stream
        self.stop_ids = set(stop_ids)
        self.think_end_id = token_id(tokenizer, THINK_END_TOKEN)
        self.decoder = IncrementalDecoder(tokenizer, think_marker_ids(tokenizer))
        self.in_reasoning = thinking
        self._start_part(REASONING_LABEL if thinking else ANSWER_LABEL)

    def _start_part(self, label: str) -> None:
        self.stream.write(label + "\n")
        self.stream.flush()
        self.part_started = False
        self.pending_whitespace = ""

    def _write(self, text: str) -> None:
        text = self.pending_whitespace + text
        if not self.part_started:
            text = text.lstrip()
        visible = text.rstrip()
        # trailing whitespace waits for more text, so the end of a part is never padded
        self.pending_whitespace = text[len(visible):]
        if visible:
            self.stream.write(visible)
            self.stream.flush()
            self.part_started = True

    def _end_part(self) -> None:
        self._write(self.decoder.flush())
        if self.part_started:
            self.stream.write("\n")

    def put(self, token: int) -> None:
        if token in self.stop_ids:
            return
        if self.in_reasoning and token == self.think_end_id:
            self._end_part()
            self.stream.write("\n")
            self._start_part(ANSWER_LABEL)
            self.in_reasoning = False
            return
        self._write(self.decoder.add(token))

    def end(self) -> None:
        self._end_part()
        if self.in_reasoning:
            self.stream.write("\n")
            self._start_part(ANSWER_LABEL)
            self.stream.write(UNFINISHED_REASONING_NOTE + "\n")
        self.stream.flush()


UNFINISHED_REASONING_NOTE = "(none: the reasoning did not finish within --max-new-tokens)"


def format_reply(reply: Reply, thinking: bool) -> str:
    """Return the labelled text that ReplyPrinter streams, for a finished reply."""
    lines = []
    if thinking:
        lines += [REASONING_LABEL, reply.reasoning, ""] if reply.reasoning else [REASONING_LABEL, ""]
    lines.append(ANSWER_LABEL)
    if thinking and not reply.reasoning_finished:
        lines.append(UNFINISHED_REASONING_NOTE)
    elif reply.answer:
        lines.append(reply.answer)
    return "\n".join(lines) + "\n"


def find_tokenizer_dir(explicit: str | os.PathLike | None, model_dir: Path,
                       fallback: Path, has_files: Callable[[Path], bool]) -> Path:
    """Choose the tokenizer folder: --tokenizer-dir, else the model folder (or the folder above a
    course ckpt/), else the copy that part2.download writes. Raises FileNotFoundError naming them.
    """
    if explicit is not None:
        candidates = [Path(explicit).expanduser()]
    else:
        candidates = [model_dir, model_dir.parent, fallback]
    for folder in candidates:
        if has_files(folder):
            return folder
    looked = ", ".join(str(folder) for folder in candidates)
    hint = ("pass a folder that has them" if explicit is not None
            else "pass --tokenizer-dir, or run python -m part2.download to fetch them")
    raise FileNotFoundError(
        f"no tokenizer found in {looked}: looked for tokenizer_config.json with tokenizer.json "
        f"(or vocab.json and merges.txt); {hint}")
