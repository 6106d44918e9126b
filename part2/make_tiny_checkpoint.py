"""Save a tiny random transformers Qwen3ForCausalLM (config.json + model.safetensors).

Tests and run_all.sh's smoke profile use it in place of the real Qwen3-0.6B weights, which need
a download. The architecture is Qwen3's with small sizes; the weights are random, so generated
text is noise.

Usage: python -m part2.make_tiny_checkpoint --output-dir DIR --vocab-size V [--seed S]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

# Small enough to build and run in about a second on one CPU core, while keeping the cases that
# matter: grouped-query attention (4 query heads per 2 key/value heads) and a head_dim that is not
# hidden_size / num_attention_heads.
TINY_SHAPE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                  max_position_embeddings=4096, rope_theta=1_000_000.0, rms_norm_eps=1e-6)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, required=True,
                        help="directory to write config.json and model.safetensors into "
                             "(created if missing)")
    parser.add_argument("--vocab-size", type=int, required=True,
                        help="number of token ids; use the tokenizer's vocabulary size, "
                             "including added tokens")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed for the weights (default: 0)")
    parser.add_argument("--tie", action=argparse.BooleanOptionalAction, default=True,
                        help="tie lm_head to the input embedding as Qwen3-0.6B does "
                             "(default: --tie)")
    parser.add_argument("--eos-token-id", type=int, nargs="*", default=None,
                        help="eos id(s) to store in config.json (default: none)")
    return parser


def make_tiny_checkpoint(output_dir: Path, vocab_size: int, seed: int = 0, tie: bool = True,
                         eos_token_id: list[int] | None = None) -> Path:
    """Build and save the tiny random model; return the output directory."""
    from transformers import Qwen3Config, Qwen3ForCausalLM
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    if vocab_size < 2:
        raise ValueError(f"--vocab-size {vocab_size} is invalid; use at least 2")
    for token in eos_token_id or []:
        if not 0 <= token < vocab_size:
            raise ValueError(f"--eos-token-id {token} is outside the vocabulary [0, {vocab_size})")
    torch.manual_seed(seed)
    eos = None if not eos_token_id else (eos_token_id[0] if len(eos_token_id) == 1
                                         else eos_token_id)
    config = Qwen3Config(vocab_size=vocab_size, tie_word_embeddings=tie, eos_token_id=eos,
                         **TINY_SHAPE)
    model = Qwen3ForCausalLM(config)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    settings = {"vocab_size": vocab_size, "seed": seed, "tie_word_embeddings": tie,
                "eos_token_id": eos, **TINY_SHAPE}
    (output_dir / "tiny_checkpoint_settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    return output_dir


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        output_dir = make_tiny_checkpoint(args.output_dir, args.vocab_size, args.seed, args.tie,
                                          args.eos_token_id)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"saved tiny Qwen3 checkpoint (vocab {args.vocab_size}, seed {args.seed}, "
          f"tied {args.tie}) to {output_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
