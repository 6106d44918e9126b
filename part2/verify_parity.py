"""Compare RocLM with transformers' Qwen3ForCausalLM and write the results as JSON.

Random small configs always run (grouped-query ratios 1, 2 and 4, head_dim != hidden / heads,
tied and untied embeddings); --model-dir adds a checkpoint such as the real Qwen3-0.6B weights.
Without --quick a random-weight model at the full Qwen3-0.6B shape is compared as well. Where
this CPU supports oneDNN weight packing, the float32 checks run again with the weights packed, as
part2/generate.py runs the model on the CPU. The exit status is 1 when any check fails.

Usage: python -m part2.verify_parity --output evaluation/part2/parity.json [--model-dir DIR]
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from part2.roclm_model import RocLMConfig, RocLMForCausalLM, packing_unavailable_reason
from tools.provenance import collect_provenance, run_profile, write_json_atomic

logger = logging.getLogger(__name__)

SEED = 0
FLOAT32_ATOL = 1e-5
# bf16 rounds logits of magnitude ~4 to steps of ~0.03; SDPA accumulates in a different order
# from the reference's eager attention, so a few steps of difference are expected.
BFLOAT16_ATOL = 0.1
# A real 28-layer model has logits around 20-30 and adds rounding over every layer; 1e-3 is
# still about 1e-4 relative.
CHECKPOINT_FLOAT32_ATOL = 1e-3
GREEDY_TOKENS = 32
PROMPT_LENGTH = 24
CHECKPOINT_PROMPT_LENGTH = 64
SMALL_SHAPE = dict(hidden_size=64, intermediate_size=112, num_hidden_layers=2, vocab_size=257,
                   max_position_embeddings=1024, rope_theta=1_000_000.0)
SMALL_CONFIGS = {
    "gqa1_head_dim16_tied": dict(num_attention_heads=4, num_key_value_heads=4, head_dim=16,
                                 tie_word_embeddings=True),
    "gqa2_head_dim24_untied": dict(num_attention_heads=4, num_key_value_heads=2, head_dim=24,
                                   tie_word_embeddings=False),
    "gqa4_head_dim12_tied": dict(num_attention_heads=8, num_key_value_heads=2, head_dim=12,
                                 tie_word_embeddings=True),
}
QWEN3_0_6B_SHAPE = dict(vocab_size=151936, hidden_size=1024, intermediate_size=3072,
                        num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                        head_dim=128, rope_theta=1_000_000.0, max_position_embeddings=40960,
                        tie_word_embeddings=True)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True,
                        help="JSON file to write, for example evaluation/part2/parity.json")
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="also compare this checkpoint directory, Hugging Face or course "
                             "layout (default: random configs only)")
    parser.add_argument("--quick", action="store_true",
                        help="skip bf16 and the random full Qwen3-0.6B-shape check, which needs "
                             "about 5 GB of memory and a few minutes (default: off)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice)")
    return parser


def _random_ids(vocab_size: int, length: int, seed: int, batch: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (batch, length), generator=generator)


def _logits(model, input_ids: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        output = model(input_ids)
    return (output if isinstance(output, torch.Tensor) else output.logits).float()


def _greedy_agreement(reference, model, prompt: torch.Tensor, new_tokens: int) -> dict[str, Any]:
    expected = reference.generate(prompt, attention_mask=torch.ones_like(prompt),
                                  max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                  do_sample=False)[:, prompt.shape[1]:]
    actual = model.generate(prompt, max_new_tokens=new_tokens)[:, prompt.shape[1]:]
    matches = (expected == actual)[0].tolist()
    first_difference = matches.index(False) if False in matches else None
    return {"greedy_tokens": new_tokens, "greedy_tokens_equal": first_difference is None,
            "first_differing_token": first_difference}


def _logit_record(name: str, expected: torch.Tensor, actual: torch.Tensor,
                  tolerance: float) -> dict[str, Any]:
    difference = (expected - actual).abs().max().item()
    return {"check": name, "max_abs_logit_diff": difference, "tolerance": tolerance,
            "max_abs_logit": expected.abs().max().item(), "passed": difference <= tolerance}


def _packed_record(expected: torch.Tensor, model, input_ids: torch.Tensor,
                   tolerance: float) -> dict[str, Any] | None:
    """Pack the model's weights for oneDNN (as generate.py does on the CPU) and compare again.

    Returns None where packing is unavailable; the model stays packed afterwards.
    """
    if packing_unavailable_reason(model.device, model.dtype) is not None:
        return None
    model.pack_weights()
    return _logit_record("float32 logits, weights packed for oneDNN", expected,
                         _logits(model, input_ids), tolerance)


def check_small_config(name: str, shape: dict[str, Any], directory: Path,
                       quick: bool) -> list[dict[str, Any]]:
    """Compare RocLM and transformers on one random small config."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(SEED)
    config = Qwen3Config(**SMALL_SHAPE, **shape, initializer_range=0.1)
    reference = Qwen3ForCausalLM(config).eval()
    reference.save_pretrained(directory)
    model = RocLMForCausalLM.from_pretrained(directory)
    input_ids = _random_ids(config.vocab_size, PROMPT_LENGTH, SEED, batch=2)
    records = []

    expected = _logits(reference, input_ids)
    record = _logit_record("float32 logits", expected, _logits(model, input_ids), FLOAT32_ATOL)
    record.update(_greedy_agreement(reference, model, input_ids[:1], GREEDY_TOKENS))
    record["passed"] = record["passed"] and record["greedy_tokens_equal"]
    records.append(record)

    model.set_attn_implementation("explicit")
    records.append(_logit_record("float32 logits, explicit attention", expected,
                                 _logits(model, input_ids), FLOAT32_ATOL))

    saved = directory / "roclm_saved"
    model.save_pretrained(saved)
    reloaded = Qwen3ForCausalLM.from_pretrained(saved).eval()
    records.append(_logit_record("RocLM checkpoint loaded by transformers", expected,
                                 _logits(reloaded, input_ids), FLOAT32_ATOL))

    model.set_attn_implementation("sdpa")
    record = _packed_record(expected, model, input_ids, FLOAT32_ATOL)
    if record is not None:
        record.update(_greedy_agreement(reference, model, input_ids[:1], GREEDY_TOKENS))
        record["passed"] = record["passed"] and record["greedy_tokens_equal"]
        records.append(record)

    if not quick:
        reference = Qwen3ForCausalLM.from_pretrained(directory, dtype=torch.bfloat16,
                                                     attn_implementation="eager").eval()
        model = RocLMForCausalLM.from_pretrained(directory, dtype=torch.bfloat16)
        records.append(_logit_record("bfloat16 logits", _logits(reference, input_ids),
                                     _logits(model, input_ids), BFLOAT16_ATOL))
    for record in records:
        record["config"] = name
    return records


def _reference_for_directory(directory: Path, dtype: torch.dtype):
    """Load transformers' model from a Hugging Face or course-layout checkpoint directory."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    if (directory / "config.json").is_file():
        return Qwen3ForCausalLM.from_pretrained(directory, dtype=dtype).eval()
    model = RocLMForCausalLM.from_pretrained(directory, dtype=dtype)
    config = Qwen3Config(**{key: value for key, value in model.config.to_dict().items()
                            if key not in ("architectures", "torch_dtype")})
    reference = Qwen3ForCausalLM(config).to(dtype).eval()
    reference.load_state_dict(model.state_dict(), strict=False)
    reference.tie_weights()
    return reference


def check_checkpoint(directory: Path, quick: bool) -> list[dict[str, Any]]:
    """Compare RocLM and transformers on a checkpoint directory, in float32."""
    model = RocLMForCausalLM.from_pretrained(directory, dtype=torch.float32)
    reference = _reference_for_directory(directory, torch.float32)
    input_ids = _random_ids(model.config.vocab_size, CHECKPOINT_PROMPT_LENGTH, SEED)
    expected = _logits(reference, input_ids)
    record = _logit_record("float32 logits", expected, _logits(model, input_ids),
                           CHECKPOINT_FLOAT32_ATOL)
    record.update(_greedy_agreement(reference, model, input_ids[:, :16],
                                    8 if quick else GREEDY_TOKENS))
    record["passed"] = record["passed"] and record["greedy_tokens_equal"]
    records = [record]
    packed = _packed_record(expected, model, input_ids, CHECKPOINT_FLOAT32_ATOL)
    if packed is not None:
        records.append(packed)
    for record in records:
        record["config"] = f"checkpoint {directory.name}"
    return records


def check_full_shape(directory: Path) -> list[dict[str, Any]]:
    """Compare random weights at the Qwen3-0.6B shape on a 64-token prompt, in float32."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(SEED)
    reference = Qwen3ForCausalLM(Qwen3Config(**QWEN3_0_6B_SHAPE)).eval()
    # from_state_dict fuses the projections, as from_pretrained does, so the fast path is checked
    model = RocLMForCausalLM.from_state_dict(RocLMConfig.from_dict(QWEN3_0_6B_SHAPE),
                                             reference.state_dict(), torch.float32,
                                             source="transformers model")
    input_ids = _random_ids(QWEN3_0_6B_SHAPE["vocab_size"], CHECKPOINT_PROMPT_LENGTH, SEED)
    expected = _logits(reference, input_ids)
    records = [_logit_record("float32 logits", expected, _logits(model, input_ids),
                             CHECKPOINT_FLOAT32_ATOL)]
    packed = _packed_record(expected, model, input_ids, CHECKPOINT_FLOAT32_ATOL)
    if packed is not None:
        records.append(packed)
    for record in records:
        record["config"] = "Qwen3-0.6B shape, random weights"
    return records


def run_checks(model_dir: Path | None, quick: bool) -> list[dict[str, Any]]:
    records = []
    with tempfile.TemporaryDirectory(prefix="roclm_parity_") as temporary:
        for name, shape in SMALL_CONFIGS.items():
            records += check_small_config(name, shape, Path(temporary) / name, quick)
        if not quick:
            records += check_full_shape(Path(temporary))
    if model_dir is not None:
        records += check_checkpoint(model_dir, quick)
    return records


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.model_dir is not None and not args.model_dir.is_dir():
        print(f"error: --model-dir {args.model_dir} is not a directory; download the weights "
              "with python -m part2.download or omit --model-dir", file=sys.stderr)
        return 1
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()

    start = time.perf_counter()
    try:
        records = run_checks(args.model_dir, args.quick)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for record in records:
        status = "pass" if record["passed"] else "FAIL"
        print(f"{status} {record['config']}: {record['check']}: max abs logit diff "
              f"{record['max_abs_logit_diff']:.2e} (tolerance {record['tolerance']:.0e})"
              + (f", greedy {record['greedy_tokens']} tokens equal: "
                 f"{record['greedy_tokens_equal']}" if "greedy_tokens" in record else ""))
    all_passed = all(record["passed"] for record in records)
    settings = {"model_dir": str(args.model_dir) if args.model_dir else None,
                "quick": args.quick, "threads": torch.get_num_threads(),
                "tolerances": {"float32": FLOAT32_ATOL, "bfloat16": BFLOAT16_ATOL,
                               "checkpoint_float32": CHECKPOINT_FLOAT32_ATOL}}
    write_json_atomic(args.output, {
        "profile": run_profile(),
        "all_passed": all_passed,
        "checks": records,
        "seconds": round(time.perf_counter() - start, 1),
        "provenance": collect_provenance(settings, seed=SEED, device="cpu"),
    })
    print(f"{sum(r['passed'] for r in records)}/{len(records)} checks passed; wrote {args.output}")
    return 0 if all_passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
