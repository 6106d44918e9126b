"""Chat formatting, reply splitting, streaming text, sampling defaults and argument checks."""
from __future__ import annotations

import io
import logging
import random

import pytest
import torch

from part2.chat import (
    QWEN3_SAMPLING, ReplyPrinter, format_reply, resolve_sampling, split_reply, stop_token_ids,
)
from part2.generate import UserError, get_args_parser, main, read_text, resolve_device, resolve_dtype

THINK_START, THINK_END, IM_END, END_OF_TEXT = 151667, 151668, 151645, 151643


@pytest.fixture(scope="module")
def tokenizer(qwen_tokenizer_dir):
    from part2.chat import load_tokenizer

    return load_tokenizer(qwen_tokenizer_dir)


def test_stop_ids_from_tokenizer(tokenizer):
    assert stop_token_ids(tokenizer) == [IM_END, END_OF_TEXT]


def test_split_reply_at_think_end(tokenizer):
    reasoning = tokenizer("Two plus two is four.")["input_ids"]
    answer = tokenizer("4")["input_ids"]
    newline, blank = tokenizer("\n")["input_ids"], tokenizer("\n\n")["input_ids"]
    ids = [THINK_START, *newline, *reasoning, *newline, THINK_END, *blank, *answer]

    reply = split_reply(tokenizer, ids, thinking=True)
    assert reply.reasoning == "Two plus two is four."
    assert reply.answer == "4"
    assert reply.reasoning_finished
    assert reply.history_content(True) == "<think>\nTwo plus two is four.\n</think>\n\n4"

    unfinished = split_reply(tokenizer, ids[:5], thinking=True)
    assert not unfinished.reasoning_finished
    assert unfinished.answer == ""
    assert unfinished.history_content(True) == ""

    direct = split_reply(tokenizer, answer, thinking=False)
    assert direct.reasoning == ""
    assert direct.answer == "4"


def test_reply_printer_equals_format_reply(tokenizer):
    """Streaming token by token prints exactly what the finished reply prints."""
    rng = random.Random(0)
    special = [THINK_START, THINK_END, IM_END, 198, 271, 220]
    multibyte = tokenizer(" héllo 你好 𓀀 🫠 ")["input_ids"]
    for trial in range(60):
        ids = [rng.choice(special) if rng.random() < 0.2 else rng.randrange(151_936)
               for _ in range(rng.randint(0, 30))]
        if trial % 2:
            ids[rng.randint(0, len(ids)):0] = multibyte
        for thinking in (True, False):
            stream = io.StringIO()
            printer = ReplyPrinter(tokenizer, thinking, stream, stop_token_ids(tokenizer))
            for token in ids:
                printer.put(token)
            printer.end()
            expected = format_reply(split_reply(tokenizer, ids, thinking), thinking)
            assert stream.getvalue() == expected, (ids, thinking)


def test_multibyte_character_never_split(tokenizer):
    ids = tokenizer("𓀀")["input_ids"]
    assert len(ids) > 1  # byte-level BPE spreads this character over several tokens
    stream = io.StringIO()
    printer = ReplyPrinter(tokenizer, False, stream)
    for token in ids:
        printer.put(token)
        assert "\ufffd" not in stream.getvalue()
    printer.end()
    assert stream.getvalue() == "Answer:\n𓀀\n"


@pytest.mark.parametrize("thinking", [True, False])
def test_sampling_defaults_per_mode(thinking):
    settings = resolve_sampling(thinking, max_new_tokens=32)
    assert settings.do_sample
    assert settings.temperature == QWEN3_SAMPLING[thinking]["temperature"]
    assert settings.top_p == QWEN3_SAMPLING[thinking]["top_p"]
    assert settings.top_k == 20
    assert settings.repetition_penalty == 1.0


def test_sampling_overrides_and_greedy():
    settings = resolve_sampling(True, 8, temperature=1.3, top_p=0.5, top_k=0, repetition_penalty=1.1)
    assert (settings.temperature, settings.top_p, settings.top_k) == (1.3, 0.5, 0)
    assert settings.repetition_penalty == 1.1
    assert not resolve_sampling(True, 8, greedy=True).do_sample
    assert not resolve_sampling(False, 8, temperature=0.0).do_sample
    assert QWEN3_SAMPLING[True] == {"temperature": 0.6, "top_p": 0.95, "top_k": 20}
    assert QWEN3_SAMPLING[False] == {"temperature": 0.7, "top_p": 0.8, "top_k": 20}


@pytest.mark.parametrize("flag, value", [
    ("--temperature", "-0.5"), ("--temperature", "hot"), ("--temperature", "nan"),
    ("--top-p", "0"), ("--top-p", "1.5"), ("--top-k", "-1"), ("--top-k", "2.5"),
    ("--repetition-penalty", "0"), ("--max-new-tokens", "0"), ("--dtype", "int8"),
])
def test_invalid_sampling_value_rejected(flag, value, capsys):
    with pytest.raises(SystemExit) as caught:
        get_args_parser().parse_args(["--prompt", "hi", flag, value])
    assert caught.value.code == 2
    error = capsys.readouterr().err
    assert flag in error
    assert value in error


def test_modes_are_exclusive(capsys):
    with pytest.raises(SystemExit):
        get_args_parser().parse_args(["--prompt", "hi", "--interactive"])
    assert "not allowed with" in capsys.readouterr().err


def test_empty_prompt_exits_without_traceback(capsys):
    assert main(["--prompt", "  \n", "--device", "cpu"]) == 1
    error = capsys.readouterr().err
    assert error == "error: the prompt is empty; pass some text\n"


def test_read_text_from_stdin():
    assert read_text("-", "prompt", io.StringIO("piped text")) == "piped text"
    assert read_text(None, "prompt", io.StringIO("piped text")) == "piped text"
    with pytest.raises(UserError, match="chat message is empty"):
        read_text("-", "chat message", io.StringIO(""))


def test_download_only_rejects_model_dir(tmp_path, capsys):
    assert main(["--download-only", "--model-dir", str(tmp_path)]) == 1
    assert "--download-only" in capsys.readouterr().err


def test_device_resolution():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cuda", "mps", "cpu")
    with pytest.raises(UserError, match="--device tpu is invalid"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_dtype_resolution(monkeypatch, caplog):
    import part2.generate as generate

    monkeypatch.setattr(generate, "cpu_has_fast_bf16", lambda: True)
    assert resolve_dtype("auto", "cpu") == torch.bfloat16
    monkeypatch.setattr(generate, "cpu_has_fast_bf16", lambda: False)
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("auto", "mps") == torch.float32
    assert resolve_dtype("bf16", "cpu") == torch.bfloat16
    with caplog.at_level(logging.WARNING, logger="part2.generate"):
        assert resolve_dtype("fp16", "cpu") == torch.float16
    messages = [record.getMessage() for record in caplog.records]
    assert any("float16 was requested" in message for message in messages)
    assert any("use bfloat16 or float32" in message for message in messages)
