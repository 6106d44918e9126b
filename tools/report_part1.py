"""Part 1 sections of the report: per-run macros, the results and recipe tables, the sentences
and error analysis that state the results, the figures of each run and the throughput tables of
part1.benchmark."""
from __future__ import annotations

from typing import Any

from tools.report_latex import (MAX_TABLE_ROWS, NOT_RUN, Report, breakable, dict_rows, figure,
                                fmt_millions, fmt_number, fmt_percent, fmt_yes_no, is_number,
                                latex_escape, macro_name, tabularx_table)

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
    write_part1_benchmark(report)


# Part 1: training throughput (part1.benchmark)

MODE_LABEL = {"feature_extraction": "feature extraction", "finetune": "fine-tuning"}


def benchmark_row_prefix(row: dict[str, Any]) -> str:
    return "PartOneBench" + macro_name(row.get("device"), row.get("model"), row.get("mode"))


def benchmark_training_table(report: Report, benchmark: dict[str, Any]) -> str:
    """Return images/s, seconds per epoch and parameter counts, one row per model and regime."""
    training = dict_rows(benchmark, "training")
    if not training:
        return "\\notrun{}: benchmark.json records no training measurements.\n"
    rows = []
    for row in training[:MAX_TABLE_ROWS]:
        prefix = benchmark_row_prefix(row)
        model, mode = row.get("model", "--"), row.get("mode", "--")
        cells = [latex_escape(row.get("device", "--")),
                 MODEL_LABEL.get(model, latex_escape(model)),
                 MODE_LABEL.get(mode, latex_escape(mode)),
                 report.define(prefix + "TrainableParams",
                               fmt_number(row.get("trainable_parameters"))),
                 report.define(prefix + "TotalParams", fmt_number(row.get("total_parameters"))),
                 report.define(prefix + "ImgPerSec", fmt_number(row.get("images_per_second"))),
                 report.define(prefix + "EpochSeconds",
                               fmt_number(row.get("epoch_seconds_estimate")))]
        rows.append(" & ".join(cells) + " \\\\")
    config = benchmark.get("config") or {}
    epoch_images = report.define("PartOneBenchEpochImages",
                                 fmt_number(config.get("epoch_train_images")))
    caption = ("Training step throughput with random weights, batches fed from memory. "
               f"Seconds per epoch is an estimate: {epoch_images} training images divided by "
               "the measured images/s, for the training pass only (no validation, no data "
               "loading).")
    return tabularx_table("llXrrrr", "Device & Model & Regime & Trainable params & Total params "
                          "& images/s & s/epoch", rows, caption, "tab:part1-bench-training",
                          len(training))


def benchmark_loading_table(report: Report, benchmark: dict[str, Any]) -> str:
    """Return the data-loading images/s per DataLoader worker count and how it compares with
    the training step."""
    loading = dict_rows(benchmark, "data_loading")
    if not loading:
        return "\\notrun{}: benchmark.json records no data-loading measurements.\n"
    rows = []
    for row in loading[:MAX_TABLE_ROWS]:
        workers = row.get("num_workers")
        prefix = "PartOneBenchLoader" + macro_name(workers, "workers")
        label = report.define(prefix + "Count", fmt_number(workers))
        if workers == 0:
            label += " (main process)"
        speed = report.define(prefix + "ImgPerSec", fmt_number(row.get("images_per_second")))
        rows.append(f"{label} & {speed} \\\\")
    caption = ("Data loading alone: JPEG decode, RandomResizedCrop, flip and normalize, at the "
               "image size and batch size of Table~\\ref{tab:part1-bench-training}.")
    comparisons = [row for row in benchmark.get("loader_vs_training") or []
                   if isinstance(row, dict) and is_number(row.get("loader_to_training_ratio"))]
    if comparisons:
        ratios = [row["loader_to_training_ratio"] for row in comparisons]
        keeps_up = sum(row.get("loader_keeps_up") is True for row in comparisons)
        lowest = report.define("PartOneBenchLoaderRatioMin", fmt_number(min(ratios)))
        highest = report.define("PartOneBenchLoaderRatioMax", fmt_number(max(ratios)))
        count = report.define("PartOneBenchLoaderKeepsUp", fmt_number(keeps_up))
        total = report.define("PartOneBenchLoaderCompared", fmt_number(len(comparisons)))
        caption += (f" The fastest loader delivers {lowest} to {highest} times the training "
                    f"images/s of the rows there, so it keeps up with {count} of {total} "
                    "training configurations.")
    return tabularx_table("Xr", "DataLoader workers & images/s", rows, caption,
                          "tab:part1-bench-loading", len(loading))


def benchmark_cache_table(report: Report, benchmark: dict[str, Any]) -> str:
    """Return the cached-features speed-up over recomputing the frozen backbone, per model."""
    cache = dict_rows(benchmark, "feature_cache")
    if not cache:
        return "\\notrun{}: benchmark.json records no feature-cache measurements.\n"
    rows = []
    for row in cache[:MAX_TABLE_ROWS]:
        prefix = "PartOneBenchCache" + macro_name(row.get("device"), row.get("model"))
        model = row.get("model", "--")
        speedup = row.get("speedup")
        cells = [latex_escape(row.get("device", "--")), MODEL_LABEL.get(model, latex_escape(model)),
                 report.define(prefix + "RecomputeSeconds",
                               fmt_number(row.get("recompute_epoch_seconds_estimate"))),
                 report.define(prefix + "CachedSeconds",
                               fmt_number(row.get("cached_epoch_seconds"), 3)),
                 report.define(prefix + "Speedup", fmt_number(speedup, 0) + "$\\times$"
                               if is_number(speedup) else "--"),
                 report.define(prefix + "TargetMet", fmt_yes_no(row.get("target_met"))),
                 report.define(prefix + "BuildSeconds",
                               fmt_number(row.get("cache_build_seconds_estimate")))]
        rows.append(" & ".join(cells) + " \\\\")
    targets = {row.get("speedup_target") for row in cache if is_number(row.get("speedup_target"))}
    target = report.define("PartOneBenchSpeedupTarget",
                           fmt_number(targets.pop(), 0) if len(targets) == 1 else "--")
    header = (f"Device & Model & recompute s/epoch & cached s/epoch & speed-up & "
              f"$\\geq${target}$\\times$ & cache build s")
    caption = ("Feature extraction with cached backbone features against recomputing the frozen "
               "backbone every epoch. Recompute s/epoch is the estimate of "
               "Table~\\ref{tab:part1-bench-training} and leaves out image decoding. The cached "
               "epoch is measured in full. The target column says whether the speed-up reaches "
               f"{target}$\\times$. Cache build: an estimate of one backbone pass over the "
               "training and validation images at the measured extraction rate.")
    return tabularx_table("lXrrrlr", header, rows, caption, "tab:part1-bench-cache", len(cache))


def benchmark_setup_text(report: Report, benchmark: dict[str, Any]) -> str:
    """Return the sentence that names the hardware and the settings of the benchmark run."""
    system = benchmark.get("system") or {}
    config = benchmark.get("config") or {}

    def value(name: str, raw: Any, digits: int = 1) -> str:
        # "-{}-" keeps command-line flags such as --data-dir from becoming an en dash.
        text = fmt_number(raw, digits).replace("--", "-{}-") if raw is not None else "--"
        return report.define("PartOneBench" + name, text)

    def one_minute(loads: Any) -> Any:
        return loads[0] if isinstance(loads, list) and loads else None

    data_source = breakable(config.get("data_source", "--")).replace("--", "-{}-")
    quick = benchmark.get("quick")
    mode = None
    if isinstance(quick, bool):
        mode = "quick" if quick else "full"
    text = (f"Measured by \\nolinkurl{{part1/benchmark.py}} on {value('Cpu', system.get('cpu'))} "
            f"with {value('LogicalCores', system.get('logical_cores'))} logical cores and "
            f"{value('TorchThreads', system.get('torch_threads'))} PyTorch threads")
    if system.get("cuda_device"):
        text += f" and the GPU {value('CudaDevice', system['cuda_device'])}"
    load_start = value("LoadStart", one_minute(system.get("load_average_start")), 2)
    load_end = value("LoadEnd", one_minute(system.get("load_average_end")), 2)
    text += (f" (PyTorch {value('TorchVersion', system.get('torch_version'))}). The one-minute "
             f"load average was {load_start} at the start and {load_end} at the end. "
             f"Mode {value('Mode', mode)}: image size "
             f"{value('ImageSize', config.get('image_size'))}, batch size "
             f"{value('BatchSize', config.get('batch_size'))}, "
             f"{value('WarmupBatches', config.get('warmup_batches'))} warm-up and "
             f"{value('TimedBatches', config.get('timed_batches'))} timed steps per "
             f"configuration, weights {value('Weights', config.get('weights'))}, data "
             f"{report.define('PartOneBenchDataSource', data_source)}.")
    if quick is True:
        text += " Quick-mode numbers use small images and are not comparable with a full run."
    return text + "\n\n"


def write_part1_benchmark(report: Report) -> None:
    benchmark = report.load_json("part1/benchmark.json")
    if benchmark is None:
        report.files["part1_benchmark.tex"] = (
            "\\notrun{}: evaluation/part1/benchmark.json is missing.\n")
        return
    report.files["part1_benchmark.tex"] = (benchmark_setup_text(report, benchmark)
                                           + benchmark_training_table(report, benchmark)
                                           + benchmark_loading_table(report, benchmark)
                                           + benchmark_cache_table(report, benchmark))
