"""Evaluate a run's best checkpoint once on the official test split and write every artifact.

    python -m part1.evaluate --run-dir runs/part1/resnet50_finetune --data-dir data \
        --output-dir evaluation/part1/resnet50_finetune

Writes metrics.json, classification_report.csv, predictions.csv, confusion_matrix.png,
training_curves.png, per_class_f1.png and misclassified.png into --output-dir. metrics.json
carries the provenance of the evaluation and of the training run for the two CSV files.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from part1 import checkpoint as ckpt
from part1 import dataset as data
from part1 import metrics as pet_metrics
from part1 import models
from part1 import plots
from part1.train import Precision, select_device, select_precision, show_progress
from tools.provenance import collect_provenance, run_profile, write_atomic, write_json_atomic

logger = logging.getLogger(__name__)

MISCLASSIFIED_SHOWN = 16  # most confident mistakes drawn in misclassified.png


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Evaluate a trained Part 1 run on the test split.")
    parser.add_argument("--run-dir", type=Path, required=True,
                        help="training run folder with best.pth and history.json (required)")
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="torchvision-style root that holds oxford-iiit-pet/ (required)")
    parser.add_argument("--output-dir", type=Path, required=True,
                        help="folder for the artifacts, e.g. evaluation/part1/resnet50_finetune "
                             "(required)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                        help="compute device; auto picks cuda, then mps, then cpu (default: auto)")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="test images per forward pass (default: 64)")
    parser.add_argument("--num-workers", type=int, default=4,
                        help="DataLoader worker processes (default: 4)")
    parser.add_argument("--quiet", action="store_true",
                        help="hide the progress bar (also off when stdout is not a terminal; "
                             "default: off)")
    return parser


@torch.inference_mode()
def predict(model: torch.nn.Module, loader: DataLoader, device: torch.device,
            precision: Precision, progress: bool) -> np.ndarray:
    """Return softmax probabilities for every image in the loader.  # (N, num_classes)"""
    from tqdm import tqdm

    model.eval()
    batches = []
    for images, _ in tqdm(loader, desc="test", leave=False, disable=not progress):
        with precision.autocast():
            logits = model(images.to(device))
        batches.append(torch.softmax(logits.float(), dim=1).cpu())
    return torch.cat(batches).numpy()


def write_predictions_csv(path: Path, samples, probs: np.ndarray, names: list[str]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    # "profile" on every row, so a smoke CSV is marked even when read alone
    writer.writerow(["image_id", "true", "predicted", "confidence", "correct", "profile"])
    profile = run_profile()
    for sample, row in zip(samples, probs):
        predicted = int(row.argmax())
        writer.writerow([sample.image_id, names[sample.label], names[predicted],
                         f"{row[predicted]:.6f}", int(predicted == sample.label), profile])
    write_atomic(path, buffer.getvalue())


def misclassified_items(samples, probs: np.ndarray, names: list[str],
                        prep: data.Preprocessing) -> list[dict[str, Any]]:
    """Pick the most confident mistakes and load their images as the model saw them."""
    predicted = probs.argmax(axis=1)
    wrong = [i for i, sample in enumerate(samples) if predicted[i] != sample.label]
    wrong.sort(key=lambda i: -probs[i, predicted[i]])
    show = data.display_transform(prep)
    return [{"image": show(data.load_rgb(samples[i].path)), "true": names[samples[i].label],
             "predicted": names[predicted[i]], "confidence": float(probs[i, predicted[i]])}
            for i in wrong[:MISCLASSIFIED_SHOWN]]


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate best.pth on the test split, write the artifacts and return metrics.json."""
    device = select_device(args.device)
    precision = select_precision(device, "auto")
    checkpoint = ckpt.load_checkpoint(args.run_dir / "best.pth")
    model = ckpt.model_from_checkpoint(checkpoint).to(device)
    names = list(checkpoint["class_names"])
    prep = data.Preprocessing(**{**checkpoint["preprocessing"],
                                 "mean": tuple(checkpoint["preprocessing"]["mean"]),
                                 "std": tuple(checkpoint["preprocessing"]["std"])})

    samples = data.parse_split(args.data_dir, "test")
    samples = data.drop_undecodable(samples, "test", max(1, args.num_workers))
    if not samples:
        raise ValueError(f"the test split under {args.data_dir} has no decodable images")
    loader = DataLoader(data.PetDataset(samples, data.eval_transform(prep)),
                        batch_size=args.batch_size, shuffle=False, num_workers=args.num_workers,
                        pin_memory=device.type == "cuda")
    probs = predict(model, loader, device, precision, show_progress(args))
    y_true = np.array([sample.label for sample in samples])
    y_pred = probs.argmax(axis=1)

    test = pet_metrics.classification_metrics(y_true, y_pred, probs, names, checkpoint["species"])
    per_class = test.pop("per_class")
    confusion = test.pop("confusion_matrix")

    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    run_name = f"{checkpoint['model']}_{checkpoint['mode']}"
    pet_metrics.write_classification_report_csv(out / "classification_report.csv", y_true,
                                                y_pred, names)
    write_predictions_csv(out / "predictions.csv", samples, probs, names)

    training_metrics = json.loads((args.run_dir / "metrics.json").read_text())
    history = training_metrics["history"]
    plots.plot_confusion_matrix(confusion, names, out / "confusion_matrix.png",
                                f"{run_name}: test confusion matrix")
    plots.plot_training_curves(history, out / "training_curves.png",
                               f"{run_name}: training and validation curves")
    plots.plot_per_class_f1(per_class, out / "per_class_f1.png", f"{run_name}: test F1 per breed")
    plots.plot_misclassified(misclassified_items(samples, probs, names, prep),
                             out / "misclassified.png",
                             f"{run_name}: most confident test mistakes")
    import matplotlib.pyplot as plt
    plt.close("all")

    settings = {"run_dir": str(args.run_dir), "data_dir": str(args.data_dir),
                "checkpoint_epoch": checkpoint["epoch"], "batch_size": args.batch_size,
                "training_settings": checkpoint["settings"]}
    result = {"run": run_name, "model": checkpoint["model"], "mode": checkpoint["mode"],
              "weights": checkpoint["weights"], "test": test, "per_class": per_class,
              "confusion_matrix": confusion, "training": training_metrics["training"],
              "history": history,
              "artifacts": ["metrics.json", "classification_report.csv", "predictions.csv",
                            "confusion_matrix.png", "training_curves.png", "per_class_f1.png",
                            "misclassified.png"],
              "provenance": collect_provenance(settings, checkpoint["settings"]["seed"],
                                               str(device)),
              "training_provenance": training_metrics.get("provenance")}
    write_json_atomic(out / "metrics.json", result)
    top5 = "n/a" if test["top5"] is None else f"{100 * test['top5']:.2f}%"
    print(f"{run_name}: test images {test['num_images']} top1 {100 * test['top1']:.2f}% top5 "
          f"{top5} macro_f1 {test['macro_f1']:.4f} | checkpoint epoch {checkpoint['epoch']} | "
          f"{out}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = get_args_parser().parse_args(argv)
    try:
        evaluate(args)
    except (data.DatasetNotFoundError, FileNotFoundError, ValueError,
            models.PretrainedWeightsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
