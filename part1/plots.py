"""Plots for Part 1: per-run evaluation figures and the side-by-side comparison of runs.

Figures are built on matplotlib's Agg canvas without pyplot, so nothing depends on a display or
on pyplot's global figure list. Every function writes a PNG atomically and returns the Figure,
whose suptitle carries the title; under RUN_PROFILE=smoke the title starts with "SMOKE:".
"""
from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from part1.metrics import CONVERGENCE_TOLERANCE, epochs_to_convergence
from tools.provenance import is_smoke, write_atomic

DPI = 120
SPECIES_COLORS = {"cat": "tab:orange", "dog": "tab:blue"}
SMOKE_PREFIX = "SMOKE: "
# Above this many classes the confusion matrix cells are too small for printed counts.
MAX_CLASSES_WITH_COUNTS = 15
TICK_FONT_SIZE = 7


def profile_title(title: str, smoke: bool | None = None) -> str:
    """Return the title with a "SMOKE: " prefix for smoke runs, never adding it twice.

    smoke=None reads the profile from RUN_PROFILE (tools.provenance.is_smoke); True or False
    overrides it, for example when the inputs of a comparison come from a smoke run.
    """
    smoke = is_smoke() if smoke is None else smoke
    if smoke and not title.startswith(SMOKE_PREFIX):
        return SMOKE_PREFIX + title
    return title


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | os.PathLike) -> Figure:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    write_atomic(path, buffer.getvalue())
    return figure


def plot_confusion_matrix(confusion, class_names: Sequence[str], path: str | os.PathLike,
                          title: str, *, smoke: bool | None = None) -> Figure:
    """Plot a confusion matrix (rows true, columns predicted), colored by row-normalized recall.

    Colors use each row's fraction so that classes with few test images stay readable; small
    matrices also print the raw counts in the cells.
    """
    matrix = np.asarray(confusion, dtype=np.float64)
    n_classes = len(class_names)
    if matrix.shape != (n_classes, n_classes):
        raise ValueError(f"confusion has shape {matrix.shape}, expected ({n_classes}, {n_classes})")
    row_sums = matrix.sum(axis=1, keepdims=True)
    fractions = np.divide(matrix, row_sums, out=np.zeros_like(matrix), where=row_sums > 0)

    side = max(6.0, 0.3 * n_classes + 3.0)
    figure = _new_figure(side + 1.5, side)
    axes = figure.add_subplot()
    image = axes.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    colorbar = figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    colorbar.set_label("fraction of the true class")

    ticks = np.arange(n_classes)
    axes.set_xticks(ticks, labels=list(class_names), rotation=90, fontsize=TICK_FONT_SIZE)
    axes.set_yticks(ticks, labels=list(class_names), fontsize=TICK_FONT_SIZE)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    if n_classes <= MAX_CLASSES_WITH_COUNTS:
        for i in range(n_classes):
            for j in range(n_classes):
                if matrix[i, j]:
                    color = "white" if fractions[i, j] > 0.5 else "black"
                    axes.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center",
                              fontsize=TICK_FONT_SIZE, color=color)
    figure.suptitle(profile_title(title, smoke))
    return _save(figure, path)


def _column(rows: Sequence[Mapping], key: str) -> np.ndarray:
    """Return one history column as floats, with None (a missing value) as NaN."""
    return np.array([math.nan if row.get(key) is None else float(row[key]) for row in rows])


def plot_training_curves(history_rows: Sequence[Mapping], path: str | os.PathLike, title: str,
                         *, tolerance: float = CONVERGENCE_TOLERANCE,
                         smoke: bool | None = None) -> Figure:
    """Plot loss and accuracy per epoch, train against validation, with the best and the
    convergence epoch marked (convergence as in part1.metrics.epochs_to_convergence)."""
    if not history_rows:
        raise ValueError("history_rows is empty, but training curves need at least one epoch")
    epochs = np.array([int(row["epoch"]) for row in history_rows])
    val_acc = _column(history_rows, "val_acc")
    best_epoch = converged_epoch = None
    if np.isfinite(val_acc).any():
        best_epoch = int(epochs[np.nanargmax(val_acc)])
        converged_epoch = int(epochs[epochs_to_convergence(val_acc, tolerance) - 1])

    figure = _new_figure(12.0, 4.5)
    loss_axes, acc_axes = figure.subplots(1, 2)
    marker = "o" if len(epochs) <= 30 else None
    for axes, key, ylabel, scale in ((loss_axes, "loss", "loss", 1.0),
                                     (acc_axes, "acc", "accuracy (%)", 100.0)):
        axes.plot(epochs, scale * _column(history_rows, f"train_{key}"), marker=marker,
                  label="train")
        axes.plot(epochs, scale * _column(history_rows, f"val_{key}"), marker=marker,
                  label="validation")
        if best_epoch is not None:
            axes.axvline(best_epoch, color="tab:green", linestyle="--",
                         label=f"best epoch ({best_epoch})")
            axes.axvline(converged_epoch, color="tab:gray", linestyle=":",
                         label=f"convergence ({converged_epoch}, within "
                               f"{100 * tolerance:g} pt of best)")
        axes.set_xlabel("epoch")
        axes.set_ylabel(ylabel)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    if len(epochs) <= 20:
        for axes in (loss_axes, acc_axes):
            axes.set_xticks(epochs)
    loss_axes.set_title("loss")
    acc_axes.set_title("accuracy")
    figure.suptitle(profile_title(title, smoke))
    return _save(figure, path)


def plot_per_class_f1(per_class_rows: Sequence[Mapping], path: str | os.PathLike, title: str,
                      *, smoke: bool | None = None) -> Figure:
    """Plot per-class F1 as horizontal bars sorted from best (top) to worst, colored by species.

    Rows are the "per_class" entries of part1.metrics.classification_metrics; classes without
    test images are labelled so their F1 of 0 is not read as a result.
    """
    if not per_class_rows:
        raise ValueError("per_class_rows is empty, so there is no class to plot")
    rows = sorted(per_class_rows, key=lambda row: (row["f1"], row["class"]))
    names = [row["class"] for row in rows]
    f1 = np.array([100.0 * row["f1"] for row in rows])
    colors = [SPECIES_COLORS.get(row.get("species"), "tab:gray") for row in rows]

    figure = _new_figure(8.0, max(4.0, 0.28 * len(rows) + 1.5))
    axes = figure.add_subplot()
    bars = axes.barh(np.arange(len(rows)), f1, color=colors)
    for bar, row in zip(bars, rows):
        if row.get("support", 1) == 0:
            axes.text(1.0, bar.get_y() + bar.get_height() / 2, "no test images", va="center",
                      fontsize=TICK_FONT_SIZE, color="tab:gray")
    axes.set_yticks(np.arange(len(rows)), labels=names, fontsize=TICK_FONT_SIZE + 1)
    axes.set_xlim(0, 100)
    axes.set_xlabel("F1 (%)")
    axes.axvline(f1.mean(), color="black", linestyle="--", linewidth=1)
    handles = [Patch(color=color, label=species) for species, color in SPECIES_COLORS.items()]
    handles.append(Line2D([], [], color="black", linestyle="--", linewidth=1,
                          label=f"macro F1 {f1.mean():.1f}%"))
    axes.legend(handles=handles, loc="lower right", fontsize=8)
    axes.grid(axis="x", alpha=0.3)
    figure.suptitle(profile_title(title, smoke))
    return _save(figure, path)


def plot_misclassified(items: Sequence[Mapping], path: str | os.PathLike, title: str, *,
                       columns: int = 4, smoke: bool | None = None) -> Figure:
    """Plot a grid of misclassified images, each captioned with true label, prediction and the
    model's confidence in that prediction.

    items are dicts {"image": PIL.Image (RGB), "true": str, "predicted": str,
    "confidence": float in [0, 1]}. All given items are drawn; the caller picks how many.
    An empty list writes a figure stating that there are none.
    """
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    if not items:
        figure = _new_figure(6.0, 2.0)
        axes = figure.add_subplot()
        axes.axis("off")
        axes.text(0.5, 0.5, "no misclassified test images", ha="center", va="center")
        figure.suptitle(profile_title(title, smoke))
        return _save(figure, path)

    n_columns = min(columns, len(items))
    n_rows = math.ceil(len(items) / n_columns)
    figure = _new_figure(3.0 * n_columns, 3.3 * n_rows)
    grid = figure.subplots(n_rows, n_columns, squeeze=False)
    for index, axes in enumerate(grid.flat):
        axes.axis("off")
        if index >= len(items):
            continue
        item = items[index]
        axes.imshow(np.asarray(item["image"].convert("RGB")))
        axes.set_title(f"true: {item['true']}\npredicted: {item['predicted']}\n"
                       f"confidence {100.0 * float(item['confidence']):.1f}%",
                       fontsize=8, color="tab:red")
    figure.suptitle(profile_title(title, smoke))
    return _save(figure, path)


def plot_grouped_bars(run_names: Sequence[str], series: Mapping[str, Sequence[float | None]],
                      path: str | os.PathLike, title: str, ylabel: str, *,
                      value_format: str = "{:.1f}", integer_axis: bool = False,
                      smoke: bool | None = None) -> Figure:
    """Plot one group of bars per run, one bar per series, with the value written on each bar.

    series maps a legend label to one value per run; None (a value the run lacks) draws no bar.
    integer_axis puts ticks on whole numbers only, for counts such as epochs.
    """
    if not run_names:
        raise ValueError("run_names is empty, so there is no run to compare")
    for label, values in series.items():
        if len(values) != len(run_names):
            raise ValueError(f"series {label!r} has {len(values)} values for "
                             f"{len(run_names)} runs")
    positions = np.arange(len(run_names))
    width = 0.8 / max(1, len(series))

    figure = _new_figure(max(6.0, 1.8 * len(run_names) + 2.0), 4.8)
    axes = figure.add_subplot()
    for index, (label, values) in enumerate(series.items()):
        heights = np.array([math.nan if value is None else float(value) for value in values])
        offsets = positions + (index - (len(series) - 1) / 2) * width
        bars = axes.bar(offsets, np.nan_to_num(heights), width, label=label)
        for bar, height in zip(bars, heights):
            if math.isfinite(height):
                axes.annotate(value_format.format(height), (bar.get_x() + bar.get_width() / 2,
                                                            height),
                              ha="center", va="bottom", fontsize=8)
            else:
                bar.set_visible(False)
    axes.set_xticks(positions, labels=list(run_names), rotation=15, ha="right", fontsize=9)
    axes.set_ylabel(ylabel)
    axes.grid(axis="y", alpha=0.3)
    axes.margins(y=0.15)
    if integer_axis:
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    if len(series) > 1:
        axes.legend(fontsize=8)
    figure.suptitle(profile_title(title, smoke))
    return _save(figure, path)


def plot_validation_curves(curves: Mapping[str, Sequence[Mapping]], path: str | os.PathLike,
                           title: str, *, smoke: bool | None = None) -> Figure:
    """Overlay the validation accuracy per epoch of several runs.

    curves maps a run name to its history rows (dicts with "epoch" and "val_acc").
    """
    if not curves:
        raise ValueError("curves is empty, so there is no run to plot")
    figure = _new_figure(8.0, 5.0)
    axes = figure.add_subplot()
    for run_name, rows in curves.items():
        epochs = [int(row["epoch"]) for row in rows]
        axes.plot(epochs, 100.0 * _column(rows, "val_acc"), marker="o" if len(rows) <= 30 else None,
                  label=run_name)
    axes.set_xlabel("epoch")
    axes.set_ylabel("validation accuracy (%)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.suptitle(profile_title(title, smoke))
    return _save(figure, path)
