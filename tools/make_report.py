"""Generate the LaTeX inputs of latex/report.tex from the results in evaluation/.

Every number in the report comes from here: macros.tex defines one macro per number, and the
tables, figure includes and sentences that state numbers are written as separate .tex files. An
input that is missing becomes a visible "not run" marker in the PDF and is named on stderr, so a
partial run still gives a readable report.

    python -m tools.make_report [--eval-dir evaluation] [--output-dir latex/generated]
"""
from __future__ import annotations

import argparse
import ast
import json
import math
import re
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

from tools.provenance import SMOKE_BANNER, run_profile, write_atomic
from tools.student import load_student_info

REPO_ROOT = Path(__file__).resolve().parents[1]

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
DIGIT_WORDS = ("Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine")
NOT_RUN = r"\notrun{}"
ROCLM_SOURCE = REPO_ROOT / "part2" / "roclm_model.py"
# Code shown beside each formula: generated file name and the definitions, as Class.method or
# function names in part2/roclm_model.py.
CODE_EXCERPTS = {
    "code_rmsnorm.tex": ("RocLMRMSNorm.forward",),
    "code_mlp.tex": ("RocLMMLP.forward",),
    "code_attention.tex": ("RocLMAttention.forward", "RocLMAttention._explicit_attention"),
    "code_rope.tex": ("RocLMRotaryEmbedding.forward", "rotate_half", "apply_rotary_emb"),
    "code_causal_mask.tex": ("causal_mask",),
}
LISTING_WIDTH = 90  # characters per listing line in \footnotesize monospace
MAX_TABLE_ROWS = 60
MAX_RECORD_COLUMNS = 7


# formatting

def latex_escape(text: Any) -> str:
    """Escape LaTeX's special characters and write control and non-ASCII characters as <U+XXXX>."""
    replacements = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                    "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                    "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}"}
    escaped = "".join(replacements.get(char, char) for char in str(text))
    return "".join(char if 0x20 <= ord(char) < 0x7F else f"<U+{ord(char):04X}>" for char in escaped)


def ascii_text(text: str) -> str:
    """Return TEXT with every control and non-ASCII character but newline written as <U+XXXX>,
    which pdflatex's listings package can typeset without a Unicode font."""
    text = text.replace("\t", "    ")
    return "".join(char if 0x20 <= ord(char) < 0x7F or char == "\n" else f"<U+{ord(char):04X}>"
                   for char in text)


def macro_name(*parts: Any) -> str:
    """Build a LaTeX macro name (letters only) from key parts: ('top1', 'f1') -> 'TopOneFOne'."""
    words = []
    for part in parts:
        for token in re.split(r"[^A-Za-z0-9]+", str(part)):
            if token:
                token = re.sub(r"\d", lambda match: DIGIT_WORDS[int(match.group())], token)
                words.append(token[0].upper() + token[1:])
    return "".join(words)


def fmt_percent(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        return NOT_RUN
    return f"{100 * value:.1f}\\%"


def fmt_number(value: Any, digits: int = 1) -> str:
    if value is None:
        return "--"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}".replace(",", "{,}")
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return latex_escape(str(value))
        if value != 0 and abs(value) < 10 ** -digits:
            mantissa, exponent = f"{value:.2e}".split("e")
            return f"${mantissa}\\times 10^{{{int(exponent)}}}$"
        return f"{value:,.{digits}f}".replace(",", "{,}")
    return latex_escape(value)


def fmt_general(value: Any) -> str:
    """Format a JSON scalar of unknown meaning: floats with 4 significant digits."""
    if isinstance(value, float) and not (math.isnan(value) or math.isinf(value)):
        if value != 0 and abs(value) < 1e-3:
            return fmt_number(value, 3)
        return latex_escape(f"{value:.4g}")
    return fmt_number(value)


def fmt_millions(value: Any) -> str:
    return f"{value / 1e6:.2f}\\,M" if isinstance(value, (int, float)) else NOT_RUN


# report state

class Report:
    """Collects macros, generated files and missing inputs, then writes them out."""

    def __init__(self, eval_dir: Path, output_dir: Path):
        self.eval_dir = eval_dir
        self.output_dir = output_dir
        self.macros: dict[str, str] = {}
        self.missing: list[str] = []
        self.files: dict[str, str] = {}

    def define(self, name: str, value: str) -> str:
        """Define macro NAME (a unique suffix is added on a clash) and return its use, '\\NAME{}'."""
        unique, counter = name, 1
        while unique in self.macros:
            counter += 1
            unique = name + "X" * counter
        self.macros[unique] = value
        return f"\\{unique}{{}}"

    def load_json(self, relative: str) -> dict[str, Any] | None:
        path = self.eval_dir / relative
        if not path.is_file():
            self.missing.append(f"{self.eval_dir.name}/{relative}")
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            self.missing.append(f"{self.eval_dir.name}/{relative} (invalid JSON: {error})")
            return None

    def copy_figure(self, relative: str, name: str) -> str | None:
        """Copy evaluation/RELATIVE into figures/NAME and return its path for \\includegraphics."""
        source = self.eval_dir / relative
        if not source.is_file():
            self.missing.append(f"{self.eval_dir.name}/{relative}")
            return None
        target = self.output_dir / "figures" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return f"generated/figures/{name}"

    def write(self) -> None:
        lines = ["% Generated by tools/make_report.py from evaluation/; do not edit."]
        lines += [f"\\newcommand{{\\{name}}}{{{value}}}" for name, value in self.macros.items()]
        write_atomic(self.output_dir / "macros.tex", "\n".join(lines) + "\n")
        for name, text in self.files.items():
            write_atomic(self.output_dir / name, "% Generated by tools/make_report.py.\n" + text)


def figure(path: str | None, caption: str, width: str = "0.9\\linewidth") -> str:
    if path is None:
        return (f"\\begin{{center}}\\notrun{{}}: figure ``{caption}''"
                f" (its image is missing)\\end{{center}}\n")
    return (f"\\begin{{figure}}[H]\\centering\n\\includegraphics[width={width}]{{{path}}}\n"
            f"\\caption{{{caption}}}\n\\end{{figure}}\n")


# header and profile

def write_header(report: Report) -> None:
    info = load_student_info()
    report.define("StudentName", latex_escape(info.name) or NOT_RUN)
    report.define("StudentID", latex_escape(info.student_id) or NOT_RUN)
    collaborators = "; ".join(latex_escape(name) for name in info.collaborators) or "none"
    ai_tools = "; ".join(latex_escape(name) for name in info.ai_tools) or "none"
    lines = [
        "\\begin{tabular}{@{}ll@{}}",
        "\\textbf{Name} & \\StudentName{} \\\\",
        "\\textbf{Student ID} & \\StudentID{} \\\\",
        f"\\textbf{{Collaborators consulted}} & {collaborators} \\\\",
        f"\\textbf{{AI tools used}} & {ai_tools} \\\\",
        "\\end{tabular}",
    ]
    if info.is_example:
        lines.append("\n\\noindent\\textcolor{red}{\\textbf{These are the example values of "
                     "student.example.toml: copy it to student.toml and fill it in, or set "
                     "STUDENT\\_NAME and STUDENT\\_ID.}}")
    report.files["header.tex"] = "\n".join(lines) + "\n"


def write_profile(report: Report) -> None:
    smoke = run_profile() == "smoke"
    report.define("RunProfile", run_profile())
    report.define("SmokeBanner", latex_escape(SMOKE_BANNER))
    report.files["profile.tex"] = "\\smoketrue\n" if smoke else "\\smokefalse\n"


def write_missing(report: Report) -> None:
    if not report.missing:
        report.files["missing.tex"] = ""
        return
    items = "\n".join(f"\\item {latex_escape(path)}" for path in report.missing)
    report.files["missing.tex"] = (
        "\\noindent\\textcolor{red}{\\textbf{Not run: this report was built while these inputs "
        "were missing, so the places that need them say ``not run''.}}\n"
        f"\\begin{{itemize}}\n{items}\n\\end{{itemize}}\n")


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


# Part 2

def is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def flatten(data: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Flatten nested JSON into (key path, scalar) pairs, leaving out provenance blocks; a list of
    scalars becomes one comma-separated string."""
    if isinstance(data, dict):
        pairs = []
        for key, value in data.items():
            if key != "provenance":
                pairs.extend(flatten(value, prefix + (str(key),)))
        return pairs
    if isinstance(data, list):
        if all(is_scalar(item) for item in data):
            return [(prefix, ", ".join(str(item) for item in data))]
        pairs = []
        for index, value in enumerate(data):
            pairs.extend(flatten(value, prefix + (str(index),)))
        return pairs
    return [(prefix, data)]


def records_table(report: Report, key: str, records: list[dict[str, Any]], macro_prefix: str,
                  caption: str) -> str:
    """Define a macro per cell of a list of JSON objects and return a table with one row each."""
    columns: list[str] = []
    for record in records:
        columns += [name for name, value in record.items()
                    if name not in columns and name != "provenance" and is_scalar(value)]
    columns = columns[:MAX_RECORD_COLUMNS]
    rows = []
    for index, record in enumerate(records[:MAX_TABLE_ROWS]):
        cells = [report.define(macro_prefix + macro_name(key, index, column),
                               fmt_general(record[column])) if column in record else "--"
                 for column in columns]
        rows.append(" & ".join(cells) + " \\\\")
    header = " & ".join(f"\\textbf{{{latex_escape(column)}}}" for column in columns)
    spec = "".join(f">{{\\raggedright\\arraybackslash}}p{{{0.85 / len(columns):.3f}\\linewidth}}"
                   for column in columns)
    note = ""
    if len(records) > MAX_TABLE_ROWS:
        note = f"\\noindent The table shows the first {MAX_TABLE_ROWS} of {len(records)} rows.\n"
    return (note + f"\\begin{{longtable}}{{@{{}}{spec}@{{}}}}\n\\toprule\n{header} \\\\\n"
            "\\midrule\n\\endhead\n" + "\n".join(rows) + "\n\\bottomrule\n"
            f"\\caption{{{caption} (\\texttt{{{latex_escape(key)}}})}}\n\\end{{longtable}}\n"
            "{\\scriptsize\\ }\n")


def json_table(report: Report, data: dict[str, Any], macro_prefix: str, caption: str) -> str:
    """Define a macro for every scalar in DATA and return tables that use them: one table per
    top-level list of objects, and a key/value table for the rest."""
    tables = []
    rest = {}
    for key, value in data.items():
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            tables.append(records_table(report, key, value, macro_prefix, caption))
        else:
            rest[key] = value
    rows = []
    for path, value in flatten(rest):
        use = report.define(macro_prefix + macro_name(*path), fmt_general(value))
        rows.append(f"\\texttt{{{latex_escape('.'.join(path))}}} & {use} \\\\")
    note = ""
    if len(rows) > MAX_TABLE_ROWS:
        note = (f"\\noindent The table shows the first {MAX_TABLE_ROWS} of {len(rows)} values.\n")
        rows = rows[:MAX_TABLE_ROWS]
    if rows:
        tables.insert(0, note + "\\begin{longtable}{@{}>{\\raggedright\\arraybackslash}p{0.45\\linewidth}"
                      ">{\\raggedright\\arraybackslash}p{0.5\\linewidth}@{}}\n\\toprule\n"
                      "Key & Value \\\\\n\\midrule\n\\endhead\n" + "\n".join(rows)
                      + f"\n\\bottomrule\n\\caption{{{caption}}}\n\\end{{longtable}}\n")
    return "".join(tables)


def find_values(data: Any, pattern: str) -> list[tuple[tuple[str, ...], Any]]:
    """Return the scalars whose key path matches the regular expression PATTERN."""
    regex = re.compile(pattern, re.IGNORECASE)
    return [(path, value) for path, value in flatten(data) if path and regex.search(path[-1])]


def parity_sentence(parity: dict[str, Any]) -> str:
    # Match difference keys only, because parity.json also records max_abs_logit, the largest logit.
    diffs = [value for _, value in find_values(parity, r"diff")
             if isinstance(value, (int, float)) and not isinstance(value, bool)]
    verdicts = [value for _, value in find_values(parity, r"^(passed|pass|ok|match|equal)")
                if isinstance(value, bool)]
    parts = []
    if verdicts:
        parts.append(f"{sum(verdicts)} of {len(verdicts)} recorded checks pass")
    if diffs:
        parts.append(f"the largest absolute difference over all checks is {fmt_number(max(diffs), 2)}")
    if not parts:
        return ""
    sentence = " and ".join(parts)
    return sentence[0].upper() + sentence[1:] + ".\n\n"


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fmt_scientific(value: Any) -> str:
    """Format VALUE as $m \\times 10^{e}$ with three significant digits; zero stays 0."""
    if not is_number(value) or math.isnan(value) or math.isinf(value):
        return "--"
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"${mantissa}\\times 10^{{{int(exponent)}}}$"


def fmt_yes_no(value: Any) -> str:
    """Format True as yes and False as a red no; anything else means not recorded (--)."""
    if value is True:
        return "yes"
    if value is False:
        return "\\textcolor{red}{no}"
    return "--"


def breakable(text: Any) -> str:
    """Escape TEXT and allow line breaks after slashes and underscores (paths, config names)."""
    return latex_escape(text).replace("/", "/\\allowbreak{}").replace("\\_", "\\_\\allowbreak{}")


def token_text(tokens: Any) -> str:
    """Show a list of token strings in monospace, separated by a thin vertical bar."""
    if not isinstance(tokens, list):
        return "--"
    cells = [f"\\texttt{{{latex_escape(token)}}}" for token in tokens]
    return "\\,\\textbar\\,\\allowbreak{}".join(cells) or "--"


def tabularx_table(spec: str, header: str, rows: list[str], caption: str, label: str,
                   total: int | None = None) -> str:
    """Return a small-font tabularx table, noting when only the first rows are shown."""
    note = ""
    if total is not None and total > len(rows):
        note = f" The table shows the first {len(rows)} of {total} rows."
    return ("\\begin{table}[H]\\centering\\small\n"
            f"\\begin{{tabularx}}{{\\linewidth}}{{@{{}}{spec}@{{}}}}\n\\toprule\n{header} \\\\\n"
            "\\midrule\n" + "\n".join(rows) + "\n\\bottomrule\n\\end{tabularx}\n"
            f"\\caption{{{caption}{note}}}\n\\label{{{label}}}\n\\end{{table}}\n")


# Part 2: parity

def greedy_cell(check: dict[str, Any]) -> str:
    if "greedy_tokens_equal" not in check:
        return "--"
    count = check.get("greedy_tokens")
    if check["greedy_tokens_equal"]:
        return f"yes ({count})" if is_number(count) else "yes"
    first = check.get("first_differing_token")
    return "\\textcolor{red}{no}" + (f" (from {first})" if is_number(first) else "")


def parity_table(report: Report, parity: dict[str, Any]) -> str:
    """Return one table row per check of parity.json; every value goes through a macro."""
    checks = [check for check in parity.get("checks") or [] if isinstance(check, dict)]
    if not checks:
        return "\\notrun{}: parity.json records no checks.\n"
    rows = []
    for number, check in enumerate(checks[:MAX_TABLE_ROWS], start=1):
        prefix = "ParityCheck" + macro_name(number)
        cells = [breakable(check.get("check", "--")), breakable(check.get("config", "--")),
                 report.define(prefix + "MaxDiff", fmt_scientific(check.get("max_abs_logit_diff"))),
                 report.define(prefix + "Tolerance", fmt_scientific(check.get("tolerance"))),
                 report.define(prefix + "Greedy", greedy_cell(check)),
                 report.define(prefix + "Passed", fmt_yes_no(check.get("passed")))]
        rows.append(" & ".join(cells) + " \\\\")
    header = "Check & Configuration & Max $|\\Delta|$ & Tol. & Greedy eq. & Pass"
    caption = ("RocLM against transformers' \\texttt{Qwen3ForCausalLM} with the same weights. "
               "Max $|\\Delta|$: maximum absolute difference of the logits over all positions "
               "and the vocabulary. Tol.: the tolerance on it. Greedy eq.: whether greedy "
               "decoding chose the same tokens (in brackets the number of tokens compared, or "
               "the first position that differs); -- where the check compares logits only. "
               "Pass: the difference is within the tolerance and, where compared, the greedy "
               "tokens are equal.")
    ragged = ">{\\raggedright\\arraybackslash}X"
    return tabularx_table(ragged * 2 + "rrll", header, rows, caption, "tab:parity", len(checks))


def write_parity(report: Report, parity: dict[str, Any]) -> str:
    text = parity_sentence(parity)
    all_passed = parity.get("all_passed")
    if isinstance(all_passed, bool):
        text += f"All checks passed: {report.define('ParityAllPassed', fmt_yes_no(all_passed))}."
    if is_number(parity.get("seconds")):
        text += (f" The check took {report.define('ParitySeconds', fmt_number(parity['seconds']))}"
                 " s.")
    return text + "\n\n" + parity_table(report, parity)


# Part 2: generation speed

IMPLEMENTATION_LABEL = {"roclm": "RocLM", "transformers": "transformers"}
TARGET_PATTERNS = (
    (re.compile(r"^decode_ratio_(\w+?)_at_least_([\d.]+)$"),
     "RocLM decode speed at least {1}$\\times$ that of transformers, {0}"),
    (re.compile(r"^roofline_fraction_(\w+?)_at_least_([\d.]+)$"),
     "RocLM decode speed at least {1} of the roofline, {0}"),
    (re.compile(r"^long_context_within_([\d.]+)x$"),
     "Per-token decode time at the longest context within {0}$\\times$ that at the shortest"),
)


def benchmark_speed_table(report: Report, devices: list[dict[str, Any]]) -> str:
    rows = []
    for device in devices:
        for dtype_name, entry in (device.get("dtypes") or {}).items():
            roofline = entry.get("roofline") or {}
            for implementation, numbers in (entry.get("implementations") or {}).items():
                prefix = "Bench" + macro_name(device.get("device"), dtype_name, implementation)
                is_roclm = implementation == "roclm"
                cells = [latex_escape(device.get("device", "--")), latex_escape(dtype_name),
                         latex_escape(IMPLEMENTATION_LABEL.get(implementation, implementation)),
                         report.define(prefix + "Prefill",
                                       fmt_number(numbers.get("prefill_tokens_per_s"))),
                         report.define(prefix + "Decode",
                                       fmt_number(numbers.get("decode_tokens_per_s"), 2)),
                         report.define(prefix + "DecodeRatio",
                                       fmt_number(entry.get("decode_ratio"), 2)) if is_roclm else "",
                         report.define(prefix + "PrefillRatio",
                                       fmt_number(entry.get("prefill_ratio"), 2)) if is_roclm else "",
                         report.define(prefix + "Roofline",
                                       fmt_number(roofline.get("roofline_tokens_per_s"))),
                         report.define(prefix + "RooflineFraction",
                                       fmt_percent(roofline.get(f"{implementation}_fraction")))]
                rows.append(" & ".join(cells) + " \\\\")
    if not rows:
        return "\\notrun{}: benchmark.json records no speed measurements.\n"
    header = ("& & & \\multicolumn{2}{c}{tokens/s} & \\multicolumn{2}{c}{ratio} & "
              "\\multicolumn{2}{c}{roofline} \\\\\n"
              "\\cmidrule(lr){4-5}\\cmidrule(lr){6-7}\\cmidrule(lr){8-9}\n"
              "Device & dtype & Implementation & prefill & decode & decode & prefill & tokens/s "
              "& fraction")
    caption = ("Greedy generation at batch size 1, median over the repeats. Ratios are RocLM "
               "over transformers. The roofline is the measured read bandwidth divided by the "
               "bytes one decode step reads (Table~\\ref{tab:bench-roofline}); ``of roofline'' "
               "is the decode speed as a fraction of it.")
    return tabularx_table("ll>{\\raggedright\\arraybackslash}Xrrrrrr", header, rows, caption,
                          "tab:bench-speed")


def benchmark_context_table(report: Report, devices: list[dict[str, Any]]) -> str:
    rows, ratios = [], []
    for device in devices:
        name = device.get("device", "--")
        entry = (device.get("dtypes") or {}).get("float32") or {}
        scaling = entry.get("context_scaling") or {}
        for row in scaling.get("rows") or []:
            seconds = row.get("seconds_per_token")
            milliseconds = 1000 * seconds if is_number(seconds) else None
            prefix = "Bench" + macro_name(name, "context", row.get("context"))
            rows.append(f"{latex_escape(name)} & KV cache & "
                        f"{report.define(prefix + 'Tokens', fmt_number(row.get('context')))} & "
                        f"{report.define(prefix + 'Ms', fmt_number(milliseconds))} \\\\")
        recompute = entry.get("recompute") or {}
        if recompute:
            seconds = recompute.get("seconds_per_token")
            milliseconds = 1000 * seconds if is_number(seconds) else None
            prefix = "Bench" + macro_name(name, "recompute")
            context = report.define(prefix + "Context", fmt_number(recompute.get("context")))
            rows.append(f"{latex_escape(name)} & no cache, full recompute & {context} & "
                        f"{report.define(prefix + 'Ms', fmt_number(milliseconds))} \\\\")
        if "long_over_short" in scaling:
            ratios.append(report.define("Bench" + macro_name(name, "long over short"),
                                        fmt_number(scaling["long_over_short"], 2)))
    if not rows:
        return ""
    ratio_text = ""
    if ratios:
        ratio_text = (" The longest context costs " + ", ".join(ratios)
                      + " times the per-token time of the shortest.")
    caption = ("RocLM's float32 decode time per token after a prompt of the given length (median "
               "over the decoded tokens), and the same greedy decoding without a KV cache, which "
               "runs the whole sequence again for every token." + ratio_text)
    return tabularx_table("lXrr", "Device & Decoding & Context tokens & ms per token", rows,
                          caption, "tab:bench-context")


def benchmark_roofline_table(report: Report, devices: list[dict[str, Any]]) -> str:
    rows = []
    for device in devices:
        name = device.get("device", "--")
        bandwidth = device.get("bandwidth") or {}
        prefix = "Bench" + macro_name(name)
        buffer_bytes = bandwidth.get("buffer_bytes")
        read = report.define(prefix + "ReadBandwidth", fmt_number(bandwidth.get("read_gb_per_s")))
        copy = report.define(prefix + "CopyBandwidth", fmt_number(bandwidth.get("copy_gb_per_s")))
        buffer = report.define(prefix + "BufferMiB", fmt_number(
            buffer_bytes // 2**20 if isinstance(buffer_bytes, int) else None))
        for dtype_name, entry in (device.get("dtypes") or {}).items():
            roofline = entry.get("roofline") or {}
            dtype_prefix = prefix + macro_name(dtype_name)
            step_bytes = roofline.get("bytes_per_token")
            cells = [latex_escape(name), buffer, read, copy, latex_escape(dtype_name),
                     report.define(dtype_prefix + "StepMB", fmt_number(
                         step_bytes / 1e6 if is_number(step_bytes) else None)),
                     report.define(dtype_prefix + "AverageContext",
                                   fmt_number(roofline.get("average_context")))]
            rows.append(" & ".join(cells) + " \\\\")
    if not rows:
        return ""
    caption = ("Roofline inputs. Read and copy bandwidth are the best of several sums and "
               "copies of a buffer of the given size in MiB (copy counts the bytes read and "
               "written). A decode step reads every weight once plus the cached keys and values "
               "at the average context of the run; MB per step is that byte count in $10^6$ "
               "bytes.")
    return tabularx_table("Xrrrlrr", "Device & Buffer MiB & Read GB/s & Copy GB/s & dtype & "
                          "MB per step & Avg. context", rows, caption, "tab:bench-roofline")


def target_measurement(report: Report, key: str) -> str:
    """Return the macro of the measured value that the target KEY was judged on, or --."""
    decode = re.match(r"^decode_ratio_(\w+?)_at_least_", key)
    if decode:
        return f"\\{'Bench' + macro_name('cpu', decode.group(1), 'roclm', 'DecodeRatio')}{{}}"
    fraction = re.match(r"^roofline_fraction_(\w+?)_at_least_", key)
    if fraction:
        return f"\\{'Bench' + macro_name('cpu', fraction.group(1), 'roclm', 'RooflineFraction')}{{}}"
    if key.startswith("long_context_within_"):
        return f"\\{'Bench' + macro_name('cpu', 'long over short')}{{}}"
    return "--"


def benchmark_targets_table(report: Report, targets: dict[str, Any]) -> str:
    if not targets:
        return "\\noindent No targets were evaluated (the benchmark checks them on the CPU only).\n"
    rows = []
    for key, met in targets.items():
        description = latex_escape(key)
        for pattern, template in TARGET_PATTERNS:
            match = pattern.match(key)
            if match:
                groups = [latex_escape(group) for group in match.groups()]
                if "roofline" in key:
                    groups[1] = fmt_percent(float(match.group(2)))
                description = template.format(*groups)
                break
        measured = target_measurement(report, key)
        if measured != "--" and measured[1:-2] not in report.macros:
            measured = "--"
        met_cell = report.define("Bench" + macro_name("target", key), fmt_yes_no(met))
        rows.append(f"{description} & {measured} & {met_cell} \\\\")
    caption = "Speed targets, judged on the CPU results of Table~\\ref{tab:bench-speed}."
    return tabularx_table("Xrl", "Target & Measured & Met", rows, caption, "tab:bench-targets")


def benchmark_setup_sentence(report: Report, benchmark: dict[str, Any]) -> str:
    machine = benchmark.get("machine") or {}
    settings = (benchmark.get("provenance") or {}).get("settings") or {}

    def value(name: str, raw: Any, digits: int = 1) -> str:
        return report.define("Bench" + name, fmt_number(raw, digits) if raw is not None else "--")

    text = (f"Hardware: {value('Cpu', machine.get('cpu'))} with "
            f"{value('LogicalCores', machine.get('logical_cores'))} logical cores, "
            f"{value('TorchThreads', machine.get('torch_threads'))} PyTorch threads")
    if machine.get("cuda_device"):
        text += f" and the GPU {value('CudaDevice', machine['cuda_device'])}"
    text += (f"; the one-minute load average was {value('LoadStart', machine.get('load_average_1min_at_start'))}"
             f" at the start and {value('LoadEnd', machine.get('load_average_1min_at_end'))} at "
             f"the end. Mode {value('Mode', benchmark.get('mode'))}: model shape "
             f"{value('ShapeName', settings.get('shape_name'))}, "
             f"{value('PromptTokens', settings.get('prompt_tokens'))}-token prompt, "
             f"{value('NewTokens', settings.get('new_tokens'))} new tokens, "
             f"{value('Repeats', settings.get('repeats'))} repeat(s), weights "
             f"{value('Weights', settings.get('weights'))}. The whole benchmark took "
             f"{value('Seconds', benchmark.get('seconds'))} s.")
    parity = next((entry["parity"] for device in benchmark.get("devices") or []
                   for entry in (device.get("dtypes") or {}).values() if entry.get("parity")), None)
    if parity:
        text += (f" Before timing, the two implementations' float32 logits on a "
                 f"{value('ParityPromptTokens', parity.get('prompt_tokens'))}-token prompt "
                 f"differ by at most "
                 f"{report.define('BenchParityMaxDiff', fmt_scientific(parity.get('max_abs_logit_diff')))}.")
    return text + "\n\n"


def write_benchmark(report: Report, benchmark: dict[str, Any]) -> str:
    devices = [device for device in benchmark.get("devices") or [] if isinstance(device, dict)]
    return (benchmark_setup_sentence(report, benchmark)
            + benchmark_speed_table(report, devices)
            + benchmark_roofline_table(report, devices)
            + benchmark_context_table(report, devices)
            + benchmark_targets_table(report, benchmark.get("targets") or {}))


# Part 2: generation samples and chat transcript

# Lines of one code block shown in the PDF; a chat prompt with a long history is cut here.
MAX_BLOCK_LINES = 24


def markdown_sections(text: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Split Markdown TEXT at '## ' headings into (lines before the first, [(title, lines)])."""
    preamble: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    in_fence = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        if not in_fence and line.startswith("## "):
            sections.append((line[3:].strip(), []))
        elif sections:
            sections[-1][1].append(line)
        else:
            preamble.append(line)
    return preamble, sections


def sample_block(lines: list[str], relative: str) -> list[str]:
    """Turn one sample's Markdown lines into plain, wrapped ASCII lines: code blocks indented by
    two spaces and cut to MAX_BLOCK_LINES, blank-line runs collapsed, fences dropped."""
    output: list[str] = []
    block: list[str] | None = None
    for line in lines:
        if line.startswith("```"):
            if block is None:
                block = []
                continue
            if len(block) > MAX_BLOCK_LINES:
                block = block[:MAX_BLOCK_LINES] + [
                    f"[{len(block) - MAX_BLOCK_LINES} more lines in {relative}]"]
            output += ["  " + piece for piece in block]
            block = None
        elif block is not None:
            block += textwrap.wrap(ascii_text(line), LISTING_WIDTH - 2, break_long_words=True,
                                   drop_whitespace=False) or [""]
        else:
            output += textwrap.wrap(ascii_text(line), LISTING_WIDTH, break_long_words=True) or [""]
    compact: list[str] = []
    for line in output:
        if line.strip() or (compact and compact[-1].strip()):
            compact.append(line)
    while compact and not compact[-1].strip():
        compact.pop()
    return compact


def markdown_prose(lines: list[str]) -> str:
    """Render the bullet list and the table of a Markdown preamble; headings and the smoke
    banner are left out because the report states both itself."""
    items = [line[2:] for line in lines if line.startswith("- ")]
    table = [line for line in lines if line.startswith("|")]
    text = ""
    if items:
        text += ("\\begin{itemize}\\setlength{\\itemsep}{0pt}\\small\n"
                 + "\n".join(f"\\item {breakable(item.replace('`', ''))}" for item in items)
                 + "\n\\end{itemize}\n")
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in table
            if not re.fullmatch(r"[\s|:-]+", line)]
    if len(rows) > 1:
        width = len(rows[0])
        body = [" & ".join(latex_escape(cell) for cell in (row + [""] * width)[:width]) + " \\\\"
                for row in rows[1:]]
        header = " & ".join(latex_escape(cell) for cell in rows[0])
        text += ("\\begin{center}\\small\n\\begin{tabular}{@{}l" + "r" * (width - 1) + "@{}}\n"
                 f"\\toprule\n{header} \\\\\n\\midrule\n" + "\n".join(body)
                 + "\n\\bottomrule\n\\end{tabular}\n\\end{center}\n")
    return text


def provenance_note(sections: list[tuple[str, list[str]]], relative: str) -> str:
    """Name the commit and date of the Markdown file's provenance and where the rest is."""
    for title, lines in sections:
        if title.lower() != "provenance":
            continue
        body = "\n".join(line for line in lines if not line.startswith("```"))
        try:
            provenance = json.loads(body)
        except json.JSONDecodeError:
            provenance = {}
        commit = str(provenance.get("git_commit", ""))[:12]
        date = provenance.get("date_utc")
        generated_at = (f"They were generated at commit {latex_escape(commit)} on {latex_escape(date)}. "
                if commit and date else "")
        return (f"\\noindent\\emph{{{generated_at}The full provenance (settings, package versions, "
                f"device) is the ``Provenance'' section at the end of "
                f"\\nolinkurl{{evaluation/{relative}}}.}}\n\n")
    return (f"\\noindent\\emph{{\\nolinkurl{{evaluation/{relative}}} has no provenance "
            f"section.}}\n\n")


def write_samples(report: Report, relative: str, name: str) -> str:
    """Return the preamble and one listing per section of a Markdown file of generate."""
    source = report.eval_dir / relative
    if not source.is_file():
        report.missing.append(f"{report.eval_dir.name}/{relative}")
        return f"\\notrun{{}}: {latex_escape(relative)} is missing.\n"
    text = source.read_text(encoding="utf-8", errors="replace")
    preamble, sections = markdown_sections(text)
    output = ""
    if SMOKE_BANNER in text and run_profile() != "smoke":
        output += f"\\noindent\\textcolor{{red}}{{\\textbf{{{latex_escape(SMOKE_BANNER)}}}}}\n\n"
    output += markdown_prose(preamble)
    for number, (title, lines) in enumerate(sections, start=1):
        if title.lower() == "provenance":
            continue
        listing_name = f"{name}_{number}.txt"
        write_atomic(report.output_dir / listing_name,
                     "\n".join(sample_block(lines, relative)) + "\n")
        output += (f"\\par\\medskip\\noindent\\textbf{{{latex_escape(title)}.}}\\par\\nopagebreak\n"
                   f"\\lstinputlisting{{generated/{listing_name}}}\n")
    return output + provenance_note(sections, relative)


# Part 2: tokenizer analysis of the student ID

def id_sentence(report: Report, analysis: dict[str, Any]) -> str:
    tokenizer = analysis.get("tokenizer") or {}

    def value(name: str, raw: Any) -> str:
        return report.define("IdAnalysis" + name, fmt_number(raw) if raw is not None else "--")

    student_id = analysis.get("student_id")
    student_id = report.define("IdAnalysisStudentId",
                               latex_escape(student_id) if student_id is not None else "--")
    text = (f"The ID {student_id} "
            f"(from {value('StudentIdSource', analysis.get('student_id_source'))}) is encoded by "
            f"the tokenizer ``{value('TokenizerKind', tokenizer.get('kind'))}'' "
            f"({value('BaseVocabSize', tokenizer.get('base_vocab_size'))} base tokens, "
            f"{value('TotalTokens', tokenizer.get('total_tokens'))} with the added special "
            f"tokens) into {value('TokenCount', analysis.get('token_count'))} tokens for its "
            f"{value('DigitCount', analysis.get('digit_count'))} digits. One token per digit: "
            f"{report.define('IdAnalysisOneTokenPerDigit', fmt_yes_no(analysis.get('one_token_per_digit')))}.")
    if analysis.get("student_id_is_example"):
        text += (" \\textcolor{red}{This is the example ID, not a student's: set STUDENT\\_ID or "
                 "fill in student.toml.}")
    return text + "\n\n"


def id_tokens_table(report: Report, analysis: dict[str, Any]) -> str:
    ids, tokens = analysis.get("ids") or [], analysis.get("tokens") or []
    pieces = analysis.get("pieces") or []
    if not ids and not tokens:
        return ""
    rows = []
    for index in range(max(len(ids), len(tokens))):
        prefix = "IdAnalysisToken" + macro_name(index + 1)
        cells = [report.define(prefix + "Position", fmt_number(index + 1)),
                 report.define(prefix + "Id", fmt_number(ids[index]) if index < len(ids) else "--"),
                 f"\\texttt{{{latex_escape(tokens[index])}}}" if index < len(tokens) else "--",
                 f"\\texttt{{{latex_escape(repr(pieces[index]))}}}" if index < len(pieces) else "--"]
        rows.append(" & ".join(cells) + " \\\\")
    caption = ("The ID's tokens: position, token id, token string in the vocabulary (byte-level "
               "BPE writes a leading space as \\texttt{<U+0120>}, and other non-ASCII "
               "characters are shown as code points) and the text it decodes to.")
    return tabularx_table("rrXX", "Position & Token id & Token & Decodes to",
                          rows[:MAX_TABLE_ROWS], caption,
                          "tab:id-tokens", len(rows))


def id_context_table(report: Report, analysis: dict[str, Any]) -> str:
    contexts = [row for row in analysis.get("contexts") or [] if isinstance(row, dict)]
    if not contexts:
        return ""
    rows = []
    for number, row in enumerate(contexts[:MAX_TABLE_ROWS], start=1):
        prefix = "IdAnalysisContext" + macro_name(number)
        cells = [f"\\texttt{{{latex_escape(row.get('text', '--'))}}}",
                 report.define(prefix + "TotalTokens", fmt_number(row.get("total_tokens"))),
                 report.define(prefix + "IdTokenCount", fmt_number(row.get("id_token_count"))),
                 token_text(row.get("id_tokens")),
                 report.define(prefix + "SameAsAlone", fmt_yes_no(row.get("same_as_alone")))]
        rows.append(" & ".join(cells) + " \\\\")
    caption = ("Context effect: the ID inside short texts. Total: tokens of the whole text. "
               "ID tokens: the tokens that overlap the ID's characters (from the tokenizer's "
               "offset mapping). Same: whether they equal the tokens of the ID encoded alone.")
    return tabularx_table(">{\\raggedright\\arraybackslash}p{0.28\\linewidth}rr"
                          ">{\\raggedright\\arraybackslash}Xl",
                          "Text & Total & ID tokens & Tokens overlapping the ID & Same", rows,
                          caption, "tab:id-context", len(contexts))


def id_formats_table(report: Report, analysis: dict[str, Any]) -> str:
    formats = [row for row in analysis.get("formats") or [] if isinstance(row, dict)]
    if not formats:
        return ""
    rows = []
    for number, row in enumerate(formats[:MAX_TABLE_ROWS], start=1):
        count = report.define("IdAnalysisFormat" + macro_name(number) + "TokenCount",
                              fmt_number(row.get("token_count")))
        rows.append(f"{latex_escape(row.get('format', '--'))} & "
                    f"\\texttt{{{latex_escape(row.get('text', '--'))}}} & {count} & "
                    f"{token_text(row.get('tokens'))} \\\\")
    caption = "The ID written in other formats: its text, token count and tokens."
    return tabularx_table(">{\\raggedright\\arraybackslash}p{0.16\\linewidth}"
                          ">{\\raggedright\\arraybackslash}p{0.24\\linewidth}r"
                          ">{\\raggedright\\arraybackslash}X",
                          "Format & Text & Tokens & Token strings", rows, caption,
                          "tab:id-formats", len(formats))


def id_digit_split_table(report: Report, scratch: dict[str, Any]) -> str:
    tokenizers = scratch.get("tokenizers") or {}
    if not tokenizers:
        return ""
    rows = []
    for number, (name, row) in enumerate(tokenizers.items(), start=1):
        count = report.define("IdAnalysisScratch" + macro_name(number) + "TokenCount",
                              fmt_number((row or {}).get("token_count")))
        rows.append(f"{latex_escape(name)} & {count} & {token_text((row or {}).get('tokens'))} \\\\")
    caption = ("Digit split: the ID under byte-level BPE tokenizers trained from scratch on "
               + latex_escape(scratch.get("corpus", "a local corpus"))
               + ", named by vocabulary size. They split digits as Qwen3's pre-tokenizer does, "
               "except the one marked ``digits kept together'', which uses GPT-2's.")
    return tabularx_table(">{\\raggedright\\arraybackslash}p{0.3\\linewidth}r"
                          ">{\\raggedright\\arraybackslash}X",
                          "Tokenizer & Tokens & Token strings", rows, caption, "tab:id-digits")


def id_fertility_table(report: Report, scratch: dict[str, Any]) -> str:
    """Return tokens per word and per character, one row per tokenizer, a column pair per text."""
    records = [row for row in scratch.get("fertility") or [] if isinstance(row, dict)]
    if not records:
        return ""
    tokenizers = list(dict.fromkeys(row.get("tokenizer", "--") for row in records))
    texts = list(dict.fromkeys(row.get("text", "--") for row in records))
    cells = {(row.get("tokenizer", "--"), row.get("text", "--")): row for row in records}
    rows = []
    for tokenizer_number, tokenizer in enumerate(tokenizers, start=1):
        row_cells = [latex_escape(tokenizer)]
        for text_number, text in enumerate(texts, start=1):
            record = cells.get((tokenizer, text), {})
            prefix = "IdAnalysisFertility" + macro_name(tokenizer_number, "text", text_number)
            row_cells.append(report.define(prefix + "PerWord",
                                           fmt_number(record.get("tokens_per_word"), 2)))
            row_cells.append(report.define(prefix + "PerCharacter",
                                           fmt_number(record.get("tokens_per_character"), 2)))
        rows.append(" & ".join(row_cells) + " \\\\")
    groups = " & ".join(f"\\multicolumn{{2}}{{c}}{{{latex_escape(text)}}}" for text in texts)
    rules = "".join(f"\\cmidrule(lr){{{2 + 2 * index}-{3 + 2 * index}}}"
                    for index in range(len(texts)))
    header = (f"& {groups} \\\\\n{rules}\nTokenizer" + " & /word & /char" * len(texts))
    caption = ("Fertility: tokens per whitespace-separated word (/word) and per character "
               "(/char) on texts outside the BPE training split. Chinese has no spaces, so its "
               "words are undercounted and its tokens per word overstated.")
    return tabularx_table(">{\\raggedright\\arraybackslash}X" + "rr" * len(texts), header, rows,
                          caption, "tab:id-fertility")


def write_id_analysis(report: Report, analysis: dict[str, Any]) -> str:
    scratch = analysis.get("scratch_bpe") or {}
    return (id_sentence(report, analysis) + id_tokens_table(report, analysis)
            + id_context_table(report, analysis) + id_formats_table(report, analysis)
            + id_digit_split_table(report, scratch) + id_fertility_table(report, scratch))


def write_part2(report: Report) -> None:
    parity = report.load_json("part2/parity.json")
    report.files["part2_parity.tex"] = (
        write_parity(report, parity) if parity is not None
        else "\\notrun{}: evaluation/part2/parity.json is missing.\n")

    benchmark = report.load_json("part2/benchmark.json")
    report.files["part2_benchmark.tex"] = (
        write_benchmark(report, benchmark) if benchmark is not None
        else "\\notrun{}: evaluation/part2/benchmark.json is missing.\n")

    part1_benchmark_path = report.eval_dir / "part1" / "benchmark.json"
    if part1_benchmark_path.is_file():
        part1_benchmark = report.load_json("part1/benchmark.json")
        report.files["part1_benchmark.tex"] = json_table(
            report, part1_benchmark or {}, "PartOneBench", "Part 1 throughput (benchmark.json).")
    else:
        report.files["part1_benchmark.tex"] = "\\notrun{}: evaluation/part1/benchmark.json is missing.\n"

    report.define("SampleMaxBlockLines", str(MAX_BLOCK_LINES))
    report.files["part2_generation.tex"] = (
        "\\subsection*{Generation samples}\n"
        + write_samples(report, "part2/generation_samples.md", "generation_samples")
        + "\\subsection*{Chat transcript}\n"
        + write_samples(report, "part2/chat_transcript.md", "chat_transcript"))

    analysis = report.load_json("part2/id_analysis.json")
    report.files["part2_tokenizer.tex"] = (
        write_id_analysis(report, analysis) if analysis is not None
        else "\\notrun{}: evaluation/part2/id\\_analysis.json is missing.\n")


def find_definition(tree: ast.Module, qualified_name: str) -> ast.AST | None:
    """Return the function or method QUALIFIED_NAME ('Class.method' or 'function') in TREE."""
    scope: list[ast.stmt] = tree.body
    node = None
    for part in qualified_name.split("."):
        node = next((item for item in scope if isinstance(
            item, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and item.name == part), None)
        if node is None:
            return None
        scope = node.body
    return node


def write_code_excerpts(report: Report, source_path: Path = ROCLM_SOURCE) -> None:
    """Copy the definitions behind each formula from the RocLM source into listings, so the
    code in the PDF is the code that ran."""
    if not source_path.is_file():
        report.missing.append(str(source_path.relative_to(REPO_ROOT))
                              if source_path.is_relative_to(REPO_ROOT) else str(source_path))
        for name in CODE_EXCERPTS:
            report.files[name] = "\\notrun{}: part2/roclm\\_model.py is missing.\n"
        return
    source = source_path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    lines = source.splitlines()
    for name, definitions in CODE_EXCERPTS.items():
        blocks, absent = [], []
        for qualified_name in definitions:
            node = find_definition(tree, qualified_name)
            if node is None:
                absent.append(qualified_name)
                continue
            start = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list])
            block = lines[start - 1:node.end_lineno]
            indent = min(len(line) - len(line.lstrip()) for line in block if line.strip())
            blocks.append("\n".join(line[indent:] for line in block))
        text = ""
        if blocks:
            listing_name = "code/" + name.replace(".tex", ".py")
            write_atomic(report.output_dir / listing_name, ascii_text("\n\n".join(blocks)) + "\n")
            text += f"\\lstinputlisting[style=python]{{generated/{listing_name}}}\n"
        for qualified_name in absent:
            report.missing.append(f"{qualified_name} in part2/roclm_model.py")
            text += f"\\notrun{{}}: {latex_escape(qualified_name)} is not in part2/roclm\\_model.py.\n"
        report.files[name] = text



def build_report(eval_dir: Path, output_dir: Path) -> Report:
    """Regenerate OUTPUT_DIR from EVAL_DIR and return the report (its .missing lists gaps)."""
    if output_dir.exists():
        shutil.rmtree(output_dir)
    output_dir.mkdir(parents=True)
    report = Report(eval_dir, output_dir)
    write_profile(report)
    write_header(report)
    write_part1(report)
    write_part2(report)
    write_code_excerpts(report)
    write_missing(report)
    report.write()
    return report


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Write latex/generated/*.tex from evaluation/.")
    parser.add_argument("--eval-dir", type=Path, default=REPO_ROOT / "evaluation",
                        help="folder with the results (default: evaluation/)")
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "latex" / "generated",
                        help="folder to (re)create with the generated .tex files and figures "
                             "(default: latex/generated/)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        report = build_report(args.eval_dir, args.output_dir)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path in report.missing:
        print(f"warning: missing input, marked 'not run' in the report: {path}", file=sys.stderr)
    print(f"wrote {len(report.macros)} macros and {len(report.files)} files to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
