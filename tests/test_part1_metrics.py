"""part1.metrics against scikit-learn computed independently, plus hand-made edge cases."""
import math

import numpy as np
import pytest
from sklearn.metrics import (accuracy_score, classification_report, confusion_matrix,
                             precision_recall_fscore_support, top_k_accuracy_score)

from part1.metrics import (classification_metrics, epochs_to_convergence, most_confused_pairs,
                           read_classification_report_csv, species_confusion,
                           write_classification_report_csv)

N_CLASSES = 37
CLASS_NAMES = [f"breed_{index:02d}" for index in range(N_CLASSES)]
# The official order has the 12 cat breeds scattered among the dogs; mimic that with every third.
SPECIES = ["cat" if index % 3 == 0 and index < 36 else "dog" for index in range(N_CLASSES)]
ABSENT_CLASSES = (4, 17, 36)
# Absent from the labels and never predicted either, so only labels=range(37) includes it.
UNSEEN_CLASS = 36


def _random_predictions(seed: int, num_images: int = 300):
    """Return labels without ABSENT_CLASSES, predictions (some in ABSENT_CLASSES), and scores."""
    rng = np.random.default_rng(seed)
    present = np.array([index for index in range(N_CLASSES) if index not in ABSENT_CLASSES])
    y_true = rng.choice(present, size=num_images)
    random_guess = rng.integers(0, N_CLASSES, size=num_images)
    random_guess[random_guess == UNSEEN_CLASS] = 0
    y_pred = np.where(rng.random(num_images) < 0.5, y_true, random_guess)
    probs = rng.random((num_images, N_CLASSES))
    # Make the prediction the arg-max, as it is for a real model, so top-5 >= top-1 holds.
    probs[np.arange(num_images), y_pred] += 1.0
    probs /= probs.sum(axis=1, keepdims=True)
    return y_true, y_pred, probs


@pytest.fixture(params=[0, 1, 2])
def predictions(request):
    return _random_predictions(request.param)


def test_averages_match_sklearn(predictions):
    y_true, y_pred, probs = predictions
    result = classification_metrics(y_true, y_pred, probs, CLASS_NAMES, SPECIES)
    labels = list(range(N_CLASSES))

    assert result["num_images"] == len(y_true)
    assert result["top1"] == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0)
        assert result[f"{average}_precision"] == pytest.approx(precision, abs=1e-12)
        assert result[f"{average}_recall"] == pytest.approx(recall, abs=1e-12)
        assert result[f"{average}_f1"] == pytest.approx(f1, abs=1e-12)


def test_per_class_rows_match_sklearn(predictions):
    y_true, y_pred, probs = predictions
    result = classification_metrics(y_true, y_pred, probs, CLASS_NAMES, SPECIES)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(N_CLASSES)), zero_division=0)

    assert [row["class"] for row in result["per_class"]] == CLASS_NAMES
    assert [row["species"] for row in result["per_class"]] == SPECIES
    np.testing.assert_allclose([row["precision"] for row in result["per_class"]], precision)
    np.testing.assert_allclose([row["recall"] for row in result["per_class"]], recall)
    np.testing.assert_allclose([row["f1"] for row in result["per_class"]], f1)
    assert [row["support"] for row in result["per_class"]] == support.tolist()
    expected_confusion = confusion_matrix(y_true, y_pred, labels=list(range(N_CLASSES)))
    assert result["confusion_matrix"] == expected_confusion.tolist()


def test_top5_with_absent_classes(predictions):
    y_true, y_pred, probs = predictions
    result = classification_metrics(y_true, y_pred, probs, CLASS_NAMES, SPECIES)
    top5_indices = np.argsort(-probs, axis=1)[:, :5]
    by_hand = np.mean([label in row for label, row in zip(y_true, top5_indices)])

    assert result["top5"] == pytest.approx(
        top_k_accuracy_score(y_true, probs, k=5, labels=list(range(N_CLASSES))), abs=1e-12)
    assert result["top5"] == pytest.approx(by_hand, abs=1e-12)
    assert result["top5"] >= result["top1"]


def test_absent_classes_listed(predictions):
    y_true, y_pred, probs = predictions
    result = classification_metrics(y_true, y_pred, probs, CLASS_NAMES, SPECIES)
    absent_rows = [row for row in result["per_class"] if row["support"] == 0]

    assert result["classes_without_test_images"] == [CLASS_NAMES[i] for i in ABSENT_CLASSES]
    assert UNSEEN_CLASS not in y_pred
    assert result["per_class"][UNSEEN_CLASS]["precision"] == 0.0
    assert all(row["recall"] == 0.0 for row in absent_rows)
    assert all(row["f1"] == 0.0 for row in absent_rows)


def test_top5_none_without_probs(predictions):
    y_true, y_pred, _ = predictions
    result = classification_metrics(y_true, y_pred, None, CLASS_NAMES, SPECIES)
    assert result["top5"] is None


def test_species_confusion_counts(predictions):
    y_true, y_pred, probs = predictions
    species = np.array(SPECIES)
    true_species, predicted_species = species[y_true], species[y_pred]
    expected = [[int(np.sum((true_species == a) & (predicted_species == b)))
                 for b in ("cat", "dog")] for a in ("cat", "dog")]

    assert species_confusion(y_true, y_pred, SPECIES) == expected
    result = classification_metrics(y_true, y_pred, probs, CLASS_NAMES, SPECIES)
    assert result["species_confusion"] == expected
    assert result["species_accuracy"] == pytest.approx(np.mean(true_species == predicted_species))


def test_species_confusion_hand_made():
    species = ["cat", "dog", "dog"]
    y_true = [0, 0, 1, 2, 2, 1]
    y_pred = [0, 1, 0, 2, 1, 1]
    # cat->cat 1, cat->dog 1, dog->cat 1, dog->dog 3
    assert species_confusion(y_true, y_pred, species) == [[1, 1], [1, 3]]


def test_most_confused_pairs_order():
    names = ["a", "b", "c", "d"]
    confusion = np.array([[9, 2, 0, 5],
                          [2, 8, 0, 0],
                          [0, 7, 9, 1],
                          [0, 0, 2, 30]])
    pairs = most_confused_pairs(confusion, names, k=4)

    assert pairs == [{"true": "c", "predicted": "b", "count": 7},
                     {"true": "a", "predicted": "d", "count": 5},
                     {"true": "a", "predicted": "b", "count": 2},
                     {"true": "b", "predicted": "a", "count": 2}]
    assert len(most_confused_pairs(confusion, names, k=100)) == 6
    assert most_confused_pairs(np.diag([3, 4, 5, 6]), names, k=5) == []


def test_most_confused_pairs_in_metrics(predictions):
    y_true, y_pred, probs = predictions
    result = classification_metrics(y_true, y_pred, probs, CLASS_NAMES, SPECIES,
                                    num_confused_pairs=5)
    counts = [pair["count"] for pair in result["most_confused_pairs"]]
    off_diagonal = np.array(result["confusion_matrix"])
    np.fill_diagonal(off_diagonal, 0)

    assert len(counts) == 5
    assert counts == sorted(counts, reverse=True)
    assert counts[0] == off_diagonal.max()


@pytest.mark.parametrize("val_accs, expected", [
    ([0.5, 0.7, 0.9], 3),                # peaks at the last epoch
    ([0.8, 0.9, 0.9, 0.9], 2),           # ties at the best value: first one counts
    ([0.5, 0.897, 0.9, 0.85], 2),        # within 0.5 points before the best
    ([0.5, 0.895, 0.9], 2),              # exactly 0.5 points below counts as within
    ([0.5, 0.894, 0.9], 3),              # just outside
    ([0.3], 1),
    ([0.9, 0.4, 0.2], 1),                # best first, then diverging
    ([math.nan, 0.6, 0.5], 2),           # NaN epochs are skipped
])
def test_epochs_to_convergence_cases(val_accs, expected):
    assert epochs_to_convergence(val_accs) == expected


def test_epochs_to_convergence_tolerance():
    curve = [0.50, 0.80, 0.88, 0.90]
    assert epochs_to_convergence(curve, tolerance=0.0) == 4
    assert epochs_to_convergence(curve, tolerance=0.05) == 3
    assert epochs_to_convergence(curve, tolerance=0.5) == 1


@pytest.mark.parametrize("val_accs", [[], [math.nan, math.nan]])
def test_epochs_to_convergence_rejects(val_accs):
    with pytest.raises(ValueError, match="val_accs"):
        epochs_to_convergence(val_accs)


def test_report_csv_round_trip(tmp_path, predictions):
    y_true, y_pred, _ = predictions
    path = tmp_path / "classification_report.csv"
    returned = write_classification_report_csv(path, y_true, y_pred, CLASS_NAMES)
    expected = classification_report(y_true, y_pred, labels=list(range(N_CLASSES)),
                                      target_names=CLASS_NAMES, output_dict=True,
                                      zero_division=0)
    report = read_classification_report_csv(path)

    assert returned == expected
    assert list(report) == [*CLASS_NAMES, "accuracy", "macro avg", "weighted avg"]
    for label in [*CLASS_NAMES, "macro avg", "weighted avg"]:
        for column in ("precision", "recall", "f1-score", "support"):
            assert report[label][column] == pytest.approx(expected[label][column], abs=1e-12), \
                (label, column)
    assert report["accuracy"]["f1-score"] == pytest.approx(expected["accuracy"], abs=1e-12)
    assert report["accuracy"]["support"] == len(y_true)
    assert math.isnan(report["accuracy"]["precision"])


@pytest.mark.parametrize("profile", ["smoke", "full"])
def test_report_csv_names_profile(tmp_path, predictions, monkeypatch, profile):
    import csv

    monkeypatch.setenv("RUN_PROFILE", profile)
    y_true, y_pred, _ = predictions
    path = tmp_path / "classification_report.csv"
    write_classification_report_csv(path, y_true, y_pred, CLASS_NAMES)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["profile"] for row in rows} == {profile}


@pytest.mark.parametrize("y_pred, probs, match", [
    ([0, 1, 37], None, "outside"),
    ([0, 1, -1], None, "outside"),
    ([0, 1], None, "y_pred has 2"),
    ([0, 1, 2], np.ones((3, 5)), "probs has shape"),
    ([0.0, 1.0, 2.0], None, "integer"),
])
def test_metrics_reject_bad_input(y_pred, probs, match):
    with pytest.raises(ValueError, match=match):
        classification_metrics([0, 1, 2], y_pred, probs, CLASS_NAMES, SPECIES)


def test_metrics_reject_bad_species():
    with pytest.raises(ValueError, match="species"):
        classification_metrics([0], [0], None, CLASS_NAMES, SPECIES[:-1])
    with pytest.raises(ValueError, match="unknown species"):
        classification_metrics([0], [0], None, CLASS_NAMES, ["bird"] * N_CLASSES)
