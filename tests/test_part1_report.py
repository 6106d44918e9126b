"""part1.plots writes every figure, and part1.compare summarizes generated metrics.json files."""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT
from part1 import compare, plots
from part1.metrics import epochs_to_convergence
from tools.provenance import SMOKE_BANNER

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLASS_NAMES = [f"breed_{index:02d}" for index in range(37)]
HISTORY = [{"epoch": epoch, "train_loss": 3.0 / epoch, "train_acc": 0.2 * epoch,
            "val_loss": 3.2 / epoch, "val_acc": acc, "lr": 1e-3, "epoch_seconds": 10.0,
            "images_per_second": 300.0}
           for epoch, acc in enumerate([0.40, 0.61, 0.702, 0.70, 0.705], start=1)]


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > 1000, path


def _per_class_rows():
    rng = np.random.default_rng(0)
    return [{"class": name, "species": "cat" if index < 12 else "dog",
             "precision": float(value), "recall": float(value), "f1": float(value),
             "support": 0 if index == 5 else 10}
            for index, (name, value) in enumerate(zip(CLASS_NAMES, rng.random(37)))]


def _misclassified_items(count):
    rng = np.random.default_rng(1)
    return [{"image": Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)),
             "true": "american_pit_bull_terrier", "predicted": "staffordshire_bull_terrier",
             "confidence": 0.42} for _ in range(count)]


PLOT_CASES = {
    "confusion_matrix": lambda path: plots.plot_confusion_matrix(
        np.random.default_rng(2).integers(0, 5, (37, 37)), CLASS_NAMES, path, "Confusion"),
    "confusion_matrix_small": lambda path: plots.plot_confusion_matrix(
        [[3, 1], [0, 4]], ["cat_breed", "dog_breed"], path, "Confusion"),
    "training_curves": lambda path: plots.plot_training_curves(HISTORY, path, "Curves"),
    "training_curves_one_epoch": lambda path: plots.plot_training_curves(
        HISTORY[:1], path, "Curves"),
    "per_class_f1": lambda path: plots.plot_per_class_f1(_per_class_rows(), path, "F1"),
    "misclassified": lambda path: plots.plot_misclassified(_misclassified_items(6), path,
                                                           "Errors"),
    "misclassified_empty": lambda path: plots.plot_misclassified([], path, "Errors"),
    "grouped_bars": lambda path: plots.plot_grouped_bars(
        ["run_a", "run_b"], {"top-1": [80.0, None], "top-5": [95.0, 96.0]}, path, "Bars", "%"),
    "validation_curves": lambda path: plots.plot_validation_curves(
        {"run_a": HISTORY, "run_b": HISTORY[:3]}, path, "Curves"),
}


@pytest.mark.parametrize("profile", ["full", "smoke"])
@pytest.mark.parametrize("case", sorted(PLOT_CASES))
def test_plot_writes_png(tmp_path, monkeypatch, case, profile):
    monkeypatch.setenv("RUN_PROFILE", profile)
    path = tmp_path / f"{case}.png"
    figure = PLOT_CASES[case](path)

    _assert_png(path)
    assert figure.get_suptitle().startswith("SMOKE: ") == (profile == "smoke")


def test_profile_title_prefix_once(monkeypatch):
    monkeypatch.setenv("RUN_PROFILE", "smoke")
    assert plots.profile_title("Accuracy") == "SMOKE: Accuracy"
    assert plots.profile_title("SMOKE: Accuracy") == "SMOKE: Accuracy"
    assert plots.profile_title("Accuracy", smoke=False) == "Accuracy"
    monkeypatch.setenv("RUN_PROFILE", "full")
    assert plots.profile_title("Accuracy", smoke=True) == "SMOKE: Accuracy"


def test_training_curves_mark_epochs(tmp_path):
    figure = plots.plot_training_curves(HISTORY, tmp_path / "curves.png", "Curves")
    legend_texts = [text.get_text() for text in figure.axes[1].get_legend().get_texts()]
    converged = epochs_to_convergence([row["val_acc"] for row in HISTORY])

    assert converged == 3
    assert "best epoch (5)" in legend_texts
    assert any(text.startswith(f"convergence ({converged},") for text in legend_texts)


def test_per_class_f1_sorted(tmp_path):
    rows = _per_class_rows()
    figure = plots.plot_per_class_f1(rows, tmp_path / "f1.png", "F1")
    labels = [label.get_text() for label in figure.axes[0].get_yticklabels()]
    # barh draws the first row at the bottom, so the labels read from worst to best.
    expected = [row["class"] for row in sorted(rows, key=lambda row: row["f1"])]

    assert labels == expected


def _metrics_json(run, top1, profile="full", seconds=12.5, history=HISTORY):
    model, mode = compare.RUN_PARTS[run]
    return {
        "run": run, "model": model, "mode": mode, "weights": f"timm/{model}.test_weights",
        "test": {"num_images": 370, "top1": top1, "top5": min(1.0, top1 + 0.1),
                 "macro_precision": top1, "macro_recall": top1, "macro_f1": top1 - 0.01,
                 "weighted_precision": top1, "weighted_recall": top1, "weighted_f1": top1,
                 "species_accuracy": 0.99, "species_confusion": [[100, 2], [1, 267]],
                 "most_confused_pairs": [], "classes_without_test_images": []},
        "training": {"epochs_run": len(history), "best_epoch": 5, "best_val_acc": 0.705,
                     "epochs_to_convergence": epochs_to_convergence(
                         [row["val_acc"] for row in history]),
                     "mean_epoch_seconds": seconds, "mean_images_per_second": 250.0,
                     "peak_gpu_memory_mb": None, "trainable_parameters": 75_813,
                     "total_parameters": 23_583_845, "image_size": 224, "batch_size": 32},
        "history": history,
        "provenance": {"profile": profile, "device": "cpu (x86_64, 2 logical cores)",
                       "seed": 0, "git_commit": "abc123", "date_utc": "2025-01-01T00:00:00+00:00"},
    }


def _write_runs(eval_dir, runs):
    for index, run in enumerate(runs):
        path = eval_dir / run / "metrics.json"
        path.parent.mkdir(parents=True)
        profile = runs[run] if isinstance(runs, dict) else "full"
        path.write_text(json.dumps(_metrics_json(run, 0.5 + 0.1 * index, profile,
                                                 seconds=10.0 + index)))


def test_compare_writes_all_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("RUN_PROFILE", "full")
    _write_runs(tmp_path, compare.RUNS)
    summary = compare.write_summary(tmp_path)

    for name in ("summary.csv", "summary.md", "summary.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    for name in compare.PLOT_FILES.values():
        _assert_png(tmp_path / name)
    assert summary["missing_runs"] == []
    assert summary["profile"] == "full"

    with open(tmp_path / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["run"] for row in rows] == list(compare.RUNS)
    for index, row in enumerate(rows):
        assert float(row["top1"]) == pytest.approx(0.5 + 0.1 * index)
        assert float(row["macro_f1"]) == pytest.approx(0.49 + 0.1 * index)
        assert float(row["mean_epoch_seconds"]) == pytest.approx(10.0 + index)
        assert int(row["epochs_to_convergence"]) == 3
        assert int(row["trainable_parameters"]) == 75_813

    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["runs"] == summary["runs"]
    assert written["provenance"]["profile"] == "full"


def test_compare_markdown_table(tmp_path, monkeypatch):
    monkeypatch.setenv("RUN_PROFILE", "full")
    _write_runs(tmp_path, compare.RUNS[:1])
    compare.write_summary(tmp_path)
    markdown = (tmp_path / "summary.md").read_text()
    first_row = ("| resnet50_feature_extraction | timm/resnet50.test_weights | 50.00% | 60.00% "
                 "| 49.00% | 3 of 5 | 10.0 | 250.0 | 75,813 |")

    assert not markdown.startswith(SMOKE_BANNER)
    assert first_row in markdown
    assert "## Provenance" in markdown


def test_compare_names_missing_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("RUN_PROFILE", "full")
    present = [compare.RUNS[0], compare.RUNS[3]]
    _write_runs(tmp_path, present)
    summary = compare.write_summary(tmp_path)
    markdown = (tmp_path / "summary.md").read_text()

    assert [row["run"] for row in summary["runs"]] == present
    assert summary["missing_runs"] == [compare.RUNS[1], compare.RUNS[2]]
    assert f"{compare.RUNS[1]}, {compare.RUNS[2]}" in markdown
    _assert_png(tmp_path / compare.PLOT_FILES["val_accuracy"])


def test_compare_smoke_input_marks_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("RUN_PROFILE", "full")
    _write_runs(tmp_path, {compare.RUNS[0]: "full", compare.RUNS[1]: "smoke"})
    titles = []
    original = plots.plot_grouped_bars

    def recording_plot(*args, **kwargs):
        figure = original(*args, **kwargs)
        titles.append(figure.get_suptitle())
        return figure

    monkeypatch.setattr(plots, "plot_grouped_bars", recording_plot)
    summary = compare.write_summary(tmp_path)

    assert (tmp_path / "summary.md").read_text().startswith(SMOKE_BANNER)
    assert summary["profile"] == "smoke"
    assert json.loads((tmp_path / "summary.json").read_text())["provenance"]["profile"] == "smoke"
    assert titles
    assert all(title.startswith("SMOKE: ") for title in titles)


def test_compare_smoke_profile_banner(tmp_path, monkeypatch):
    monkeypatch.setenv("RUN_PROFILE", "smoke")
    _write_runs(tmp_path, compare.RUNS[:1])
    compare.write_summary(tmp_path)
    assert (tmp_path / "summary.md").read_text().startswith(SMOKE_BANNER)


def test_compare_convergence_from_history(tmp_path):
    metrics = _metrics_json(compare.RUNS[0], 0.5)
    metrics["training"]["epochs_to_convergence"] = None
    assert compare.summary_row(compare.RUNS[0], metrics)["epochs_to_convergence"] == 3


def test_compare_rejects_incomplete_metrics(tmp_path):
    path = tmp_path / compare.RUNS[0] / "metrics.json"
    path.parent.mkdir()
    metrics = _metrics_json(compare.RUNS[0], 0.5)
    del metrics["test"]["macro_f1"]
    path.write_text(json.dumps(metrics))
    with pytest.raises(ValueError, match="test.macro_f1"):
        compare.write_summary(tmp_path)

    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        compare.write_summary(tmp_path)


def test_compare_cli_without_runs(tmp_path):
    result = subprocess.run([sys.executable, "-m", "part1.compare", "--eval-dir", str(tmp_path)],
                            cwd=REPO_ROOT, capture_output=True, text=True)

    assert result.returncode == 2
    assert "no run to compare" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "summary.md").exists()


def test_compare_cli_writes_summary(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RUN_PROFILE", "full")
    _write_runs(tmp_path, compare.RUNS[:2])
    output_dir = tmp_path / "out"

    assert compare.main(["--eval-dir", str(tmp_path), "--output-dir", str(output_dir)]) == 0
    assert "compared 2 runs" in capsys.readouterr().out
    assert (output_dir / "summary.md").is_file()
