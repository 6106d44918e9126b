"""Test-split metrics for Part 1, built on scikit-learn.

Labels are integers 0..n_classes-1 (CLASS-ID - 1 in the official Oxford-IIIT Pet order). Every
function here is pure: arrays in, plain Python numbers, lists and dicts out, ready for JSON.

Per-class scores always use labels=range(n_classes) with zero_division=0. A class without test
images therefore has support 0 and precision, recall and F1 of 0, and it still counts in the macro
average. The full test split has images for every breed, so this only matters for samples and
smoke runs; such classes are listed under "classes_without_test_images".
"""
from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (accuracy_score, classification_report, confusion_matrix,
                             precision_recall_fscore_support, top_k_accuracy_score)

from tools.provenance import run_profile, write_atomic

SPECIES = ("cat", "dog")
TOP_K = 5
CONVERGENCE_TOLERANCE = 0.005
# Float slack so that a value exactly 0.005 below the best (0.895 vs 0.9) counts as within it.
_FLOAT_SLACK = 1e-9
# "profile" repeats the run profile on every row, so a smoke CSV is marked even when read alone.
REPORT_CSV_COLUMNS = ("label", "precision", "recall", "f1-score", "support", "profile")


def _as_label_array(values, name: str, n_classes: int) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of class indices, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must contain integer class indices, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= n_classes):
        raise ValueError(f"{name} contains invalid labels outside 0..{n_classes - 1}: "
                         f"min {array.min()}, max {array.max()}")
    return array


def _check_species(species_of_class: Sequence[str], n_classes: int) -> list[str]:
    species = list(species_of_class)
    if len(species) != n_classes:
        raise ValueError(f"species_of_class has {len(species)} entries but there are "
                         f"{n_classes} classes; give one species per class")
    unknown = sorted(set(species) - set(SPECIES))
    if unknown:
        raise ValueError(f"unknown species {unknown}: each class must be one of {list(SPECIES)}")
    return species


def epochs_to_convergence(val_accs: Sequence[float],
                          tolerance: float = CONVERGENCE_TOLERANCE) -> int:
    """Return the first 1-based epoch whose validation accuracy is within `tolerance` of the best.

    Accuracies are fractions, so the default 0.005 is half a percentage point. NaN epochs are
    skipped. Raises ValueError for an empty curve or one without a finite value.
    """
    accs = np.asarray(list(val_accs), dtype=np.float64)
    if accs.size == 0:
        raise ValueError("val_accs is empty, but epochs to convergence needs at least one epoch")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    finite = np.isfinite(accs)
    if not finite.any():
        raise ValueError("val_accs contains no finite value because every validation accuracy is NaN")

    best = accs[finite].max()
    within = finite & (accs >= best - tolerance - _FLOAT_SLACK)
    return int(np.flatnonzero(within)[0]) + 1


def species_confusion(y_true, y_pred, species_of_class: Sequence[str]) -> list[list[int]]:
    """Count cat/dog outcomes: [[cat->cat, cat->dog], [dog->cat, dog->dog]] (rows are true)."""
    species = np.asarray(_check_species(species_of_class, len(species_of_class)))
    y_true = _as_label_array(y_true, "y_true", len(species))
    y_pred = _as_label_array(y_pred, "y_pred", len(species))
    matrix = confusion_matrix(species[y_true], species[y_pred], labels=list(SPECIES))
    return matrix.astype(int).tolist()


def most_confused_pairs(confusion, class_names: Sequence[str], k: int = 10) -> list[dict]:
    """List the k largest off-diagonal cells of a confusion matrix (rows true, columns predicted).

    Pairs are directed (true -> predicted) and sorted by count, largest first. Equal counts keep
    row-major order (true index, then predicted index). Cells with count 0 are left out.
    """
    matrix = np.asarray(confusion)
    n_classes = len(class_names)
    if matrix.shape != (n_classes, n_classes):
        raise ValueError(f"confusion has shape {matrix.shape}, expected ({n_classes}, {n_classes}) "
                         "to match class_names")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")

    off_diagonal = matrix.copy()
    np.fill_diagonal(off_diagonal, 0)
    rows, cols = np.nonzero(off_diagonal > 0)
    counts = off_diagonal[rows, cols]
    # np.lexsort sorts by the last key first; rows and cols come out of nonzero in row-major order.
    order = np.lexsort((cols, rows, -counts))[:k]
    return [{"true": class_names[rows[i]], "predicted": class_names[cols[i]],
             "count": int(counts[i])} for i in order]


def top_k_accuracy(y_true, probs, n_classes: int, k: int = TOP_K) -> float:
    """Return top-k accuracy over all n_classes columns, including classes absent from y_true."""
    scores = np.asarray(probs, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] != n_classes:
        raise ValueError(f"probs has shape {scores.shape}, expected (num_images, {n_classes})")
    if k >= n_classes:
        # Every class is among the top k, so every prediction counts as correct.
        return 1.0
    return float(top_k_accuracy_score(y_true, scores, k=k, labels=list(range(n_classes))))


def classification_metrics(y_true, y_pred, probs, class_names: Sequence[str],
                           species: Sequence[str], *, top_k: int = TOP_K,
                           num_confused_pairs: int = 10) -> dict:
    """Compute the "test" block of metrics.json plus per-class rows and the confusion matrix.

    Args:
        y_true, y_pred: class indices, one per test image.
        probs: (num_images, n_classes) scores used for top-k; None leaves "top5" as None.
        species: the species ("cat" or "dog") of each class, in class order.

    Returns the contract's "test" keys plus "per_class" (rows with class, species, precision,
    recall, f1, support) and "confusion_matrix" (rows true, columns predicted). The caller moves
    the last two out of the "test" block if it stores them elsewhere.
    """
    class_names = list(class_names)
    n_classes = len(class_names)
    species = _check_species(species, n_classes)
    y_true = _as_label_array(y_true, "y_true", n_classes)
    y_pred = _as_label_array(y_pred, "y_pred", n_classes)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} labels but y_pred has {y_pred.size}")
    if y_true.size == 0:
        raise ValueError("y_true is empty, so there are no test images to score")
    labels = list(range(n_classes))

    top5 = None
    if probs is not None:
        if len(probs) != y_true.size:
            raise ValueError(f"probs has {len(probs)} rows but there are {y_true.size} labels")
        top5 = top_k_accuracy(y_true, probs, n_classes, k=top_k)

    averages = {}
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0)
        averages[average] = (float(precision), float(recall), float(f1))

    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0)
    per_class = [{"class": class_names[i], "species": species[i], "precision": float(precision[i]),
                  "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
                 for i in labels]

    confusion = confusion_matrix(y_true, y_pred, labels=labels)
    species_matrix = species_confusion(y_true, y_pred, species)
    return {
        "num_images": int(y_true.size),
        "top1": float(accuracy_score(y_true, y_pred)),
        "top5": top5,
        "macro_precision": averages["macro"][0],
        "macro_recall": averages["macro"][1],
        "macro_f1": averages["macro"][2],
        "weighted_precision": averages["weighted"][0],
        "weighted_recall": averages["weighted"][1],
        "weighted_f1": averages["weighted"][2],
        "species_accuracy": float(np.trace(species_matrix) / y_true.size),
        "species_confusion": species_matrix,
        "most_confused_pairs": most_confused_pairs(confusion, class_names, num_confused_pairs),
        "classes_without_test_images": [row["class"] for row in per_class if row["support"] == 0],
        "per_class": per_class,
        "confusion_matrix": confusion.astype(int).tolist(),
    }


def write_classification_report_csv(path: str | os.PathLike, y_true, y_pred,
                                    class_names: Sequence[str]) -> dict:
    """Write scikit-learn's classification report as CSV and return the report dict.

    Columns: label, precision, recall, f1-score, support, profile ("full" or "smoke"). Rows: one per class in class order,
    then "accuracy", "macro avg" and "weighted avg". As in scikit-learn's text report, the
    accuracy row keeps the accuracy in f1-score, leaves precision and recall empty and gives
    the number of images as support.
    """
    class_names = list(class_names)
    n_classes = len(class_names)
    y_true = _as_label_array(y_true, "y_true", n_classes)
    y_pred = _as_label_array(y_pred, "y_pred", n_classes)
    report = classification_report(y_true, y_pred, labels=list(range(n_classes)),
                                   target_names=class_names, output_dict=True, zero_division=0)

    profile = run_profile()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(REPORT_CSV_COLUMNS)
    for label in [*class_names, "macro avg", "weighted avg"]:
        row = report[label]
        writer.writerow([label, repr(float(row["precision"])), repr(float(row["recall"])),
                         repr(float(row["f1-score"])), int(row["support"]), profile])
        if label == class_names[-1]:
            accuracy = float(report.get("accuracy", accuracy_score(y_true, y_pred)))
            writer.writerow(["accuracy", "", "", repr(accuracy), int(y_true.size), profile])
    write_atomic(path, buffer.getvalue())
    return report


def read_classification_report_csv(path: str | os.PathLike) -> dict[str, dict]:
    """Read a CSV written by write_classification_report_csv into {label: {column: value}}.

    Empty cells come back as NaN, so the accuracy row has NaN precision and recall.
    """
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    report = {}
    for row in rows:
        report[row["label"]] = {
            "precision": float(row["precision"]) if row["precision"] else math.nan,
            "recall": float(row["recall"]) if row["recall"] else math.nan,
            "f1-score": float(row["f1-score"]) if row["f1-score"] else math.nan,
            "support": int(row["support"]),
        }
    return report
