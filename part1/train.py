"""Train a pretrained backbone on Oxford-IIIT Pet: one loop for every model and regime.

    python -m part1.train --data-dir data --output-dir runs/part1/resnet50_finetune \
        --model resnet50 --mode finetune

Writes OUTPUT_DIR/{args.json, history.csv, history.json, metrics.json, best.pth, last.pth}. The
official test split is never read here; part1.evaluate uses it once, on best.pth.
Recipe defaults per mode are in MODE_DEFAULTS; part1/README.md names their sources.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from part1 import checkpoint as ckpt
from part1 import dataset as data
from part1 import models
from tools.provenance import collect_provenance, write_atomic, write_json_atomic

logger = logging.getLogger(__name__)

# Per-mode defaults, applied where a flag is left unset (see part1/README.md for the sources).
MODE_DEFAULTS = {
    "feature_extraction": {"epochs": 15, "lr": 1e-3, "backbone_lr": 0.0, "weight_decay": 1e-4},
    "finetune": {"epochs": 15, "lr": 1e-3, "backbone_lr": 5e-5, "weight_decay": 0.05},
}
WARMUP_START_FACTOR = 0.01  # warmup starts at 1% of each group's lr
MIN_LR_FACTOR = 0.01  # cosine decays to 1% of each group's lr
HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr",
                   "epoch_seconds", "images_per_second")
FEATURE_CACHE = "feature_cache.pt"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train ResNet-50 or Swin-T on Oxford-IIIT Pet "
                                     "by feature extraction or fine-tuning.")
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="torchvision-style root that holds oxford-iiit-pet/ (required)")
    parser.add_argument("--output-dir", type=Path, required=True,
                        help="run folder for args.json, history, metrics and checkpoints (required)")
    parser.add_argument("--model", choices=sorted(models.MODEL_SPECS), required=True,
                        help="backbone architecture (required)")
    parser.add_argument("--mode", choices=models.MODES, required=True,
                        help="feature_extraction trains only the new head on a frozen backbone; "
                             "finetune trains every parameter (required)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default: 15 for both modes)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per step (default: 32)")
    parser.add_argument("--image-size", type=int, default=224,
                        help="square input side in pixels after cropping (default: 224, the "
                             "size the weights were trained at)")
    parser.add_argument("--no-pretrained", action="store_true",
                        help="start from random weights instead of the ImageNet-1k weights "
                             "(for offline runs and tests; default: off)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                        help="compute device; auto picks cuda, then mps, then cpu (default: auto)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for the head's initialisation, shuffling and augmentation "
                             "(default: 0)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUTPUT_DIR/last.pth if it exists (default: off)")
    parser.add_argument("--download", action="store_true",
                        help="download the dataset into --data-dir when it is missing "
                             "(about 800 MB; default: off)")
    parser.add_argument("--num-workers", type=int, default=4,
                        help="DataLoader worker processes; 0 loads in the main process "
                             "(default: 4)")
    parser.add_argument("--lr", type=float, default=None,
                        help="peak learning rate of the new head (default: 1e-3 in both modes)")
    parser.add_argument("--backbone-lr", type=float, default=None,
                        help="peak learning rate of the backbone when fine-tuning "
                             "(default: 5e-5; ignored for feature_extraction)")
    parser.add_argument("--weight-decay", type=float, default=None,
                        help="AdamW decoupled weight decay on weight matrices and kernels "
                             "(default: 1e-4 for feature_extraction, 0.05 for finetune)")
    parser.add_argument("--warmup-epochs", type=float, default=1.0,
                        help="linear warmup length in epochs, before the cosine decay "
                             "(default: 1.0)")
    parser.add_argument("--label-smoothing", type=float, default=0.1,
                        help="label smoothing of the cross-entropy loss (default: 0.1)")
    parser.add_argument("--clip-grad-norm", type=float, default=5.0,
                        help="maximum global gradient L2 norm; 0 disables clipping (default: 5.0)")
    parser.add_argument("--patience", type=int, default=5,
                        help="stop after this many epochs without a better validation accuracy; "
                             "0 disables early stopping (default: 5)")
    parser.add_argument("--val-fraction", type=float, default=data.DEFAULT_VAL_FRACTION,
                        help="fraction of each breed's trainval images held out for validation "
                             f"(default: {data.DEFAULT_VAL_FRACTION})")
    parser.add_argument("--split-seed", type=int, default=data.DEFAULT_SPLIT_SEED,
                        help="seed of the train/validation split, fixed so every run uses the "
                             f"same split (default: {data.DEFAULT_SPLIT_SEED})")
    parser.add_argument("--cached-features", action="store_true",
                        help="feature_extraction only: run the frozen backbone once over "
                             "non-augmented images and train the head on the cached features "
                             "(linear probe; default: off)")
    parser.add_argument("--amp", choices=("auto", "off"), default="auto",
                        help="mixed precision: auto uses bf16 autocast on CUDA where supported, "
                             "else fp16 with a GradScaler, and float32 elsewhere (default: auto)")
    parser.add_argument("--strict-images", action="store_true",
                        help="stop before training if any listed image cannot be decoded, "
                             "instead of skipping it with a warning (default: off)")
    parser.add_argument("--max-train-batches", type=int, default=0,
                        help="cap on training batches per epoch, for smoke runs; 0 means no cap "
                             "(default: 0)")
    parser.add_argument("--max-eval-batches", type=int, default=0,
                        help="cap on validation batches per epoch, for smoke runs; 0 means no "
                             "cap (default: 0)")
    parser.add_argument("--quiet", action="store_true",
                        help="hide progress bars (they are also off when stdout is not a "
                             "terminal; default: off)")
    return parser


def resolve_settings(args: argparse.Namespace) -> argparse.Namespace:
    """Fill per-mode defaults and check flag combinations; raise ValueError on bad values."""
    for name, value in MODE_DEFAULTS[args.mode].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    positive = {"--epochs": args.epochs, "--batch-size": args.batch_size,
                "--image-size": args.image_size}
    for flag, value in positive.items():
        if value < 1:
            raise ValueError(f"{flag} {value} is invalid; use a positive integer")
    if not 0.0 < args.val_fraction < 1.0:
        raise ValueError(f"--val-fraction {args.val_fraction} is invalid; use a value in (0, 1), "
                         "because model selection needs a validation split")
    if args.cached_features and args.mode != "feature_extraction":
        raise ValueError("--cached-features needs --mode feature_extraction, because fine-tuning "
                         "changes the backbone every step")
    if args.num_workers < 0:
        raise ValueError(f"--num-workers {args.num_workers} is invalid; use 0 or more")
    return args


def select_device(requested: str) -> torch.device:
    """Return the requested device, or cuda > mps > cpu for 'auto'; raise if unavailable."""
    mps_available = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_available else "cpu")
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": mps_available}
    if not available[requested]:
        raise ValueError(f"--device {requested} is not available on this machine; use --device "
                         "auto or cpu")
    return torch.device(requested)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class Precision:
    """Autocast settings for the device: dtype None means float32."""

    device_type: str
    dtype: torch.dtype | None
    scaler: torch.amp.GradScaler | None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    @property
    def name(self) -> str:
        return "float32" if self.dtype is None else str(self.dtype).replace("torch.", "")


def select_precision(device: torch.device, amp: str) -> Precision:
    if device.type != "cuda" or amp == "off":
        return Precision(device.type, None, None)
    if torch.cuda.is_bf16_supported():
        return Precision("cuda", torch.bfloat16, None)
    return Precision("cuda", torch.float16, torch.amp.GradScaler("cuda"))


def warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """Return the lr factor per step: linear warmup, then cosine decay to MIN_LR_FACTOR."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return WARMUP_START_FACTOR + (1 - WARMUP_START_FACTOR) * step / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return MIN_LR_FACTOR + (1 - MIN_LR_FACTOR) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def make_criterion(args: argparse.Namespace) -> nn.Module:
    return nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)


def show_progress(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stdout.isatty()


def run_epoch(forward: Callable[[torch.Tensor], torch.Tensor], batches: Iterable, num_batches: int,
              criterion: nn.Module, precision: Precision, device: torch.device,
              optimizer: torch.optim.Optimizer | None = None, scheduler=None,
              parameters: list[nn.Parameter] | None = None, clip_grad_norm: float = 0.0,
              channels_last: bool = False, description: str = "", progress: bool = False,
              ) -> dict[str, float]:
    """Run one pass; train when an optimizer is given. Return loss, accuracy, images and seconds.

    Raises TrainingDiverged when the training loss is NaN or infinite.
    """
    from tqdm import tqdm

    training = optimizer is not None
    total_loss, correct, seen = 0.0, 0, 0
    start = time.perf_counter()
    bar = tqdm(total=num_batches, desc=description, leave=False, disable=not progress)
    with torch.set_grad_enabled(training):
        for step, (inputs, labels) in enumerate(batches):
            if step >= num_batches:
                break
            inputs = inputs.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            if channels_last and inputs.ndim == 4:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            with precision.autocast():
                logits = forward(inputs)
                loss = criterion(logits.float(), labels)

            if training:
                if not torch.isfinite(loss):
                    bar.close()
                    raise TrainingDiverged(f"{description}: the training loss became {loss.item()}"
                                           f" at step {step + 1}; lower --lr or --backbone-lr, or "
                                           "rerun with --amp off")
                optimizer.zero_grad(set_to_none=True)
                scaler = precision.scaler
                (scaler.scale(loss) if scaler else loss).backward()
                if clip_grad_norm > 0:
                    if scaler:
                        scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(parameters, clip_grad_norm)
                if scaler:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                scheduler.step()

            total_loss += loss.item() * labels.numel()
            correct += (logits.argmax(dim=1) == labels).sum().item()
            seen += labels.numel()
            bar.update(1)
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {"loss": total_loss / max(1, seen), "acc": correct / max(1, seen), "images": seen,
            "seconds": seconds}


def make_loader(dataset: torch.utils.data.Dataset, args: argparse.Namespace, shuffle: bool,
                generator: torch.Generator | None, device: torch.device) -> DataLoader:
    return DataLoader(dataset, batch_size=args.batch_size, shuffle=shuffle, generator=generator,
                      num_workers=args.num_workers, pin_memory=device.type == "cuda",
                      worker_init_fn=data.seed_worker, drop_last=False,
                      persistent_workers=False)


def batch_limit(num_batches: int, cap: int) -> int:
    return min(num_batches, cap) if cap > 0 else num_batches


@torch.inference_mode()
def extract_features(model: nn.Module, loader: DataLoader, device: torch.device,
                     precision: Precision, progress: bool, description: str
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the frozen backbone over a loader; return (features (N, F) float32, labels (N,))."""
    from tqdm import tqdm

    model.eval()
    features, labels = [], []
    for images, batch_labels in tqdm(loader, desc=description, leave=False, disable=not progress):
        with precision.autocast():
            pooled = models.pooled_features(model, images.to(device))
        features.append(pooled.float().cpu())
        labels.append(batch_labels)
    return torch.cat(features), torch.cat(labels)


def cached_feature_sets(model: nn.Module, train_set, val_set, prep: data.Preprocessing,
                        args: argparse.Namespace, device: torch.device, precision: Precision
                        ) -> tuple[dict[str, torch.Tensor], float]:
    """Load the run's feature cache if it matches, else compute and save it. Returns seconds."""
    key = {"weights": models.weights_id(args.model, not args.no_pretrained),
           "backbone_fingerprint": models.backbone_fingerprint(model),
           "preprocessing": prep.as_dict(),
           "train_ids": [s.image_id for s in train_set.samples],
           "val_ids": [s.image_id for s in val_set.samples]}
    cache_path = args.output_dir / FEATURE_CACHE
    if cache_path.is_file():
        cached = torch.load(cache_path, map_location="cpu", weights_only=True)
        if cached.get("key") == key:
            logger.info("using cached features from %s", cache_path)
            return cached["tensors"], 0.0

    start = time.perf_counter()
    eval_tf = data.eval_transform(prep)
    tensors = {}
    for name, subset in (("train", train_set), ("val", val_set)):
        loader = make_loader(data.PetDataset(subset.samples, eval_tf), args, shuffle=False,
                             generator=None, device=device)
        features, labels = extract_features(model, loader, device, precision,
                                            show_progress(args), f"features {name}")
        tensors[f"{name}_features"], tensors[f"{name}_labels"] = features, labels
    seconds = time.perf_counter() - start
    buffer = io.BytesIO()
    torch.save({"key": key, "tensors": tensors}, buffer)
    write_atomic(cache_path, buffer.getvalue())
    return tensors, seconds


def feature_batches(features: torch.Tensor, labels: torch.Tensor, batch_size: int,
                    generator: torch.Generator | None):
    """Yield (features, labels) batches, shuffled with the generator when one is given."""
    order = (torch.randperm(len(labels), generator=generator) if generator is not None
             else torch.arange(len(labels)))
    for start in range(0, len(labels), batch_size):
        index = order[start:start + batch_size]
        yield features[index], labels[index]


def write_history(output_dir: Path, history: list[dict], provenance: dict) -> None:
    write_json_atomic(output_dir / "history.json", {"history": history, "provenance": provenance})
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({column: row[column] for column in HISTORY_COLUMNS} for row in history)
    write_atomic(output_dir / "history.csv", text.getvalue())


def training_summary(history: list[dict], state: dict, args: argparse.Namespace,
                     parameter_counts: tuple[int, int], device: torch.device) -> dict[str, Any]:
    """Build the metrics.json "training" block from the epoch history."""
    from part1.metrics import epochs_to_convergence

    val_accs = [row["val_acc"] for row in history]
    peak_memory = None
    if device.type == "cuda":
        peak_memory = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return {
        "epochs_run": len(history),
        "best_epoch": state["best_epoch"],
        "best_val_acc": state["best_val_acc"],
        "epochs_to_convergence": epochs_to_convergence(val_accs) if val_accs else None,
        "mean_epoch_seconds": float(np.mean([r["epoch_seconds"] for r in history])) if history else None,
        "mean_images_per_second": (float(np.mean([r["images_per_second"] for r in history]))
                                   if history else None),
        "peak_gpu_memory_mb": peak_memory,
        "trainable_parameters": parameter_counts[0],
        "total_parameters": parameter_counts[1],
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "cached_features": args.cached_features,
        "feature_cache_seconds": state.get("feature_cache_seconds"),
        "stopped_early": state.get("stopped_early", False),
        "train_images": state["train_images"],
        "val_images": state["val_images"],
        "precision": state["precision"],
    }


def settings_dict(args: argparse.Namespace) -> dict[str, Any]:
    return {name: str(value) if isinstance(value, Path) else value
            for name, value in vars(args).items()}


def prepare_data(args: argparse.Namespace):
    """Parse trainval, apply the undecodable-image policy and split it into train and val."""
    if args.download:
        data.download_dataset(args.data_dir)
    trainval = data.parse_split(args.data_dir, "trainval")
    trainval = data.drop_undecodable(trainval, "trainval", max(1, args.num_workers),
                                     strict=args.strict_images)
    train, val = data.stratified_split(trainval, args.val_fraction, args.split_seed)
    if not train or not val:
        raise ValueError(f"the train/validation split of {len(trainval)} trainval images is "
                         f"empty on one side (train {len(train)}, val {len(val)}); check "
                         "--val-fraction and the dataset")
    return trainval, train, val


def check_resume_compatible(saved: dict[str, Any], args: argparse.Namespace) -> None:
    """Raise ValueError when a resumed run would not continue the saved one."""
    fixed = ("model", "mode", "epochs", "batch_size", "image_size", "no_pretrained", "seed",
             "lr", "backbone_lr", "weight_decay", "warmup_epochs", "val_fraction", "split_seed",
             "cached_features", "max_train_batches")
    current = settings_dict(args)
    changed = [f"--{name.replace('_', '-')} {saved[name]} -> {current[name]}"
               for name in fixed if saved.get(name) != current[name]]
    if changed:
        raise ValueError(f"--resume found {args.output_dir / 'last.pth'} from a run with other "
                         f"settings ({'; '.join(changed)}); rerun with the saved settings "
                         "(see args.json) or use a new --output-dir")


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Run training from resolved settings and return the metrics.json content."""
    args = resolve_settings(args)
    device = select_device(args.device)
    precision = select_precision(device, args.amp)
    output_dir = args.output_dir
    progress = show_progress(args)

    # The run folder is made only once the data is known to be usable, so a failed start
    # leaves nothing behind.
    trainval, train_samples, val_samples = prepare_data(args)
    output_dir.mkdir(parents=True, exist_ok=True)
    names = data.class_names(args.data_dir)
    species = data.species_of_classes(trainval)

    model = models.build_model(args.model, data.NUM_CLASSES, pretrained=not args.no_pretrained,
                               image_size=args.image_size, init_seed=args.seed)
    prep = data.preprocessing_from_model(model, args.image_size)
    param_groups = models.configure_regime(model, args.mode, args.lr, args.backbone_lr,
                                           args.weight_decay)
    parameter_counts = models.count_parameters(model)
    trainable = [p for group in param_groups for p in group["params"]]
    channels_last = device.type == "cuda"
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)

    weights = models.weights_id(args.model, not args.no_pretrained)
    settings = settings_dict(args)
    settings["preprocessing"] = prep.as_dict()
    settings["weights"] = weights
    write_json_atomic(output_dir / "args.json", settings)
    print(f"device {device} ({precision.name}) | model {args.model} ({weights}) | mode "
          f"{args.mode}{' with cached features' if args.cached_features else ''} | images "
          f"train {len(train_samples)} val {len(val_samples)} | parameters "
          f"{parameter_counts[1]:,} trainable {parameter_counts[0]:,}", flush=True)

    state = {"best_val_acc": -1.0, "best_epoch": 0, "epochs_without_improvement": 0,
             "train_images": len(train_samples), "val_images": len(val_samples),
             "precision": precision.name}
    train_set = data.PetDataset(train_samples, data.train_transform(prep))
    val_set = data.PetDataset(val_samples, data.eval_transform(prep))
    generator = torch.Generator()

    if args.cached_features:
        features, state["feature_cache_seconds"] = cached_feature_sets(
            model, train_set, val_set, prep, args, device, precision)
        head = model.get_classifier()
        train_batches_total = math.ceil(len(train_samples) / args.batch_size)
        val_batches_total = math.ceil(len(val_samples) / args.batch_size)

        def epoch_batches(train: bool):
            if train:
                return feature_batches(features["train_features"], features["train_labels"],
                                       args.batch_size, generator)
            return feature_batches(features["val_features"], features["val_labels"],
                                   args.batch_size, None)
        forward = head
    else:
        train_loader = make_loader(train_set, args, shuffle=True, generator=generator,
                                   device=device)
        val_loader = make_loader(val_set, args, shuffle=False, generator=None, device=device)
        train_batches_total, val_batches_total = len(train_loader), len(val_loader)

        def epoch_batches(train: bool):
            return train_loader if train else val_loader
        forward = model

    steps_per_epoch = batch_limit(train_batches_total, args.max_train_batches)
    val_batches = batch_limit(val_batches_total, args.max_eval_batches)
    optimizer = torch.optim.AdamW(param_groups)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(args.epochs * steps_per_epoch,
                                 round(args.warmup_epochs * steps_per_epoch)))
    criterion = make_criterion(args)

    history: list[dict] = []
    start_epoch = 1
    last_path, best_path = output_dir / "last.pth", output_dir / "best.pth"
    if args.resume and last_path.is_file():
        saved = ckpt.load_checkpoint(last_path)
        check_resume_compatible(saved["settings"], args)
        state_dict = saved["state_dict"]
        model.load_state_dict(state_dict, strict=args.mode == "finetune")
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        if precision.scaler and saved.get("scaler"):
            precision.scaler.load_state_dict(saved["scaler"])
        history = list(saved["history"])
        state.update(saved["state"])
        start_epoch = saved["epoch"] + 1
        print(f"resumed from {last_path} after epoch {saved['epoch']}", flush=True)
    elif args.resume:
        print(f"no {last_path} to resume from; starting at epoch 1", flush=True)

    provenance = collect_provenance(settings, args.seed, str(device))
    checkpoint_base = {"format": ckpt.CHECKPOINT_FORMAT, "model": args.model, "mode": args.mode,
                       "weights": weights, "settings": settings, "class_names": names,
                       "species": species, "preprocessing": prep.as_dict(),
                       "backbone_fingerprint": models.backbone_fingerprint(model)}

    for epoch in range(start_epoch, args.epochs + 1):
        if state.get("stopped_early"):
            break
        # Reseeding from (seed, epoch) makes shuffling, augmentation and dropout of an epoch
        # independent of earlier epochs, so a resumed run repeats an uninterrupted one exactly.
        epoch_seed = args.seed * 10_000 + epoch
        seed_everything(epoch_seed)
        generator.manual_seed(epoch_seed)

        models.set_train_mode(model, args.mode)
        train_stats = run_epoch(forward, epoch_batches(True), steps_per_epoch, criterion,
                                precision, device, optimizer, scheduler, trainable,
                                args.clip_grad_norm, channels_last,
                                f"epoch {epoch}/{args.epochs}", progress)
        model.eval()
        val_stats = run_epoch(forward, epoch_batches(False), val_batches, criterion, precision,
                              device, channels_last=channels_last, description="validation",
                              progress=progress)
        row = {"epoch": epoch, "train_loss": train_stats["loss"], "train_acc": train_stats["acc"],
               "val_loss": val_stats["loss"], "val_acc": val_stats["acc"],
               "lr": max(group["lr"] for group in optimizer.param_groups),
               "epoch_seconds": train_stats["seconds"],
               "images_per_second": train_stats["images"] / max(train_stats["seconds"], 1e-9)}
        history.append(row)

        improved = row["val_acc"] > state["best_val_acc"]
        if improved:
            state.update(best_val_acc=row["val_acc"], best_epoch=epoch,
                         epochs_without_improvement=0)
        else:
            state["epochs_without_improvement"] += 1
        if args.patience and state["epochs_without_improvement"] >= args.patience:
            state["stopped_early"] = True

        checkpoint = dict(checkpoint_base, epoch=epoch, history=history, state=dict(state),
                          state_dict=ckpt.model_state(model, args.mode),
                          optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                          scaler=precision.scaler.state_dict() if precision.scaler else None)
        ckpt.save_checkpoint([last_path, best_path] if improved else [last_path], checkpoint)
        write_history(output_dir, history, provenance)
        print(f"epoch {epoch}/{args.epochs} train_loss {row['train_loss']:.4f} train_acc "
              f"{100 * row['train_acc']:.2f}% val_loss {row['val_loss']:.4f} val_acc "
              f"{100 * row['val_acc']:.2f}% lr {row['lr']:.2e} time {row['epoch_seconds']:.1f}s "
              f"{row['images_per_second']:.1f} img/s{' best' if improved else ''}", flush=True)
        if state.get("stopped_early"):
            print(f"early stop: no better val_acc for {args.patience} epochs", flush=True)

    summary = training_summary(history, state, args, parameter_counts, device)
    metrics = {"run": f"{args.model}_{args.mode}", "model": args.model, "mode": args.mode,
               "weights": weights, "training": summary, "history": history,
               "provenance": provenance}
    write_history(output_dir, history, provenance)
    write_json_atomic(output_dir / "metrics.json", metrics)
    print(f"done: best val_acc {100 * summary['best_val_acc']:.2f}% at epoch "
          f"{summary['best_epoch']} | epochs to convergence {summary['epochs_to_convergence']} | "
          f"mean epoch {summary['mean_epoch_seconds']:.1f}s | {output_dir}", flush=True)
    return metrics


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = get_args_parser().parse_args(argv)
    try:
        train(args)
    except (data.DatasetNotFoundError, FileNotFoundError, ValueError,
            models.PretrainedWeightsError, data.UndecodableImagesError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
