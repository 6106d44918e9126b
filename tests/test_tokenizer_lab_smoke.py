"""Tests of the offline smoke tokenizer: loading, added-token ids, chat template, digit split."""
import json
import subprocess
import sys

import pytest
from jinja2.exceptions import TemplateError
from transformers import AutoTokenizer

from part2.smoke_tokenizer import (DEFAULT_BASE_VOCAB_SIZE, QWEN3_ADDED_TOKENS, SETTINGS_FILE,
                                   save_smoke_tokenizer)
from tests.conftest import REPO_ROOT

CONVERSATION = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "<think>\nSimple sum.\n</think>\n\n4"},
    {"role": "user", "content": "And 3 + 3?"},
]


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("smoke_tokenizer")
    save_smoke_tokenizer(output_dir)
    return output_dir


@pytest.fixture(scope="module")
def smoke_tokenizer(smoke_dir):
    return AutoTokenizer.from_pretrained(smoke_dir)


def test_cli_prints_model_vocab_size(tmp_path):
    result = subprocess.run([sys.executable, "-m", "part2.smoke_tokenizer", "--output-dir",
                             str(tmp_path)], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    expected = DEFAULT_BASE_VOCAB_SIZE + len(QWEN3_ADDED_TOKENS)
    assert f"model vocab size needed: {expected}" in result.stdout
    settings = json.loads((tmp_path / SETTINGS_FILE).read_text())
    assert settings["model_vocab_size_needed"] == expected
    assert "provenance" in settings
    assert len(AutoTokenizer.from_pretrained(tmp_path)) == expected


def test_cli_rejects_too_small_vocab(tmp_path):
    result = subprocess.run([sys.executable, "-m", "part2.smoke_tokenizer", "--output-dir",
                             str(tmp_path), "--base-vocab-size", "100"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "vocab_size=100" in result.stderr
    assert "Traceback" not in result.stderr


def test_added_tokens_follow_base_vocab(smoke_tokenizer):
    assert len(QWEN3_ADDED_TOKENS) == 26
    assert len(smoke_tokenizer) == DEFAULT_BASE_VOCAB_SIZE + 26
    for offset, (content, _) in enumerate(QWEN3_ADDED_TOKENS):
        assert smoke_tokenizer.convert_tokens_to_ids(content) == DEFAULT_BASE_VOCAB_SIZE + offset
        assert smoke_tokenizer.encode(content) == [DEFAULT_BASE_VOCAB_SIZE + offset]


def test_eos_and_pad_tokens(smoke_tokenizer):
    assert smoke_tokenizer.eos_token == "<|im_end|>"
    assert smoke_tokenizer.pad_token == "<|endoftext|>"
    assert smoke_tokenizer.eos_token_id == DEFAULT_BASE_VOCAB_SIZE + 2


def test_decode_skips_only_special_tokens(smoke_tokenizer):
    ids = smoke_tokenizer.encode("<|im_start|>user\n<think>hi</think><|im_end|>")
    assert smoke_tokenizer.decode(ids, skip_special_tokens=True) == "user\n<think>hi</think>"


@pytest.mark.parametrize("text", ["My student ID is 20231234.", "def f(x):\n    return x ** 2\n",
                                  "你好, 世界 🙂", "tabs\tand   spaces\r\n"])
def test_round_trip(smoke_tokenizer, text):
    assert smoke_tokenizer.decode(smoke_tokenizer.encode(text)) == text


def test_digits_split_one_per_token(smoke_tokenizer):
    ids = smoke_tokenizer.encode("9876543210")
    assert smoke_tokenizer.convert_ids_to_tokens(ids) == list("9876543210")


def test_template_thinking_off_adds_empty_block(smoke_tokenizer):
    prompt = smoke_tokenizer.apply_chat_template(CONVERSATION, tokenize=False,
                                                 add_generation_prompt=True, enable_thinking=False)
    assert prompt.endswith("<|im_start|>user\nAnd 3 + 3?<|im_end|>\n"
                           "<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_template_thinking_on_leaves_prompt_open(smoke_tokenizer):
    prompt = smoke_tokenizer.apply_chat_template(CONVERSATION, tokenize=False,
                                                 add_generation_prompt=True, enable_thinking=True)
    assert prompt.startswith("<|im_start|>system\nAnswer briefly.<|im_end|>\n")
    assert prompt.endswith("<|im_start|>assistant\n")
    assert prompt.count("<|im_start|>") == 5
    assert prompt.count("<|im_end|>") == 4


def test_template_drops_earlier_reasoning(smoke_tokenizer):
    prompt = smoke_tokenizer.apply_chat_template(CONVERSATION, tokenize=False,
                                                 add_generation_prompt=True)
    assert "Simple sum." not in prompt
    assert "<|im_start|>assistant\n4<|im_end|>\n" in prompt


def test_template_keeps_reasoning_after_last_user(smoke_tokenizer):
    messages = CONVERSATION[:2] + [{"role": "assistant", "content": "4",
                                    "reasoning_content": "Simple sum."}]
    text = smoke_tokenizer.apply_chat_template(messages, tokenize=False)
    assert text.endswith("<|im_start|>assistant\n<think>\nSimple sum.\n</think>\n\n4<|im_end|>\n")


def test_template_tokenizes_markers_as_single_ids(smoke_tokenizer):
    ids = smoke_tokenizer.apply_chat_template(CONVERSATION, tokenize=True, return_dict=False,
                                              add_generation_prompt=True, enable_thinking=False)
    think_id, end_think_id = smoke_tokenizer.convert_tokens_to_ids(["<think>", "</think>"])
    assert ids.count(smoke_tokenizer.convert_tokens_to_ids("<|im_start|>")) == 5
    assert ids.count(think_id) == 1
    assert ids.count(end_think_id) == 1
    tail = ids[ids.index(think_id):]
    assert smoke_tokenizer.decode(tail) == "<think>\n\n</think>\n\n"


def test_template_rejects_unknown_role(smoke_tokenizer):
    with pytest.raises(TemplateError, match="role tool is not supported"):
        smoke_tokenizer.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


@pytest.fixture(scope="module")
def qwen_tokenizer(qwen_tokenizer_dir):
    return AutoTokenizer.from_pretrained(qwen_tokenizer_dir)


@pytest.mark.parametrize("enable_thinking", [True, False])
@pytest.mark.parametrize("messages", [CONVERSATION, CONVERSATION[1:2], CONVERSATION[:3]])
def test_template_matches_qwen3(qwen_tokenizer, smoke_tokenizer, messages, enable_thinking):
    for add_generation_prompt in (True, False):
        settings = {"tokenize": False, "add_generation_prompt": add_generation_prompt,
                    "enable_thinking": enable_thinking}
        ours = smoke_tokenizer.apply_chat_template(messages, **settings)
        assert ours == qwen_tokenizer.apply_chat_template(messages, **settings)
