"""Hand-made evaluation/ trees for the run-all tests, with values that are easy to trace."""
from __future__ import annotations

import json
from pathlib import Path

from tools.make_report import RUNS

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


def write_evaluation(eval_dir: Path, runs=RUNS, part2: bool = True) -> dict[str, dict]:
    """Write metrics.json for RUNS (and Part 2 JSON when PART2) into EVAL_DIR; return them."""
    written = {}
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
        (part2_dir / "parity.json").write_text(json.dumps({
            "checks": [{"name": "gqa2", "max_abs_diff": 3.5e-6, "passed": True},
                       {"name": "gqa4", "max_abs_diff": 1.25e-6, "passed": True}],
            "provenance": PROVENANCE}))
        (part2_dir / "benchmark.json").write_text(json.dumps({
            "float32": {"decode_tokens_per_second": 12.5, "ratio": 1.4},
            "provenance": PROVENANCE}))
        (part2_dir / "id_analysis.json").write_text(json.dumps({
            "student_id": "20231234", "token_count": 8, "provenance": PROVENANCE}))
        (part2_dir / "generation_samples.md").write_text("# Samples\n\nHello \u4e16\u754c & 100%\n")
        (part2_dir / "chat_transcript.md").write_text("# Chat\n\n<think>...</think>\n")
    return written
