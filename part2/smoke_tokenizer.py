"""Build a small Qwen3-like tokenizer offline, for tests and the smoke profile.

The tokenizer is a byte-level BPE trained on the local corpus of part2.local_bpe with Qwen3's
pre-tokenizer (digits split one by one). Qwen3's 26 added tokens follow the base vocabulary in the
same order as in Qwen3's tokenizer_config.json, and a ChatML chat template written for this
project supports `enable_thinking` the way Qwen3's does. It is saved with transformers'
save_pretrained, so `AutoTokenizer.from_pretrained(DIR)` loads it, and a tiny random model whose
vocab size is at least `len(tokenizer)` can run the chat and the tokenizer lab with nothing but
the repository.

    python -m part2.smoke_tokenizer --output-dir runs/smoke_tokenizer
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tokenizers import AddedToken
from transformers import PreTrainedTokenizerFast

from part2.local_bpe import corpus_description, local_corpus, train_byte_level_bpe
from tools.provenance import collect_provenance, write_json_atomic

DEFAULT_BASE_VOCAB_SIZE = 4096
SETTINGS_FILE = "smoke_tokenizer_settings.json"
# Qwen3 accepts prompts this long (model_max_length in its tokenizer_config.json).
MODEL_MAX_LENGTH = 131072

# Qwen3's added tokens in id order (151643..151668 there), with the "special" flag of its
# tokenizer_config.json: special tokens are skipped by decode(skip_special_tokens=True), the
# others (tool calls, fill-in-the-middle, thinking) stay in decoded text.
QWEN3_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True),
    ("<|box_start|>", True), ("<|box_end|>", True),
    ("<|quad_start|>", True), ("<|quad_end|>", True),
    ("<|vision_start|>", True), ("<|vision_end|>", True),
    ("<|vision_pad|>", True), ("<|image_pad|>", True), ("<|video_pad|>", True),
    ("<tool_call>", False), ("</tool_call>", False),
    ("<|fim_prefix|>", False), ("<|fim_middle|>", False), ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False), ("<|repo_name|>", False), ("<|file_sep|>", False),
    ("<tool_response>", False), ("</tool_response>", False),
    ("<think>", False), ("</think>", False),
)
EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|endoftext|>"

# ChatML: every turn is "<|im_start|>ROLE\nCONTENT<|im_end|>\n". Assistant turns before the last
# user message lose their <think> block, as in Qwen3's own template (the tests compare the two).
# An assistant turn after the last user message keeps it, or gets an empty one when it is the
# final message. With enable_thinking=false the generation prompt already contains an empty think
# block, so the model answers without reasoning.
CHAT_TEMPLATE = """\
{%- set state = namespace(last_user_index=-1) -%}
{%- for message in messages -%}
    {%- if message.role == 'user' -%}{%- set state.last_user_index = loop.index0 -%}{%- endif -%}
{%- endfor -%}
{%- for message in messages -%}
    {%- if message.role not in ['system', 'user', 'assistant'] -%}
        {{- raise_exception('role ' ~ message.role ~ ' is not supported; use system, user or assistant') -}}
    {%- endif -%}
    {%- set text = message.content if message.content is string else '' -%}
    {%- if message.role == 'assistant' -%}
        {%- set thought = message.reasoning_content if message.reasoning_content is string else '' -%}
        {%- if '</think>' in text -%}
            {%- set thought = text.split('</think>')[0].split('<think>')[-1] -%}
            {%- set text = text.split('</think>')[-1] -%}
        {%- endif -%}
        {%- set thought = thought.strip('\\n') -%}
        {%- set text = text.lstrip('\\n') -%}
        {%- if loop.index0 > state.last_user_index and (thought or loop.last) -%}
            {%- set text = '<think>\\n' ~ thought ~ '\\n</think>\\n\\n' ~ text -%}
        {%- endif -%}
    {%- endif -%}
    {{- '<|im_start|>' ~ message.role ~ '\\n' ~ text ~ '<|im_end|>\\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|im_start|>assistant\\n' -}}
    {%- if enable_thinking is defined and enable_thinking is false -%}
        {{- '<think>\\n\\n</think>\\n\\n' -}}
    {%- endif -%}
{%- endif -%}
"""


def build_smoke_tokenizer(base_vocab_size: int = DEFAULT_BASE_VOCAB_SIZE) -> PreTrainedTokenizerFast:
    """Train the base BPE, append Qwen3's added tokens in order and attach the chat template."""
    backend = train_byte_level_bpe(local_corpus("all"), base_vocab_size)
    for content, special in QWEN3_ADDED_TOKENS:
        token = AddedToken(content, single_word=False, lstrip=False, rstrip=False,
                           normalized=False, special=special)
        if special:
            backend.add_special_tokens([token])
        else:
            backend.add_tokens([token])

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        additional_special_tokens=[content for content, special in QWEN3_ADDED_TOKENS[1:] if special],
        chat_template=CHAT_TEMPLATE,
        model_max_length=MODEL_MAX_LENGTH,
        clean_up_tokenization_spaces=False,
    )
    for offset, (content, _) in enumerate(QWEN3_ADDED_TOKENS):
        assert tokenizer.convert_tokens_to_ids(content) == base_vocab_size + offset, content
    return tokenizer


def save_smoke_tokenizer(output_dir: str | Path,
                         base_vocab_size: int = DEFAULT_BASE_VOCAB_SIZE) -> dict:
    """Build the smoke tokenizer, save it into `output_dir` with its settings, return the settings."""
    output_dir = Path(output_dir)
    tokenizer = build_smoke_tokenizer(base_vocab_size)
    tokenizer.save_pretrained(output_dir)

    settings = {
        "base_vocab_size": base_vocab_size,
        "added_tokens": len(QWEN3_ADDED_TOKENS),
        "model_vocab_size_needed": len(tokenizer),
        "first_added_token_id": base_vocab_size,
        "corpus": corpus_description(),
    }
    write_json_atomic(output_dir / SETTINGS_FILE,
                      {**settings, "provenance": collect_provenance(settings)})
    return settings


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Build a small byte-level BPE tokenizer with Qwen3's added tokens and a ChatML "
                    "chat template, offline, for tests and the smoke profile.")
    parser.add_argument("--output-dir", required=True, type=Path,
                        help="directory to write the tokenizer files into (created if missing)")
    parser.add_argument("--base-vocab-size", type=int, default=DEFAULT_BASE_VOCAB_SIZE,
                        help="number of byte-level BPE tokens before the 26 added tokens "
                             f"(tokens, default {DEFAULT_BASE_VOCAB_SIZE}; at most about 9,000 "
                             "on the local corpus)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        settings = save_smoke_tokenizer(args.output_dir, args.base_vocab_size)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"smoke tokenizer saved to {args.output_dir}: {settings['base_vocab_size']} BPE tokens "
          f"+ {settings['added_tokens']} added tokens (ids {settings['first_added_token_id']}.."
          f"{settings['model_vocab_size_needed'] - 1})")
    print(f"model vocab size needed: {settings['model_vocab_size_needed']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
