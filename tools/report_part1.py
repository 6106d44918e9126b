"""Part 1 sections of the report: per-run macros, the results and recipe tables, the sentences
and error analysis that state the results, and the figures of each run."""
from __future__ import annotations

from typing import Any

from tools.report_latex import (NOT_RUN, Report, figure, fmt_millions, fmt_number, fmt_percent,
                                latex_escape)

RUNS = ("resnet50_feature_extraction", "resnet50_finetune",
        "swin_t_feature_extraction", "swin_t_finetune")
RUN_MACRO = {"resnet50_feature_extraction": "ResNetFE", "resnet50_finetune": "ResNetFT",
             "swin_t_feature_extraction": "SwinFE", "swin_t_finetune": "SwinFT"}
RUN_LABEL = {"resnet50_feature_extraction": "ResNet-50, feature extraction",
             "resnet50_finetune": "ResNet-50, fine-tuning",
             "swin_t_feature_extraction": "Swin-T, feature extraction",
             "swin_t_finetune": "Swin-T, fine-tuning"}
MODEL_LABEL = {"resnet50": "ResNet-50", "swin_t": "Swin-T"}
RUN_FIGURES = ("training_curves", "confusion_matrix", "per_class_f1", "misclassified")
# Settings worth showing in the recipe table, when the run recorded them.
RECIPE_KEYS = ("epochs", "batch_size", "image_size", "lr", "backbone_lr", "weight_decay",
               "warmup_epochs", "label_smoothing", "clip_grad_norm", "patience", "val_fraction",
               "cached_features", "max_train_batches", "seed")


# Part 1

def define_run_macros(report: Report, run: str, metrics: dict[str, Any] | None) -> None:
    prefix = RUN_MACRO[run]
    test = (metrics or {}).get("test", {})
    training = (metrics or {}).get("training", {})
    missing = metrics is None

    def number(source: dict[str, Any], key: str, digits: int = 1) -> str:
        if missing or source.get(key) is None:
            return NOT_RUN if missing else "--"
        return fmt_number(source[key], digits)

    for key, name in (("top1", "TopOne"), ("top5", "TopFive"), ("macro_f1", "MacroFOne"),
                      ("macro_precision", "MacroPrecision"), ("macro_recall", "MacroRecall"),
                      ("weighted_f1", "WeightedFOne"), ("species_accuracy", "SpeciesAcc")):
        report.define(prefix + name, fmt_percent(test.get(key)) if not missing else NOT_RUN)
    report.define(prefix + "BestValAcc",
                  fmt_percent(training.get("best_val_acc")) if not missing else NOT_RUN)
    report.define(prefix + "TestImages", number(test, "num_images"))
    report.define(prefix + "TrainImages", number(training, "train_images"))
    report.define(prefix + "ValImages", number(training, "val_images"))
    report.define(prefix + "EpochsRun", number(training, "epochs_run"))
    report.define(prefix + "BestEpoch", number(training, "best_epoch"))
    report.define(prefix + "EpochsConv", number(training, "epochs_to_convergence"))
    report.define(prefix + "SecPerEpoch", number(training, "mean_epoch_seconds"))
    report.define(prefix + "ImgPerSec", number(training, "mean_images_per_second"))
    report.define(prefix + "PeakGpuMem", number(training, "peak_gpu_memory_mb", 0))
    report.define(prefix + "ImageSize", number(training, "image_size"))
    report.define(prefix + "BatchSize", number(training, "batch_size"))
    report.define(prefix + "TrainableParams",
                  fmt_millions(training.get("trainable_parameters")) if not missing else NOT_RUN)
    report.define(prefix + "TotalParams",
                  fmt_millions(training.get("total_parameters")) if not missing else NOT_RUN)
    weights = (metrics or {}).get("weights")
    report.define(prefix + "Weights", latex_escape(weights) if weights else NOT_RUN)


def part1_results_table(available: dict[str, dict[str, Any]]) -> str:
    rows = []
    for run in RUNS:
        prefix = RUN_MACRO[run]
        rows.append(f"{RUN_LABEL[run]} & \\{prefix}TopOne{{}} & \\{prefix}TopFive{{}} & "
                    f"\\{prefix}MacroFOne{{}} & \\{prefix}EpochsConv{{}} & "
                    f"\\{prefix}SecPerEpoch{{}} \\\\")
    return ("\\begin{table}[H]\\centering\n\\begin{tabular}{@{}lrrrrr@{}}\n\\toprule\n"
            "Run & Top-1 & Top-5 & Macro F1 & Epochs to conv. & s / epoch \\\\\n\\midrule\n"
            + "\n".join(rows) + "\n\\bottomrule\n\\end{tabular}\n"
            "\\caption{Test-split results of the four runs (the checkpoint with the best "
            "validation accuracy, evaluated once). Epochs to convergence: the first epoch whose "
            "validation accuracy is within 0.5 points of the run's best.}\n"
            "\\label{tab:part1-results}\n\\end{table}\n")


def part1_recipe_table(available: dict[str, dict[str, Any]]) -> str:
    if not available:
        return "\\notrun{}: no Part 1 run has a metrics.json yet.\n"
    # evaluate's provenance nests the settings of the training run under "training_settings".
    settings = {}
    for run, metrics in available.items():
        recorded = metrics.get("provenance", {}).get("settings", {}) or {}
        settings[run] = recorded.get("training_settings", recorded)
    keys = [key for key in RECIPE_KEYS if any(key in values for values in settings.values())]
    header = " & ".join(["Setting"] + [RUN_LABEL[run].replace(", ", "\\newline ")
                                       for run in available])
    rows = [f"Weights & " + " & ".join(f"\\{RUN_MACRO[run]}Weights{{}}" for run in available)]
    rows.append("Trainable / total parameters & " + " & ".join(
        f"\\{RUN_MACRO[run]}TrainableParams{{}} / \\{RUN_MACRO[run]}TotalParams{{}}"
        for run in available))
    for key in keys:
        cells = [fmt_number(settings[run].get(key), 4) if not isinstance(settings[run].get(key), str)
                 else latex_escape(settings[run][key]) for run in available]
        rows.append(latex_escape(key) + " & " + " & ".join(cells))
    columns = "@{}p{0.2\\linewidth}" + "p{0.16\\linewidth}" * len(available) + "@{}"
    return (f"\\begin{{table}}[H]\\centering\\small\n\\begin{{tabular}}{{{columns}}}\n\\toprule\n"
            f"{header} \\\\\n\\midrule\n" + " \\\\\n".join(rows) + " \\\\\n\\bottomrule\n"
            "\\end{tabular}\n\\caption{Resolved settings of each run, as recorded in its "
            "metrics.json.}\n\\label{tab:part1-recipes}\n\\end{table}\n")


def count_epochs(count: int) -> str:
    return f"{count} epoch" if count == 1 else f"{count} epochs"


def part1_sentences(available: dict[str, dict[str, Any]]) -> str:
    """Write the sentences of the results section; each number in them comes from metrics.json."""
    if not available:
        return "\\notrun{}: no Part 1 results to discuss yet.\n"
    sentences = []
    scored = {run: metrics for run, metrics in available.items()
              if isinstance(metrics.get("test", {}).get("top1"), (int, float))}
    if not scored:
        return "\\notrun{}: the Part 1 metrics files hold no test accuracy.\n"
    available = scored
    best = max(available, key=lambda run: available[run]["test"]["top1"])
    sentences.append(f"The highest test top-1 accuracy is \\{RUN_MACRO[best]}TopOne{{}}, reached "
                     f"by {RUN_LABEL[best]}, with macro F1 \\{RUN_MACRO[best]}MacroFOne{{}}.")
    for model, label in MODEL_LABEL.items():
        probe, tuned = available.get(f"{model}_feature_extraction"), available.get(f"{model}_finetune")
        if probe is None or tuned is None:
            continue
        gain = 100 * (tuned["test"]["top1"] - probe["test"]["top1"])
        direction = "above" if gain >= 0 else "below"
        probe_seconds = probe.get("training", {}).get("mean_epoch_seconds")
        tuned_seconds = tuned.get("training", {}).get("mean_epoch_seconds")
        sentence = (f"For {label}, full fine-tuning ends {abs(gain):.1f} points {direction} "
                    f"feature extraction in top-1 accuracy "
                    f"(\\{RUN_MACRO[model + '_finetune']}TopOne{{}} against "
                    f"\\{RUN_MACRO[model + '_feature_extraction']}TopOne{{}})")
        if probe_seconds and tuned_seconds:
            sentence += (f", and an epoch of fine-tuning takes {tuned_seconds / probe_seconds:.1f} "
                         f"times as long as an epoch of feature extraction")
        sentences.append(sentence + ".")
        probe_conv = probe.get("training", {}).get("epochs_to_convergence")
        tuned_conv = tuned.get("training", {}).get("epochs_to_convergence")
        if probe_conv is not None and tuned_conv is not None:
            sentences.append(f"It converges after {count_epochs(tuned_conv)} when fine-tuned and "
                             f"after {count_epochs(probe_conv)} as a feature extractor.")
    return " ".join(sentences) + "\n"


def part1_errors(available: dict[str, dict[str, Any]]) -> str:
    if not available:
        return "\\notrun{}: no Part 1 results to analyse yet.\n"
    parts = []
    for run, metrics in available.items():
        test = metrics.get("test", {})
        text = [f"\\paragraph{{{RUN_LABEL[run]}.}}"]
        species = test.get("species_confusion")
        if species and len(species) == 2:
            (cat_cat, cat_dog), (dog_cat, dog_dog) = species
            text.append(f"Cat and dog are told apart with accuracy \\{RUN_MACRO[run]}SpeciesAcc{{}}: "
                        f"{cat_dog} cat images are predicted as a dog breed and {dog_cat} dog "
                        f"images as a cat breed.")
        pairs = test.get("most_confused_pairs") or []
        if pairs:
            listed = "; ".join(f"{latex_escape(pair['true'])} predicted as "
                               f"{latex_escape(pair['predicted'])} ({pair['count']} times)"
                               for pair in pairs[:3])
            text.append(f"The most frequent confusions are: {listed}.")
        absent = test.get("classes_without_test_images") or []
        if absent:
            text.append(f"{len(absent)} classes have no test image in this split, so their "
                        f"per-class scores are undefined and left out of the macro averages' "
                        f"support.")
        parts.append(" ".join(text))
    return "\n\n".join(parts) + "\n"


def write_part1(report: Report) -> None:
    available = {}
    for run in RUNS:
        metrics = report.load_json(f"part1/{run}/metrics.json")
        define_run_macros(report, run, metrics)
        if metrics is not None:
            available[run] = metrics

    report.files["part1_results_table.tex"] = part1_results_table(available)
    report.files["part1_recipes.tex"] = part1_recipe_table(available)
    report.files["part1_sentences.tex"] = part1_sentences(available)
    report.files["part1_errors.tex"] = part1_errors(available)

    curves, confusion = [], []
    for run in RUNS:
        label = RUN_LABEL[run]
        curves.append(figure(report.copy_figure(f"part1/{run}/training_curves.png",
                                                f"{run}_training_curves.png"),
                             f"Training and validation curves: {label}.", "0.8\\linewidth"))
        confusion.append(figure(report.copy_figure(f"part1/{run}/confusion_matrix.png",
                                                   f"{run}_confusion_matrix.png"),
                                f"Test confusion matrix: {label}.", "0.8\\linewidth"))
        confusion.append(figure(report.copy_figure(f"part1/{run}/per_class_f1.png",
                                                   f"{run}_per_class_f1.png"),
                                f"Per-class F1 on the test split: {label}.", "0.8\\linewidth"))
        confusion.append(figure(report.copy_figure(f"part1/{run}/misclassified.png",
                                                   f"{run}_misclassified.png"),
                                f"Misclassified test images: {label}.", "0.8\\linewidth"))
    comparison_dir = report.eval_dir / "part1"
    comparison = sorted(comparison_dir.glob("*.png")) if comparison_dir.is_dir() else []
    if not comparison:
        report.missing.append(f"{report.eval_dir.name}/part1/*.png (comparison plots of "
                              f"part1.compare)")
    for position, path in enumerate(comparison):
        caption = "Comparison of the four runs: " + path.stem.replace("_", " ") + "."
        curves.insert(position, figure(report.copy_figure(f"part1/{path.name}", f"compare_{path.name}"),
                                latex_escape(caption), "0.75\\linewidth"))
    report.files["part1_curves.tex"] = "".join(curves)
    report.files["part1_confusion.tex"] = "".join(confusion)
