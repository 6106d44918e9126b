"""Measure RocLM generation speed against transformers' Qwen3ForCausalLM in one run.

Both models get the same random weights at the Qwen3-0.6B shape (saved once, loaded by each
library), the same dtype and the same thread count. For each device and dtype the script times a
128-token prompt and 128 greedy new tokens at batch 1, alternating the implementations. On the
CPU RocLM runs with its weights packed for oneDNN, as part2/generate.py runs it, and a third row
times RocLM with the dense checkpoint weights to show what the packing adds.
The same run measures the machine's memory bandwidth and reports decode speed as a fraction of
that roofline. It also reports per-token decode time at a short and a long context, and the cost
of recomputing the whole sequence for every new token, which is what a model without a KV cache
does.

--quick uses a smaller model and fewer tokens, so it finishes in a few minutes on 2 CPU cores.
Its numbers are labelled "quick" and are not the Qwen3-0.6B results.

Usage: python -m part2.benchmark --output evaluation/part2/benchmark.json [--quick]
"""
from __future__ import annotations

import argparse
import gc
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from part2.roclm_model import RocLMConfig, RocLMForCausalLM, packing_unavailable_reason
from tools.provenance import collect_provenance, run_profile, write_json_atomic

logger = logging.getLogger(__name__)

SEED = 0
# Standard deviation of the random weights, as Qwen3's initializer uses; norms stay at one.
WEIGHT_STD = 0.02
QWEN3_0_6B_SHAPE = dict(vocab_size=151936, hidden_size=1024, intermediate_size=3072,
                        num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                        head_dim=128, rope_theta=1_000_000.0, max_position_embeddings=40960,
                        tie_word_embeddings=True)
# Same layer structure and grouped-query ratio, about 8% of the parameters.
QUICK_SHAPE = dict(vocab_size=32768, hidden_size=512, intermediate_size=1536, num_hidden_layers=8,
                   num_attention_heads=8, num_key_value_heads=4, head_dim=64,
                   rope_theta=1_000_000.0, max_position_embeddings=4096, tie_word_embeddings=True)
PLANS = {
    "full": dict(shape_name="Qwen3-0.6B", shape=QWEN3_0_6B_SHAPE, prompt_tokens=128,
                 new_tokens=128, repeats=3, contexts=(16, 1024), context_decode_tokens=16,
                 recompute_tokens=4, parity_prompt_tokens=64),
    "quick": dict(shape_name="quick (hidden 512, 8 layers, vocab 32768)", shape=QUICK_SHAPE,
                  prompt_tokens=32, new_tokens=32, repeats=1, contexts=(16, 256),
                  context_decode_tokens=8, recompute_tokens=4, parity_prompt_tokens=32),
}
IMPLEMENTATIONS = ("roclm", "transformers", "roclm_dense")
# Larger than any CPU's last-level cache (server parts reach a few hundred MB), so the sum
# reads from main memory as a decode step reads the weights.
BANDWIDTH_BYTES = {"full": 2**30, "quick": 2**30}
BANDWIDTH_REPEATS = 5


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True,
                        help="JSON file to write, for example evaluation/part2/benchmark.json")
    parser.add_argument("--quick", action="store_true",
                        help="smaller model, 32-token prompt and 32 new tokens; a few minutes on "
                             "2 CPU cores (default: off, the Qwen3-0.6B shape)")
    parser.add_argument("--device", default="auto",
                        help="'cpu', 'cuda' or 'auto' = CPU plus CUDA when present (default: auto)")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"],
                        choices=["float32", "bfloat16"],
                        help="dtypes to measure (default: float32 bfloat16)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads for both implementations (default: torch's "
                             "choice, normally the number of cores)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed generations per implementation and dtype; the median is "
                             "reported (default: 3, or 1 with --quick)")
    parser.add_argument("--no-pack-weights", dest="pack_weights", action="store_false",
                        help="run RocLM with dense weights only, as generate.py "
                             "--no-pack-weights does (default: packed on the CPU, plus a dense "
                             "row for comparison)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="directory for the temporary random checkpoint (default: a new "
                             "temporary directory, removed at the end)")
    return parser


# Weights and models


def write_random_checkpoint(shape: dict[str, Any], directory: Path) -> RocLMConfig:
    """Save random float32 weights with Qwen3 names as config.json + model.safetensors."""
    config = RocLMConfig.from_dict(shape)
    with torch.device("meta"):
        layout = RocLMForCausalLM(config).state_dict()
    generator = torch.Generator().manual_seed(SEED)
    state_dict = {}
    for name, tensor in layout.items():
        if config.tie_word_embeddings and name == "lm_head.weight":
            continue
        if "norm" in name:
            state_dict[name] = torch.ones(tensor.shape)
        else:
            state_dict[name] = torch.randn(tensor.shape, generator=generator) * WEIGHT_STD
    model = RocLMForCausalLM.from_state_dict(config, state_dict, torch.float32)
    model.save_pretrained(directory)
    return config


def load_models(directory: Path, dtype: torch.dtype, device: str,
                pack_weights: bool) -> tuple[dict[str, Any], str]:
    """Load the implementations to compare, and return them with how RocLM stores its weights."""
    from transformers import Qwen3ForCausalLM

    roclm = RocLMForCausalLM.from_pretrained(directory, dtype=dtype, device=device)
    reference = Qwen3ForCausalLM.from_pretrained(directory, dtype=dtype,
                                                 attn_implementation="sdpa").to(device).eval()
    models = {"roclm": roclm, "transformers": reference}
    reason = packing_unavailable_reason(device, dtype) if pack_weights else "--no-pack-weights"
    if reason is not None:
        return models, f"dense ({reason})"
    roclm.pack_weights()
    models["roclm_dense"] = RocLMForCausalLM.from_pretrained(directory, dtype=dtype, device=device)
    return models, "packed for oneDNN"


class TimingStreamer:
    """Record the time of every put(); both libraries first put the prompt, then each token."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def put(self, value: torch.Tensor) -> None:
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


def generate_timed(implementation: str, model, prompt: torch.Tensor,
                   new_tokens: int) -> tuple[float, list[float]]:
    """Run greedy generation; return (seconds to the first new token, the later token times)."""
    streamer = TimingStreamer()
    start = time.perf_counter()
    if implementation.startswith("roclm"):
        model.generate(prompt, max_new_tokens=new_tokens, streamer=streamer)
    else:
        model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new_tokens,
                       min_new_tokens=new_tokens, do_sample=False, pad_token_id=0,
                       streamer=streamer)
    token_times = streamer.times[1:]
    assert len(token_times) == new_tokens, (implementation, len(token_times))
    return token_times[0] - start, token_times


def measure_generation(models: dict[str, Any], prompt: torch.Tensor, new_tokens: int,
                       repeats: int) -> dict[str, dict[str, Any]]:
    """Time each implementation, alternating their order so load changes hit all alike."""
    names = [name for name in IMPLEMENTATIONS if name in models]
    for implementation in names:
        generate_timed(implementation, models[implementation], prompt, 4)  # warm-up
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for repeat in range(repeats):
        order = names if repeat % 2 == 0 else names[::-1]
        for implementation in order:
            prefill_seconds, token_times = generate_timed(implementation, models[implementation],
                                                          prompt, new_tokens)
            decode_seconds = token_times[-1] - token_times[0]
            runs[implementation].append({
                "prefill_seconds": prefill_seconds,
                "prefill_tokens_per_s": prompt.shape[1] / prefill_seconds,
                "decode_tokens_per_s": (new_tokens - 1) / decode_seconds,
            })
            print(f"  {implementation:12s} prefill {runs[implementation][-1]['prefill_tokens_per_s']:8.1f} "
                  f"tok/s  decode {runs[implementation][-1]['decode_tokens_per_s']:7.2f} tok/s",
                  flush=True)
    summary = {}
    for implementation, rows in runs.items():
        summary[implementation] = {
            "prefill_tokens_per_s": statistics.median(r["prefill_tokens_per_s"] for r in rows),
            "decode_tokens_per_s": statistics.median(r["decode_tokens_per_s"] for r in rows),
            "runs": rows,
        }
    return summary


# Roofline, context length and recomputation


def measure_bandwidth(device: str, total_bytes: int) -> dict[str, float]:
    """Measure read bandwidth (a sum over a large float32 tensor) and copy bandwidth, in GB/s."""
    elements = total_bytes // 4
    source = torch.ones(elements, dtype=torch.float32, device=device)
    destination = torch.empty_like(source)

    def best_seconds(operation: Callable[[], Any]) -> float:
        timings = []
        for _ in range(BANDWIDTH_REPEATS):
            _synchronize(device)
            start = time.perf_counter()
            operation()
            _synchronize(device)
            timings.append(time.perf_counter() - start)
        return min(timings)

    read_seconds = best_seconds(lambda: source.sum())
    copy_seconds = best_seconds(lambda: destination.copy_(source))
    return {"buffer_bytes": elements * 4,
            "read_gb_per_s": elements * 4 / read_seconds / 1e9,
            "copy_gb_per_s": 2 * elements * 4 / copy_seconds / 1e9}


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def decode_bytes_per_token(config: RocLMConfig, dtype: torch.dtype, context: int) -> int:
    """Count the bytes one decode step must read: every weight matrix once (the embedding table
    only as lm_head when tied, one row otherwise) plus the cached keys and values."""
    with torch.device("meta"):
        model = RocLMForCausalLM(config)
    element_size = torch.empty(0, dtype=dtype).element_size()
    unique = {id(p): p.numel() for p in model.parameters()}
    weights = sum(unique.values())
    if not config.tie_word_embeddings:
        weights -= model.model.embed_tokens.weight.numel()
    kv_cache = (2 * config.num_hidden_layers * config.num_key_value_heads * config.head_dim
                * context)
    return (weights + kv_cache) * element_size


def measure_context_scaling(model: RocLMForCausalLM, contexts: tuple[int, ...],
                            decode_tokens: int) -> dict[str, Any]:
    """Median seconds per decoded token after prompts of each context length (RocLM)."""
    rows = []
    for context in contexts:
        prompt = _prompt(model.config.vocab_size, context, model.device)
        _, token_times = generate_timed("roclm", model, prompt, decode_tokens)
        intervals = [b - a for a, b in zip(token_times, token_times[1:])]
        rows.append({"context": context, "seconds_per_token": statistics.median(intervals)})
        print(f"  context {context:5d}: {rows[-1]['seconds_per_token'] * 1000:8.1f} ms/token",
              flush=True)
    return {"rows": rows,
            "long_over_short": rows[-1]["seconds_per_token"] / rows[0]["seconds_per_token"]}


@torch.inference_mode()
def measure_recompute(model: RocLMForCausalLM, prompt: torch.Tensor,
                      new_tokens: int) -> dict[str, Any]:
    """Time greedy decoding that runs the whole sequence again for every token (no KV cache)."""
    sequence = prompt
    intervals = []
    for _ in range(new_tokens):
        start = time.perf_counter()
        next_token = model(sequence)[:, -1].argmax(-1, keepdim=True)
        sequence = torch.cat([sequence, next_token], dim=1)
        intervals.append(time.perf_counter() - start)
    return {"context": prompt.shape[1], "tokens": new_tokens,
            "seconds_per_token": statistics.median(intervals)}


@torch.inference_mode()
def measure_parity(models: dict[str, Any], prompt: torch.Tensor) -> dict[str, float]:
    expected = models["transformers"](prompt).logits.float()
    actual = models["roclm"](prompt).float()
    return {"prompt_tokens": prompt.shape[1],
            "max_abs_logit_diff": (expected - actual).abs().max().item(),
            "max_abs_logit": expected.abs().max().item()}


def _prompt(vocab_size: int, length: int, device: torch.device | str) -> torch.Tensor:
    generator = torch.Generator().manual_seed(SEED + length)
    return torch.randint(0, vocab_size, (1, length), generator=generator).to(device)


# Driver


def run_device(device: str, plan: dict[str, Any], dtypes: list[str], checkpoint: Path,
               config: RocLMConfig, repeats: int, quick: bool,
               pack_weights: bool) -> dict[str, Any]:
    """Run every measurement on one device and return its part of the report."""
    print(f"device {device}: measuring memory bandwidth", flush=True)
    bandwidth = measure_bandwidth(device, BANDWIDTH_BYTES["quick" if quick else "full"])
    print(f"  read {bandwidth['read_gb_per_s']:.1f} GB/s, copy {bandwidth['copy_gb_per_s']:.1f} "
          "GB/s", flush=True)
    report: dict[str, Any] = {"device": device, "bandwidth": bandwidth, "dtypes": {}}
    prompt = _prompt(config.vocab_size, plan["prompt_tokens"], device)
    average_context = plan["prompt_tokens"] + plan["new_tokens"] // 2

    for dtype_name in dtypes:
        dtype = getattr(torch, dtype_name)
        print(f"device {device}, {dtype_name}: {plan['prompt_tokens']}-token prompt, "
              f"{plan['new_tokens']} new tokens, batch 1", flush=True)
        models, roclm_weights = load_models(checkpoint, dtype, device, pack_weights)
        print(f"  RocLM weights: {roclm_weights}", flush=True)
        with torch.inference_mode():
            summary = measure_generation(models, prompt, plan["new_tokens"], repeats)
        bytes_per_token = decode_bytes_per_token(config, dtype, average_context)
        roofline = bandwidth["read_gb_per_s"] * 1e9 / bytes_per_token
        entry = {
            "roclm_weights": roclm_weights,
            "implementations": summary,
            "decode_ratio": (summary["roclm"]["decode_tokens_per_s"]
                             / summary["transformers"]["decode_tokens_per_s"]),
            "prefill_ratio": (summary["roclm"]["prefill_tokens_per_s"]
                              / summary["transformers"]["prefill_tokens_per_s"]),
            "roofline": {
                "bytes_per_token": bytes_per_token,
                "average_context": average_context,
                "roofline_tokens_per_s": roofline,
                **{f"{name}_fraction": numbers["decode_tokens_per_s"] / roofline
                   for name, numbers in summary.items()},
            },
        }
        if "roclm_dense" in summary:
            entry["packed_over_dense_decode"] = (summary["roclm"]["decode_tokens_per_s"]
                                                 / summary["roclm_dense"]["decode_tokens_per_s"])
        if dtype == torch.float32:
            parity_prompt = _prompt(config.vocab_size, plan["parity_prompt_tokens"], device)
            entry["parity"] = measure_parity(models, parity_prompt)
            print(f"  parity: max abs logit diff {entry['parity']['max_abs_logit_diff']:.2e} on "
                  f"{plan['parity_prompt_tokens']} tokens", flush=True)
            print("  decode time per token against context length (RocLM):", flush=True)
            entry["context_scaling"] = measure_context_scaling(
                models["roclm"], plan["contexts"], plan["context_decode_tokens"])
            entry["recompute"] = measure_recompute(models["roclm"], prompt,
                                                   plan["recompute_tokens"])
            print(f"  recompute without cache: {entry['recompute']['seconds_per_token'] * 1000:.1f}"
                  " ms/token", flush=True)
        report["dtypes"][dtype_name] = entry
        del models
        gc.collect()
    return report


def evaluate_targets(devices: list[dict[str, Any]]) -> dict[str, Any]:
    """Compare the CPU results with the targets: 1.3x transformers decode, 75% of the roofline
    and at most 1.5x the per-token time at the long context."""
    cpu = next((report for report in devices if report["device"] == "cpu"), None)
    if cpu is None:
        return {}
    targets = {}
    for dtype_name, entry in cpu["dtypes"].items():
        targets[f"decode_ratio_{dtype_name}_at_least_1.3"] = entry["decode_ratio"] >= 1.3
        targets[f"roofline_fraction_{dtype_name}_at_least_0.75"] = (
            entry["roofline"]["roclm_fraction"] >= 0.75)
        if "context_scaling" in entry:
            targets["long_context_within_1.5x"] = (
                entry["context_scaling"]["long_over_short"] <= 1.5)
    return targets


def markdown_tables(result: dict[str, Any]) -> str:
    lines = ["| device | dtype | impl | prefill tok/s | decode tok/s | decode ratio | "
             "roofline tok/s | fraction of roofline |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for report in result["devices"]:
        for dtype_name, entry in report["dtypes"].items():
            for implementation in entry["implementations"]:
                numbers = entry["implementations"][implementation]
                ratio = f"{entry['decode_ratio']:.2f}x" if implementation == "roclm" else ""
                fraction = entry["roofline"][f"{implementation}_fraction"]
                lines.append(
                    f"| {report['device']} | {dtype_name} | {implementation} | "
                    f"{numbers['prefill_tokens_per_s']:.1f} | {numbers['decode_tokens_per_s']:.2f} | "
                    f"{ratio} | {entry['roofline']['roofline_tokens_per_s']:.2f} | "
                    f"{fraction:.0%} |")
    lines += ["", "| device | context | RocLM ms per decoded token |", "| --- | ---: | ---: |"]
    for report in result["devices"]:
        scaling = report["dtypes"].get("float32", {}).get("context_scaling")
        for row in (scaling or {}).get("rows", []):
            lines.append(f"| {report['device']} | {row['context']} | "
                         f"{row['seconds_per_token'] * 1000:.1f} |")
    return "\n".join(lines)


def resolve_devices(requested: str) -> list[str]:
    if requested == "auto":
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {requested} requested but CUDA is not available; use cpu "
                         "or auto")
    if requested != "cpu" and not requested.startswith("cuda"):
        raise ValueError(f"--device {requested!r} is invalid; use cpu, cuda or auto")
    return [requested]


def _machine_description() -> dict[str, Any]:
    cpu_model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu_model, "logical_cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_1min_at_start": os.getloadavg()[0],
            "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    mode = "quick" if args.quick else "full"
    plan = PLANS[mode]
    repeats = args.repeats if args.repeats is not None else plan["repeats"]
    try:
        devices = resolve_devices(args.device)
        if repeats < 1:
            raise ValueError(f"--repeats {repeats} is invalid; use 1 or more")
        if args.threads is not None:
            if args.threads < 1:
                raise ValueError(f"--threads {args.threads} is invalid; use 1 or more")
            torch.set_num_threads(args.threads)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()

    machine = _machine_description()
    print(f"benchmark {mode}: {plan['shape_name']}, {machine['cpu']}, "
          f"{machine['torch_threads']} threads, load average {machine['load_average_1min_at_start']:.1f}",
          flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="roclm_benchmark_", dir=args.work_dir) as temporary:
        checkpoint = Path(temporary)
        config = write_random_checkpoint(plan["shape"], checkpoint)
        reports = [run_device(device, plan, args.dtypes, checkpoint, config, repeats, args.quick,
                              args.pack_weights)
                   for device in devices]
    machine["load_average_1min_at_end"] = os.getloadavg()[0]

    settings = {"mode": mode, "shape_name": plan["shape_name"], "shape": plan["shape"],
                "prompt_tokens": plan["prompt_tokens"], "new_tokens": plan["new_tokens"],
                "batch_size": 1, "greedy": True, "repeats": repeats, "dtypes": args.dtypes,
                "devices": devices, "contexts": list(plan["contexts"]),
                "pack_weights": args.pack_weights,
                "weights": f"random normal(0, {WEIGHT_STD}), seed {SEED}, saved once and "
                           "loaded by both libraries"}
    result = {"profile": run_profile(), "mode": mode, "machine": machine, "devices": reports,
              "targets": evaluate_targets(reports),
              "seconds": round(time.perf_counter() - start, 1),
              "provenance": collect_provenance(settings, seed=SEED, device=devices[0])}
    write_json_atomic(args.output, result)
    print(markdown_tables(result))
    print(f"targets: {result['targets']}")
    print(f"wrote {args.output} in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
