"""Hand-made evaluation/ trees for the run-all tests, with values that are easy to trace."""
from __future__ import annotations

import json
from pathlib import Path

from tools.make_report import RUNS
from tools.provenance import SMOKE_BANNER

PROVENANCE = {"profile": "smoke", "git_commit": "test", "settings": {"epochs": 3, "lr": 0.001}}


def run_metrics(run: str, index: int) -> dict:
    """Return a metrics.json for RUN whose numbers depend on INDEX, so runs differ."""
    model, mode = run.split("_", 1) if run.startswith("resnet50") else ("swin_t", run[len("swin_t_"):])
    return {
        "run": run, "model": model, "mode": mode, "weights": f"weights-{index}",
        "test": {"num_images": 100 + index, "top1": 0.5 + index / 10, "top5": 0.9,
                 "macro_precision": 0.41, "macro_recall": 0.42, "macro_f1": 0.4 + index / 100,
                 "weighted_precision": 0.5, "weighted_recall": 0.5, "weighted_f1": 0.5,
                 "species_accuracy": 0.95, "species_confusion": [[40, 2], [3, 55]],
                 "most_confused_pairs": [{"true": "beagle", "predicted": "basset_hound",
                                          "count": 4}],
                 "classes_without_test_images": []},
        "training": {"epochs_run": 3, "best_epoch": 2, "best_val_acc": 0.6,
                     "epochs_to_convergence": index + 1, "mean_epoch_seconds": 10.0 * (index + 1),
                     "mean_images_per_second": 33.3, "peak_gpu_memory_mb": None,
                     "trainable_parameters": 75_813, "total_parameters": 23_583_845,
                     "image_size": 64, "batch_size": 16},
        "history": [],
        "provenance": PROVENANCE,
    }


def part1_benchmark() -> dict:
    """Return a benchmark.json in the structure that part1.benchmark writes, with values that
    differ per row."""
    training = []
    for index, (model, mode) in enumerate([("resnet50", "feature_extraction"),
                                           ("resnet50", "finetune"),
                                           ("swin_t", "feature_extraction"),
                                           ("swin_t", "finetune")]):
        images_per_second = 40.0 + 10 * index
        training.append({
            "device": "cpu", "model": model, "mode": mode, "precision": "float32",
            "image_size": 224, "batch_size": 32, "timed_batches": 3, "timed_images": 96,
            "seconds": 96 / images_per_second, "images_per_second": images_per_second,
            "epoch_seconds_estimate": 3312 / images_per_second,
            "trainable_parameters": 1000 + index, "total_parameters": 2_000_000 + index})
    loading = [{"num_workers": 0, "batch_size": 32, "timed_batches": 10, "timed_images": 320,
                "seconds": 1.25, "images_per_second": 256.0},
               {"num_workers": 2, "batch_size": 32, "timed_batches": 10, "timed_images": 320,
                "seconds": 2.5, "images_per_second": 128.0}]
    cache = [{"device": "cpu", "model": "resnet50", "extraction_images_per_second": 9.5,
              "cache_build_seconds_estimate": 387.5, "recompute_epoch_seconds_estimate": 82.8,
              "cached_epoch_seconds": 0.0625, "cached_epoch_images": 3312, "speedup": 1324.8,
              "speedup_target": 100.0, "target_met": True},
             {"device": "cpu", "model": "swin_t", "extraction_images_per_second": 8.5,
              "cache_build_seconds_estimate": 433.0, "recompute_epoch_seconds_estimate": 55.2,
              "cached_epoch_seconds": 0.75, "cached_epoch_images": 3312, "speedup": 73.6,
              "speedup_target": 100.0, "target_met": False}]
    best_loader = loading[0]
    comparisons = [{"device": row["device"], "model": row["model"], "mode": row["mode"],
                    "training_images_per_second": row["images_per_second"],
                    "loader_images_per_second": best_loader["images_per_second"],
                    "loader_num_workers": 0,
                    "loader_to_training_ratio": 256.0 / row["images_per_second"],
                    "loader_keeps_up": True} for row in training]
    return {
        "benchmark": "part1 training throughput", "quick": False, "profile": "full",
        "config": {"image_size": 224, "batch_size": 32, "warmup_batches": 1, "timed_batches": 3,
                   "loader_batches": 10, "num_workers": [0, 2],
                   "weights": "random init (--no-pretrained)",
                   "data_source": "--data-dir /data/pets",
                   "dataset_train_images": 333, "epoch_train_images": 3312,
                   "epoch_seconds_method": "3312 training images divided by images/s"},
        "system": {"cpu": "Test CPU", "logical_cores": 2, "torch_threads": 1,
                   "torch_version": "2.14.1", "cuda_device": None,
                   "load_average_start": [3.53, 3.88, 3.89],
                   "load_average_end": [3.44, 3.56, 3.76]},
        "training": training, "data_loading": loading, "feature_cache": cache,
        "loader_vs_training": comparisons,
        "provenance": PROVENANCE,
    }


def write_evaluation(eval_dir: Path, runs=RUNS, part2: bool = True,
                     benchmark: bool = True) -> dict[str, dict]:
    """Write metrics.json for RUNS, part1/benchmark.json from part1_benchmark() when BENCHMARK and
    the Part 2 artifacts of part2_inputs() when PART2 into EVAL_DIR; return the metrics."""
    written = {}
    if benchmark:
        path = eval_dir / "part1" / "benchmark.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(part1_benchmark()))
    for index, run in enumerate(RUNS):
        if run not in runs:
            continue
        metrics = run_metrics(run, index)
        path = eval_dir / "part1" / run / "metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(metrics))
        written[run] = metrics
    if part2:
        part2_dir = eval_dir / "part2"
        part2_dir.mkdir(parents=True, exist_ok=True)
        for name, content in part2_inputs().items():
            path = part2_dir / name
            path.write_text(content if isinstance(content, str) else json.dumps(content))
    return written


def part2_inputs() -> dict[str, object]:
    """Return Part 2 artifacts in the formats that verify_parity, benchmark, generate and the
    Tokenizer Lab write, keyed by file name."""
    parity = {
        "profile": "smoke", "all_passed": False, "seconds": 7.3,
        "checks": [
            {"check": "float32 logits", "max_abs_logit_diff": 3.5e-6, "tolerance": 1e-5,
             "max_abs_logit": 3.2, "passed": True, "greedy_tokens": 32,
             "greedy_tokens_equal": True, "first_differing_token": None,
             "config": "gqa2_head_dim24_untied"},
            {"check": "float32 logits, explicit attention", "max_abs_logit_diff": 1.25e-6,
             "tolerance": 1e-5, "max_abs_logit": 3.2, "passed": True,
             "config": "gqa2_head_dim24_untied"},
            {"check": "bfloat16 logits", "max_abs_logit_diff": 0.25, "tolerance": 0.1,
             "max_abs_logit": 9.0, "passed": False, "greedy_tokens": 8,
             "greedy_tokens_equal": False, "first_differing_token": 5, "config": "checkpoint x"},
        ],
        "provenance": PROVENANCE}

    def implementations(prefill: float, decode: float) -> dict:
        return {"roclm": {"prefill_tokens_per_s": prefill, "decode_tokens_per_s": decode,
                          "runs": []},
                "transformers": {"prefill_tokens_per_s": prefill / 2,
                                 "decode_tokens_per_s": decode / 1.25, "runs": []}}

    benchmark = {
        "profile": "smoke", "mode": "quick", "seconds": 39.4,
        "machine": {"cpu": "Test CPU", "logical_cores": 2, "torch_threads": 2,
                    "load_average_1min_at_start": 1.5, "cuda_device": None,
                    "load_average_1min_at_end": 2.5},
        "devices": [{
            "device": "cpu",
            "bandwidth": {"buffer_bytes": 2**30, "read_gb_per_s": 36.75, "copy_gb_per_s": 15.25},
            "dtypes": {
                "float32": {
                    "roclm_weights": "packed for oneDNN",
                    "implementations": {**implementations(126.5, 15.25),
                                        "roclm_dense": {"prefill_tokens_per_s": 63.5,
                                                        "decode_tokens_per_s": 10.75,
                                                        "runs": []}},
                    "decode_ratio": 1.25, "prefill_ratio": 2.0,
                    "roofline": {"bytes_per_token": 168_500_000, "average_context": 48,
                                 "roofline_tokens_per_s": 218.0, "roclm_fraction": 0.07,
                                 "transformers_fraction": 0.056,
                                 "roclm_dense_fraction": 0.049},
                    "parity": {"prompt_tokens": 32, "max_abs_logit_diff": 2.5e-7,
                               "max_abs_logit": 2.0},
                    "context_scaling": {"rows": [{"context": 16, "seconds_per_token": 0.0785},
                                                 {"context": 1024, "seconds_per_token": 0.0875}],
                                        "long_over_short": 1.11},
                    "recompute": {"context": 32, "tokens": 4, "seconds_per_token": 0.2825}},
                "bfloat16": {
                    "implementations": implementations(309.5, 7.25),
                    "decode_ratio": 1.25, "prefill_ratio": 2.0,
                    "roofline": {"bytes_per_token": 84_250_000, "average_context": 48,
                                 "roofline_tokens_per_s": 436.0, "roclm_fraction": 0.0166,
                                 "transformers_fraction": 0.0133}}}}],
        "targets": {"decode_ratio_float32_at_least_1.3": False,
                    "roofline_fraction_float32_at_least_0.75": False,
                    "long_context_within_1.5x": True},
        "provenance": {**PROVENANCE, "settings": {
            "shape_name": "quick", "prompt_tokens": 32, "new_tokens": 32, "repeats": 1,
            "weights": "random normal(0, 0.02)"}}}

    id_analysis = {
        "profile": "smoke", "student_id": "20231234", "student_id_source": "test",
        "student_id_is_example": False,
        "tokenizer": {"kind": "test BPE", "base_vocab_size": 4096, "total_tokens": 4122},
        "token_count": 8, "ids": [17, 15, 17, 18, 16, 17, 18, 19],
        "tokens": list("20231234"), "pieces": list("20231234"), "digit_count": 8,
        "one_token_per_digit": True,
        "contexts": [{"context": "ID:{id}", "text": "ID:20231234", "total_tokens": 10,
                      "id_tokens": list("20231234"), "id_token_count": 8, "same_as_alone": True},
                     {"context": " {id}", "text": " 20231234", "total_tokens": 9,
                      "id_tokens": ["\u01202", "0", "2", "3", "1", "2", "3", "4"],
                      "id_token_count": 8, "same_as_alone": False}],
        "formats": [{"format": "plain", "text": "20231234", "token_count": 8,
                     "tokens": list("20231234")},
                    {"format": "dashes", "text": "2023-1234", "token_count": 9,
                     "tokens": list("2023-1234")}],
        "scratch_bpe": {
            "corpus": "test corpus",
            "tokenizers": {"BPE 1000": {"token_count": 8, "tokens": list("20231234")},
                           "BPE 8000, digits kept together": {"token_count": 3,
                                                              "tokens": ["202", "3", "1234"]}},
            "fertility": [
                {"tokenizer": "BPE 1000", "text": "code", "tokens": 33, "words": 11,
                 "characters": 56, "tokens_per_word": 3.0, "tokens_per_character": 0.589},
                {"tokenizer": "BPE 1000", "text": "Chinese", "tokens": 69, "words": 1,
                 "characters": 23, "tokens_per_word": 69.0, "tokens_per_character": 3.0},
                {"tokenizer": "BPE 8000", "text": "code", "tokens": 26, "words": 11,
                 "characters": 56, "tokens_per_word": 2.364, "tokens_per_character": 0.464}]},
        "provenance": PROVENANCE}

    provenance_section = ("## Provenance\n\n```json\n"
                          + json.dumps({"git_commit": "0123456789abcdef", "date_utc": "2026-01-02",
                                        "settings": {"secret_marker": "PROVENANCE-ONLY"}},
                                       indent=2) + "\n```\n")
    samples = (SMOKE_BANNER + "\n\n# SMOKE: Generation samples\n\n"
               "- Model: `/models/tiny_model` (0.4M parameters)\n- Device: cpu, dtype bfloat16\n\n"
               "| Sample | Mode | Prompt tokens | Tokens/s |\n|---|---|---:|---:|\n"
               "| Completion | completion | 10 | 111.8 |\n\n"
               "## Completion\n\nSettings: temperature 0.7, max 24 new tokens.\n\n"
               "Prompt (as the model sees it):\n\n```text\nThe three primary colors\n```\n\n"
               "Output:\n\n```text\nHello \u4e16\u754c & 100% \\end{lstlisting} " + "x" * 200
               + "\n```\n\nSpeed: generated 24 tokens in 0.21 s (111.8 tokens/s).\n\n"
               "## Long\n\n```text\n" + "".join(f"line {index}\n" for index in range(40))
               + "```\n\n" + provenance_section)
    chat = ("# Chat\n\n## Turn 1: thinking on\n\nUser: What is 2 + 3?\n\n"
            "```text\nReasoning:\n<think>...</think>\n\nAnswer:\n5\n```\n\n"
            "Settings: temperature 0.6. Speed: generated 4 tokens in 0.1 s.\n\n"
            + provenance_section)
    return {"parity.json": parity, "benchmark.json": benchmark, "id_analysis.json": id_analysis,
            "generation_samples.md": samples, "chat_transcript.md": chat}
