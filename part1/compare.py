"""Compare the Part 1 runs side by side from their evaluation folders.

Reads EVAL_DIR/<model>_<mode>/metrics.json for the four runs (ResNet-50 and Swin-T, each in
feature extraction and full fine-tuning), tolerates any subset of them, and writes into the output
folder (EVAL_DIR by default):
  summary.csv, summary.json (the same rows plus provenance), summary.md (a Markdown table with a
  provenance section) and comparison_*.png.

Usage: python -m part1.compare --eval-dir evaluation/part1
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from part1.metrics import CONVERGENCE_TOLERANCE, epochs_to_convergence
from part1 import plots
from tools.provenance import (SMOKE_BANNER, collect_provenance, is_smoke, write_atomic,
                              write_json_atomic)

MODELS = ("resnet50", "swin_t")
MODES = ("feature_extraction", "finetune")
RUN_PARTS = {f"{model}_{mode}": (model, mode) for model in MODELS for mode in MODES}
RUNS = tuple(RUN_PARTS)
SUMMARY_COLUMNS = (
    "run", "model", "mode", "weights", "num_test_images", "top1", "top5", "macro_f1",
    "weighted_f1", "species_accuracy", "epochs_run", "best_epoch", "best_val_acc",
    "epochs_to_convergence", "mean_epoch_seconds", "mean_images_per_second",
    "peak_gpu_memory_mb", "trainable_parameters", "total_parameters", "image_size", "batch_size",
    "device", "profile",
)
# Keys every metrics.json must have for a row of the summary, as (section, key) pairs.
REQUIRED_KEYS = (
    (None, "weights"), ("test", "num_images"), ("test", "top1"), ("test", "top5"),
    ("test", "macro_f1"), ("training", "mean_epoch_seconds"),
    ("training", "mean_images_per_second"), ("training", "trainable_parameters"),
)
PLOT_FILES = {
    "accuracy": "comparison_accuracy.png",
    "macro_f1": "comparison_macro_f1.png",
    "epochs_to_convergence": "comparison_epochs_to_convergence.png",
    "epoch_seconds": "comparison_epoch_seconds.png",
    "val_accuracy": "comparison_val_accuracy.png",
}


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Compare the Part 1 runs: summary table, summary.json and side-by-side plots "
                    "from EVAL_DIR/<model>_<mode>/metrics.json.")
    parser.add_argument("--eval-dir", type=Path, default=Path("evaluation/part1"),
                        help="folder that contains one <model>_<mode>/metrics.json per evaluated "
                             "run (default: evaluation/part1)")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="folder for summary.csv, summary.md, summary.json and "
                             "comparison_*.png (default: the --eval-dir folder)")
    return parser


def _load_metrics(path: Path) -> dict:
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); rerun part1.evaluate for this "
                         "run") from None
    if not isinstance(metrics, dict):
        raise ValueError(f"{path} must contain a JSON object, got {type(metrics).__name__}")

    for section, key in REQUIRED_KEYS:
        block = metrics if section is None else metrics.get(section)
        if not isinstance(block, dict) or key not in block:
            name = key if section is None else f"{section}.{key}"
            raise ValueError(f"{path} is missing the key {name!r}; rerun part1.evaluate for "
                             "this run")
    return metrics


def load_runs(eval_dir: str | Path) -> tuple[dict[str, dict], list[str]]:
    """Load the metrics.json of each run present under eval_dir, in the fixed run order.

    Returns (metrics by run name, names of the runs without a metrics.json). Raises
    FileNotFoundError when eval_dir or all four metrics.json files are missing.
    """
    eval_dir = Path(eval_dir)
    if not eval_dir.is_dir():
        raise FileNotFoundError(f"evaluation folder {eval_dir} not found; run part1.evaluate "
                                "first or pass the folder with --eval-dir")
    found, missing = {}, []
    for run in RUNS:
        path = eval_dir / run / "metrics.json"
        if path.is_file():
            found[run] = _load_metrics(path)
        else:
            missing.append(run)
    if not found:
        expected = ", ".join(f"{run}/metrics.json" for run in RUNS)
        raise FileNotFoundError(f"no run to compare in {eval_dir}: expected at least one of "
                                f"{expected}; run part1.evaluate first")
    return found, missing


def _run_epochs_to_convergence(metrics: Mapping) -> int | None:
    """Return training.epochs_to_convergence, or compute it from the history when it is absent."""
    value = metrics.get("training", {}).get("epochs_to_convergence")
    if value is not None:
        return int(value)
    val_accs = [row.get("val_acc") for row in metrics.get("history") or []]
    val_accs = [math.nan if acc is None else float(acc) for acc in val_accs]
    if not any(math.isfinite(acc) for acc in val_accs):
        return None
    return epochs_to_convergence(val_accs, CONVERGENCE_TOLERANCE)


def summary_row(run: str, metrics: Mapping) -> dict:
    """Flatten one run's metrics.json into a row with the SUMMARY_COLUMNS keys."""
    test = metrics["test"]
    training = metrics["training"]
    provenance = metrics.get("provenance") or {}
    model, mode = RUN_PARTS[run]
    return {
        "run": run,
        "model": metrics.get("model", model),
        "mode": metrics.get("mode", mode),
        "weights": metrics["weights"],
        "num_test_images": test["num_images"],
        "top1": test["top1"],
        "top5": test["top5"],
        "macro_f1": test["macro_f1"],
        "weighted_f1": test.get("weighted_f1"),
        "species_accuracy": test.get("species_accuracy"),
        "epochs_run": training.get("epochs_run"),
        "best_epoch": training.get("best_epoch"),
        "best_val_acc": training.get("best_val_acc"),
        "epochs_to_convergence": _run_epochs_to_convergence(metrics),
        "mean_epoch_seconds": training["mean_epoch_seconds"],
        "mean_images_per_second": training["mean_images_per_second"],
        "peak_gpu_memory_mb": training.get("peak_gpu_memory_mb"),
        "trainable_parameters": training["trainable_parameters"],
        "total_parameters": training.get("total_parameters"),
        "image_size": training.get("image_size"),
        "batch_size": training.get("batch_size"),
        "device": provenance.get("device"),
        "profile": provenance.get("profile"),
    }


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100.0 * float(value):.2f}%"


def _number(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{float(value):,.{digits}f}"


def _markdown_cell(value) -> str:
    # A literal "|" would end the table cell early.
    return str(value).replace("|", "\\|")


def summary_markdown(rows: Sequence[Mapping], missing: Sequence[str], provenance: Mapping,
                     run_provenance: Mapping[str, Mapping], eval_dir: Path, smoke: bool) -> str:
    """Build summary.md: the comparison table, notes on definitions and a provenance section."""
    lines = [SMOKE_BANNER, ""] if smoke else []
    lines += ["# Part 1: comparison of the runs", ""]
    lines += ["| run | weights | test top-1 | test top-5 | macro F1 | epochs to convergence "
              "| mean s/epoch | images/s | trainable params |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        epochs = row["epochs_to_convergence"]
        epochs_text = "n/a" if epochs is None else f"{epochs} of {row['epochs_run'] or '?'}"
        trainable = row["trainable_parameters"]
        lines.append("| " + " | ".join(_markdown_cell(cell) for cell in (
            row["run"], row["weights"], _percent(row["top1"]), _percent(row["top5"]),
            _percent(row["macro_f1"]), epochs_text, _number(row["mean_epoch_seconds"]),
            _number(row["mean_images_per_second"]),
            "n/a" if trainable is None else f"{int(trainable):,}")) + " |")
    lines.append("")
    if missing:
        lines += [f"Missing runs (no metrics.json under {eval_dir}): {', '.join(missing)}.", ""]
    lines += [
        "Top-1, top-5 and macro F1 are measured once on the test split, with the checkpoint "
        "that had the best validation accuracy. Epochs to convergence is the first epoch whose "
        f"validation accuracy is within {100 * CONVERGENCE_TOLERANCE:g} points of the run's "
        "best. Seconds per epoch and images/s are training-time means over all epochs.",
        "",
        "## Provenance",
        "",
        f"- Summary written {provenance['date_utc']} at git commit {provenance['git_commit']}, "
        f"profile {provenance['profile']}.",
        "",
        "| run | profile | device | seed | git commit | date (UTC) |",
        "|---|---|---|---:|---|---|",
    ]
    for run, run_prov in run_provenance.items():
        cells = [run] + [run_prov.get(key, "unknown")
                         for key in ("profile", "device", "seed", "git_commit", "date_utc")]
        lines.append("| " + " | ".join(_markdown_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def _summary_csv(rows: Sequence[Mapping]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row[key] is None else row[key] for key in SUMMARY_COLUMNS})
    return buffer.getvalue()


def _percentages(rows: Sequence[Mapping], key: str) -> list[float | None]:
    return [None if row[key] is None else 100.0 * row[key] for row in rows]


def write_comparison_plots(rows: Sequence[Mapping], runs: Mapping[str, Mapping],
                           output_dir: Path, smoke: bool) -> list[Path]:
    """Write the comparison_*.png files and return their paths."""
    names = [row["run"] for row in rows]
    paths = []

    def bars(kind, series, title, ylabel, integer_axis=False):
        path = output_dir / PLOT_FILES[kind]
        plots.plot_grouped_bars(names, series, path, title, ylabel,
                                value_format="{:.0f}" if integer_axis else "{:.1f}",
                                integer_axis=integer_axis, smoke=smoke)
        paths.append(path)

    bars("accuracy", {"top-1": _percentages(rows, "top1"), "top-5": _percentages(rows, "top5")},
         "Test accuracy by run", "accuracy (%)")
    bars("macro_f1", {"macro F1": _percentages(rows, "macro_f1")}, "Test macro F1 by run",
         "macro F1 (%)")
    bars("epochs_to_convergence",
         {"epochs to convergence": [row["epochs_to_convergence"] for row in rows]},
         f"Epochs to within {100 * CONVERGENCE_TOLERANCE:g} points of the best validation "
         "accuracy", "epochs", integer_axis=True)
    bars("epoch_seconds", {"mean seconds per epoch": [row["mean_epoch_seconds"] for row in rows]},
         "Mean training seconds per epoch", "seconds")

    curves = {run: metrics["history"] for run, metrics in runs.items() if metrics.get("history")}
    if curves:
        path = output_dir / PLOT_FILES["val_accuracy"]
        plots.plot_validation_curves(curves, path, "Validation accuracy per epoch", smoke=smoke)
        paths.append(path)
    return paths


def write_summary(eval_dir: str | Path, output_dir: str | Path | None = None) -> dict:
    """Write summary.csv, summary.json, summary.md and the comparison plots; return summary.json.

    The outputs are marked SMOKE when RUN_PROFILE=smoke or when any input run's provenance
    profile is "smoke", because a comparison of smoke runs is itself not a result.
    """
    eval_dir = Path(eval_dir)
    output_dir = eval_dir if output_dir is None else Path(output_dir)
    runs, missing = load_runs(eval_dir)
    rows = [summary_row(run, metrics) for run, metrics in runs.items()]
    run_provenance = {run: metrics.get("provenance") or {} for run, metrics in runs.items()}
    smoke = is_smoke() or any(prov.get("profile") == "smoke" for prov in run_provenance.values())

    provenance = collect_provenance(settings={"eval_dir": str(eval_dir),
                                              "output_dir": str(output_dir)})
    if smoke:
        provenance["profile"] = "smoke"
    plot_paths = write_comparison_plots(rows, runs, output_dir, smoke)
    summary = {
        "profile": provenance["profile"],
        "runs": rows,
        "missing_runs": missing,
        "plots": [path.name for path in plot_paths],
        "run_provenance": run_provenance,
        "provenance": provenance,
    }
    write_atomic(output_dir / "summary.csv", _summary_csv(rows))
    write_json_atomic(output_dir / "summary.json", summary)
    write_atomic(output_dir / "summary.md",
                 summary_markdown(rows, missing, provenance, run_provenance, eval_dir, smoke))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        summary = write_summary(args.eval_dir, args.output_dir)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    output_dir = args.eval_dir if args.output_dir is None else args.output_dir
    missing = ", ".join(summary["missing_runs"]) or "none"
    print(f"compared {len(summary['runs'])} runs (missing: {missing}); wrote summary.csv, "
          f"summary.json, summary.md and {len(summary['plots'])} plots to {output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
