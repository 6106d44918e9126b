"""Measure Part 1 training throughput, data-loading throughput and the feature-cache speed-up.

    python -m part1.benchmark --output evaluation/part1/benchmark.json [--quick] [--data-dir D]

Three measurements in one run, with random weights (no download):
- training: images/s of the training step of part1.train (train.run_epoch) for each model and
  regime on each device. Batches are decoded and augmented once before timing and fed from
  memory, so this is compute only. Seconds per epoch is an estimate: EPOCH_TRAIN_IMAGES divided
  by the measured images/s (training pass only, no validation and no data loading).
- data loading: images/s of the training DataLoader alone (decode, RandomResizedCrop, flip,
  normalize) for each --num-workers value. A loader slower than the training step starves it.
- feature cache: the per-epoch time of feature extraction that recomputes the frozen backbone
  (the training estimate above) against training the head on cached features, timed over a full
  epoch of EPOCH_TRAIN_IMAGES cached feature rows.
"""
from __future__ import annotations

import argparse
import itertools
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from part1 import dataset as data
from part1 import models
from part1 import train
from part1.make_synthetic_dataset import make_dataset
from tools.provenance import collect_provenance, write_json_atomic

# Training images per epoch of the official split: 3,680 trainval images less the 368 that the
# default per-breed 10% validation split (part1.dataset.stratified_split) holds out.
EPOCH_TRAIN_IMAGES = 3312
EPOCH_VAL_IMAGES = 368
CACHE_SPEEDUP_TARGET = 100.0
DEFAULT_MODELS = ("resnet50", "swin_t")

# Full and --quick settings for flags left unset. Quick is sized to finish in about 2 minutes on
# 2 CPU cores: small images, small batches, few timed steps.
FULL_DEFAULTS = {"image_size": 224, "batch_size": 32, "warmup_batches": 1, "timed_batches": 3,
                 "loader_batches": 10, "num_workers": [0, 2], "synthetic_images_per_class": 12}
QUICK_DEFAULTS = {"image_size": 64, "batch_size": 8, "warmup_batches": 1, "timed_batches": 2,
                  "loader_batches": 4, "num_workers": [0, 2], "synthetic_images_per_class": 4}


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Benchmark Part 1 training and data-loading "
                                     "throughput and the feature-cache speed-up.")
    parser.add_argument("--output", type=Path, required=True,
                        help="JSON file for the results (required)")
    parser.add_argument("--quick", action="store_true",
                        help="short run for smoke tests: image size 64, batch size 8, 2 timed "
                             "batches, 4 loader batches (default: off)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="torchvision-style root that holds oxford-iiit-pet/ (default: a "
                             "generated dataset in a temporary folder, 12 images per breed, "
                             "4 with --quick)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="devices to measure: auto measures cpu and also cuda when present "
                             "(default: auto)")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                        help=f"models to measure (default: {' '.join(DEFAULT_MODELS)})")
    parser.add_argument("--image-size", type=int, default=None,
                        help="square input side in pixels (default: 224, 64 with --quick)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="images per training step and loader batch (default: 32, 8 with "
                             "--quick)")
    parser.add_argument("--warmup-batches", type=int, default=None,
                        help="untimed training steps before timing each configuration "
                             "(default: 1)")
    parser.add_argument("--timed-batches", type=int, default=None,
                        help="timed training steps per configuration (default: 3, 2 with "
                             "--quick)")
    parser.add_argument("--loader-batches", type=int, default=None,
                        help="timed DataLoader batches per worker count, after one untimed "
                             "batch that includes worker start-up (default: 10, 4 with --quick)")
    parser.add_argument("--num-workers", type=int, nargs="+", default=None,
                        help="DataLoader worker counts to measure; 0 loads in the main process "
                             "(default: 0 2)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op CPU threads; 0 keeps torch's default, which is "
                             "the number of physical cores. On a machine shared with other "
                             "jobs, 1 thread can be much faster, because idle OpenMP threads "
                             "spin on busy cores (default: 0)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for the random weights and the augmentation (default: 0)")
    return parser


def resolve_settings(args: argparse.Namespace) -> argparse.Namespace:
    """Fill full or --quick defaults and check values; raise ValueError on bad values."""
    defaults = QUICK_DEFAULTS if args.quick else FULL_DEFAULTS
    for name, value in defaults.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    positive = {"--image-size": args.image_size, "--batch-size": args.batch_size,
                "--timed-batches": args.timed_batches, "--loader-batches": args.loader_batches}
    for flag, value in positive.items():
        if value < 1:
            raise ValueError(f"{flag} {value} is invalid; use a positive integer")
    if args.warmup_batches < 0:
        raise ValueError(f"--warmup-batches {args.warmup_batches} is invalid; use 0 or more")
    if args.threads < 0:
        raise ValueError(f"--threads {args.threads} is invalid; use 0 (torch's default) or more")
    bad_workers = [n for n in args.num_workers if n < 0]
    if bad_workers:
        raise ValueError(f"--num-workers {bad_workers[0]} is invalid; use 0 or more")
    unknown = [name for name in args.models if name not in models.MODEL_SPECS]
    if unknown:
        raise ValueError(f"--models {unknown[0]!r} is invalid; use one or more of "
                         f"{', '.join(sorted(models.MODEL_SPECS))}")
    return args


def benchmark_devices(requested: str) -> list[torch.device]:
    """Return the devices to measure: cpu, plus cuda when 'auto' finds one."""
    if requested == "auto":
        return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    return [train.select_device(requested)]


def cpu_name() -> str:
    """Return the CPU model name from /proc/cpuinfo, or what platform reports elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    """Return the 1, 5 and 15 minute load averages, or None where the OS has none."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def system_info(devices: list[torch.device]) -> dict[str, Any]:
    cuda_names = [torch.cuda.get_device_name(d) for d in devices if d.type == "cuda"]
    return {"cpu": cpu_name(), "logical_cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch_version": torch.__version__,
            "cuda_device": cuda_names[0] if cuda_names else None,
            "load_average_start": load_average()}


def train_settings(args: argparse.Namespace, model_name: str, mode: str,
                   num_workers: int = 0) -> argparse.Namespace:
    """Return part1.train's resolved settings for one configuration, so the benchmark uses the
    same optimizer, loss and clipping defaults as a real run."""
    argv = ["--data-dir", "unused", "--output-dir", "unused", "--model", model_name,
            "--mode", mode, "--batch-size", str(args.batch_size),
            "--image-size", str(args.image_size), "--no-pretrained",
            "--num-workers", str(num_workers), "--seed", str(args.seed), "--quiet"]
    return train.resolve_settings(train.get_args_parser().parse_args(argv))


def training_samples(data_dir: Path) -> list[data.PetSample]:
    """Parse trainval, drop undecodable images and return the training side of the split."""
    trainval = data.parse_split(data_dir, "trainval")
    trainval = data.drop_undecodable(trainval, "trainval")
    train_samples, _ = data.stratified_split(trainval)
    return train_samples


def preprocessing_for(model_name: str, image_size: int) -> data.Preprocessing:
    model = models.build_model(model_name, data.NUM_CLASSES, pretrained=False,
                               image_size=image_size)
    return data.preprocessing_from_model(model, image_size)


def memory_batches(samples: list[data.PetSample], prep: data.Preprocessing, batch_size: int,
                   count: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Decode and augment `count` training batches once, cycling through the samples when the
    dataset is smaller than count * batch_size."""
    torch.manual_seed(seed)
    dataset = data.PetDataset(samples, data.train_transform(prep))
    indices = itertools.cycle(range(len(dataset)))
    batches = []
    for _ in range(count):
        items = [dataset[next(indices)] for _ in range(batch_size)]
        images = torch.stack([image for image, _ in items])  # (B, 3, H, W)
        labels = torch.tensor([label for _, label in items])
        batches.append((images, labels))
    return batches


def time_training(settings: argparse.Namespace, batches: list, warmup: int, timed: int,
                  device: torch.device) -> dict[str, Any]:
    """Time the training step of part1.train on in-memory batches; return images/s and more."""
    model = models.build_model(settings.model, data.NUM_CLASSES, pretrained=False,
                               image_size=settings.image_size, init_seed=settings.seed)
    param_groups = models.configure_regime(model, settings.mode, settings.lr,
                                           settings.backbone_lr, settings.weight_decay)
    trainable, total = models.count_parameters(model)
    channels_last = device.type == "cuda"
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    parameters = [p for group in param_groups for p in group["params"]]
    optimizer = torch.optim.AdamW(param_groups)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    precision = train.select_precision(device, settings.amp)
    criterion = train.make_criterion(settings)
    models.set_train_mode(model, settings.mode)

    # the batches move to the device before timing, so the time covers compute only
    on_device = [(x.to(device), y.to(device)) for x, y in batches]
    step_args = (criterion, precision, device, optimizer, scheduler, parameters,
                 settings.clip_grad_norm, channels_last)
    if warmup:
        train.run_epoch(model, on_device[:warmup], warmup, *step_args)
    stats = train.run_epoch(model, on_device[warmup:warmup + timed], timed, *step_args)
    images_per_second = stats["images"] / stats["seconds"]
    return {"device": str(device), "model": settings.model, "mode": settings.mode,
            "precision": precision.name, "image_size": settings.image_size,
            "batch_size": settings.batch_size, "timed_batches": timed,
            "timed_images": stats["images"], "seconds": stats["seconds"],
            "images_per_second": images_per_second,
            "epoch_seconds_estimate": EPOCH_TRAIN_IMAGES / images_per_second,
            "trainable_parameters": trainable, "total_parameters": total}


def time_data_loading(samples: list[data.PetSample], prep: data.Preprocessing,
                      batch_size: int, num_workers: int, timed_batches: int,
                      seed: int) -> dict[str, Any]:
    """Time the training DataLoader alone; the first batch (worker start-up) is not timed."""
    # one pass over enough samples, because every new pass would restart the workers
    needed = timed_batches + 1
    repeated = [samples[i % len(samples)] for i in range(needed * batch_size)]
    dataset = data.PetDataset(repeated, data.train_transform(prep))
    settings = argparse.Namespace(batch_size=batch_size, num_workers=num_workers)
    generator = torch.Generator().manual_seed(seed)
    loader = train.make_loader(dataset, settings, shuffle=True, generator=generator,
                               device=torch.device("cpu"))

    images, start = 0, None
    for images_batch, _ in loader:
        if start is None:
            start = time.perf_counter()
            continue
        images += len(images_batch)
    seconds = time.perf_counter() - start
    return {"num_workers": num_workers, "batch_size": batch_size, "timed_batches": timed_batches,
            "timed_images": images, "seconds": seconds, "images_per_second": images / seconds}


def time_feature_cache(settings: argparse.Namespace, batches: list, warmup: int,
                       recompute: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Time building the feature cache and one head-only epoch on cached features.

    The cached epoch is timed in full over EPOCH_TRAIN_IMAGES rows, made by repeating the
    features of the in-memory batches (the values do not change the time of a linear head).
    """
    model = models.build_model(settings.model, data.NUM_CLASSES, pretrained=False,
                               image_size=settings.image_size, init_seed=settings.seed)
    param_groups = models.configure_regime(model, "feature_extraction", settings.lr,
                                           settings.backbone_lr, settings.weight_decay)
    model.to(device)
    precision = train.select_precision(device, settings.amp)
    on_device = [(x.to(device), y.to(device)) for x, y in batches]

    if warmup:
        train.extract_features(model, on_device[:warmup], device, precision, False, "warm-up")
    start = time.perf_counter()
    features, labels = train.extract_features(model, on_device[warmup:], device, precision,
                                              False, "features")
    extraction_seconds = time.perf_counter() - start
    extraction_rate = len(labels) / extraction_seconds

    rows = torch.arange(EPOCH_TRAIN_IMAGES) % len(labels)
    features, labels = features[rows], labels[rows]  # (EPOCH_TRAIN_IMAGES, num_features)
    head = model.get_classifier()
    parameters = [p for group in param_groups for p in group["params"]]
    optimizer = torch.optim.AdamW(param_groups)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    step_args = (train.make_criterion(settings), precision, device, optimizer, scheduler,
                 parameters, settings.clip_grad_norm)
    generator = torch.Generator().manual_seed(settings.seed)
    num_batches = math.ceil(EPOCH_TRAIN_IMAGES / settings.batch_size)
    models.set_train_mode(model, "feature_extraction")
    train.run_epoch(head, train.feature_batches(features, labels, settings.batch_size, generator),
                    num_batches, *step_args)  # warm-up epoch
    stats = train.run_epoch(head, train.feature_batches(features, labels, settings.batch_size,
                                                        generator), num_batches, *step_args)

    speedup = recompute["epoch_seconds_estimate"] / stats["seconds"]
    return {"device": str(device), "model": settings.model,
            "extraction_images_per_second": extraction_rate,
            "cache_build_seconds_estimate":
                (EPOCH_TRAIN_IMAGES + EPOCH_VAL_IMAGES) / extraction_rate,
            "recompute_epoch_seconds_estimate": recompute["epoch_seconds_estimate"],
            "cached_epoch_seconds": stats["seconds"], "cached_epoch_images": stats["images"],
            "speedup": speedup, "speedup_target": CACHE_SPEEDUP_TARGET,
            "target_met": speedup >= CACHE_SPEEDUP_TARGET}


def loader_to_training_ratios(training: list[dict], loading: list[dict]) -> list[dict]:
    """Compare the fastest measured loader with each training configuration; below 1 the
    loader cannot keep up and the device waits for data."""
    best = max(loading, key=lambda row: row["images_per_second"])
    return [{"device": row["device"], "model": row["model"], "mode": row["mode"],
             "training_images_per_second": row["images_per_second"],
             "loader_images_per_second": best["images_per_second"],
             "loader_num_workers": best["num_workers"],
             "loader_to_training_ratio": best["images_per_second"] / row["images_per_second"],
             "loader_keeps_up": best["images_per_second"] >= row["images_per_second"]}
            for row in training]


def measure(args: argparse.Namespace, data_dir: Path, devices: list[torch.device]
            ) -> dict[str, list[dict]]:
    """Run every measurement on one dataset and return the result rows by section."""
    samples = training_samples(data_dir)
    steps = args.warmup_batches + args.timed_batches
    training, cache = [], []
    for device in devices:
        for model_name in args.models:
            prep = preprocessing_for(model_name, args.image_size)
            batches = memory_batches(samples, prep, args.batch_size, steps, args.seed)
            rows = {}
            for mode in models.MODES:
                settings = train_settings(args, model_name, mode)
                rows[mode] = time_training(settings, batches, args.warmup_batches,
                                           args.timed_batches, device)
                training.append(rows[mode])
                print(f"training {device} {model_name} {mode}: "
                      f"{rows[mode]['images_per_second']:.1f} img/s", flush=True)
            cache.append(time_feature_cache(train_settings(args, model_name,
                                                           "feature_extraction"),
                                            batches, args.warmup_batches,
                                            rows["feature_extraction"], device))
            print(f"feature cache {device} {model_name}: speed-up "
                  f"{cache[-1]['speedup']:.0f}x", flush=True)

    prep = preprocessing_for(args.models[0], args.image_size)
    loading = []
    for num_workers in args.num_workers:
        loading.append(time_data_loading(samples, prep, args.batch_size, num_workers,
                                         args.loader_batches, args.seed))
        print(f"data loading with {num_workers} workers: "
              f"{loading[-1]['images_per_second']:.1f} img/s", flush=True)
    return {"training": training, "data_loading": loading, "feature_cache": cache,
            "loader_vs_training": loader_to_training_ratios(training, loading),
            "dataset_train_images": len(samples)}


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Resolve settings, run every measurement and return the benchmark.json content."""
    args = resolve_settings(args)
    previous_threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return collect_results(args)
    finally:
        torch.set_num_threads(previous_threads)


def collect_results(args: argparse.Namespace) -> dict[str, Any]:
    devices = benchmark_devices(args.device)
    system = system_info(devices)

    with tempfile.TemporaryDirectory(prefix="part1-benchmark-") as scratch:
        if args.data_dir is None:
            data_dir = Path(scratch)
            make_dataset(data_dir, args.synthetic_images_per_class, args.seed)
            source = (f"generated by part1.make_synthetic_dataset, "
                      f"{args.synthetic_images_per_class} images per breed, 40 to 72 pixels")
        else:
            data_dir = args.data_dir
            source = f"--data-dir {args.data_dir}"
        results = measure(args, data_dir, devices)
    system["load_average_end"] = load_average()

    settings = {name: str(value) if isinstance(value, Path) else value
                for name, value in vars(args).items()}
    return {
        "benchmark": "part1 training throughput",
        "quick": args.quick,
        "profile": collect_provenance()["profile"],
        "config": {
            "image_size": args.image_size, "batch_size": args.batch_size,
            "warmup_batches": args.warmup_batches, "timed_batches": args.timed_batches,
            "loader_batches": args.loader_batches, "num_workers": args.num_workers,
            "weights": models.RANDOM_INIT, "data_source": source,
            "dataset_train_images": results.pop("dataset_train_images"),
            "epoch_train_images": EPOCH_TRAIN_IMAGES,
            "epoch_seconds_method": (
                f"{EPOCH_TRAIN_IMAGES} training images of the official split (3,680 trainval "
                "less the 10% per-breed validation hold-out) divided by the measured training "
                "images/s; training pass only, batches fed from memory"),
        },
        "system": system,
        **results,
        "provenance": collect_provenance(settings, args.seed, ",".join(map(str, devices))),
    }


def format_tables(result: dict[str, Any]) -> str:
    """Return the results as fixed-width text tables."""
    config = result["config"]
    lines = [f"Part 1 benchmark{' (QUICK)' if result['quick'] else ''}: image size "
             f"{config['image_size']}, batch size {config['batch_size']}, "
             f"{result['system']['torch_threads']} torch threads, {result['system']['cpu']}",
             "", f"{'device':<6} {'model':<10} {'mode':<19} {'img/s':>9} {'s/epoch':>9}"]
    for row in result["training"]:
        lines.append(f"{row['device']:<6} {row['model']:<10} {row['mode']:<19} "
                     f"{row['images_per_second']:>9.1f} {row['epoch_seconds_estimate']:>9.1f}")
    lines += ["", f"{'loader workers':<14} {'img/s':>9}"]
    for row in result["data_loading"]:
        lines.append(f"{row['num_workers']:<14} {row['images_per_second']:>9.1f}")
    lines += ["", f"{'device':<6} {'model':<10} {'recompute s/epoch':>17} "
              f"{'cached s/epoch':>14} {'speed-up':>9} {'target met':>10}"]
    for row in result["feature_cache"]:
        lines.append(f"{row['device']:<6} {row['model']:<10} "
                     f"{row['recompute_epoch_seconds_estimate']:>17.2f} "
                     f"{row['cached_epoch_seconds']:>14.4f} {row['speedup']:>8.0f}x "
                     f"{'yes' if row['target_met'] else 'no':>10}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        result = run_benchmark(args)
    except (data.DatasetNotFoundError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    write_json_atomic(args.output, result)
    print(format_tables(result))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
