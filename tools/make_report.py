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
# Generated text is cut to this many lines so a long transcript cannot swamp the PDF.
MAX_LISTING_LINES = 150
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


def listing(report: Report, relative: str, name: str) -> str:
    """Copy a text artifact as ASCII into the generated folder and return a listing of it."""
    source = report.eval_dir / relative
    if not source.is_file():
        report.missing.append(f"{report.eval_dir.name}/{relative}")
        return f"\\notrun{{}}: {latex_escape(relative)} is missing.\n"
    # listings cannot break a line without spaces, and random-model output has such lines.
    lines = [piece for line in ascii_text(source.read_text(encoding="utf-8", errors="replace"))
             .splitlines() for piece in (textwrap.wrap(line, LISTING_WIDTH, break_long_words=True,
                                                       drop_whitespace=False) or [""])]
    note = ""
    if len(lines) > MAX_LISTING_LINES:
        note = (f"\\noindent The first {MAX_LISTING_LINES} of {len(lines)} lines are shown; "
                f"the whole file is {latex_escape(relative)}.\n")
        lines = lines[:MAX_LISTING_LINES]
    write_atomic(report.output_dir / name, "\n".join(lines) + "\n")
    return note + f"\\lstinputlisting{{generated/{name}}}\n"


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


def id_sentence(analysis: dict[str, Any]) -> str:
    ids = find_values(analysis, r"^student_id$")
    counts = [value for _, value in find_values(analysis, r"(token_count|num_tokens|n_tokens)$")
              if isinstance(value, int)]
    if not ids or not counts:
        return ""
    return (f"The ID {latex_escape(ids[0][1])} becomes {counts[0]} tokens when encoded on its own "
            f"(the first token count recorded in id\\_analysis.json).\n\n")


def write_part2(report: Report) -> None:
    parity = report.load_json("part2/parity.json")
    report.files["part2_parity.tex"] = (
        parity_sentence(parity) + json_table(report, parity, "Parity",
                                             "Parity of RocLM with transformers (parity.json).")
        if parity is not None else "\\notrun{}: evaluation/part2/parity.json is missing.\n")

    benchmark = report.load_json("part2/benchmark.json")
    report.files["part2_benchmark.tex"] = (
        json_table(report, benchmark, "Bench", "Generation speed (benchmark.json).")
        if benchmark is not None else "\\notrun{}: evaluation/part2/benchmark.json is missing.\n")

    part1_benchmark_path = report.eval_dir / "part1" / "benchmark.json"
    if part1_benchmark_path.is_file():
        part1_benchmark = report.load_json("part1/benchmark.json")
        report.files["part1_benchmark.tex"] = json_table(
            report, part1_benchmark or {}, "PartOneBench", "Part 1 throughput (benchmark.json).")
    else:
        report.files["part1_benchmark.tex"] = "\\notrun{}: evaluation/part1/benchmark.json is missing.\n"

    report.files["part2_generation.tex"] = (
        "\\subsection*{Generation samples}\n" + listing(report, "part2/generation_samples.md",
                                                        "generation_samples.txt")
        + "\\subsection*{Chat transcript}\n" + listing(report, "part2/chat_transcript.md",
                                                       "chat_transcript.txt"))

    analysis = report.load_json("part2/id_analysis.json")
    report.files["part2_tokenizer.tex"] = (
        id_sentence(analysis) + json_table(report, analysis, "IdAnalysis",
                                           "Tokenizer analysis of the student ID (id\\_analysis.json).")
        if analysis is not None else "\\notrun{}: evaluation/part2/id\\_analysis.json is missing.\n")


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
