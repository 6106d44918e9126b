"""Oxford-IIIT Pet: list-file parsing, robust RGB loading, validation split and preprocessing.

Samples come only from the official list files (annotations/trainval.txt and test.txt), never from
listing images/, because the release's images folder also holds .mat files and unlisted images.
Each list line is `IMAGE_ID CLASS-ID SPECIES BREED-ID`; the label is CLASS-ID - 1 (0..36) and the
species is 1 = cat, 2 = dog.

Undecodable-image policy: every listed image is decoded once before training starts. A file that
fails is named in one warning and left out of its split (or, with strict=True, the run stops
before the first epoch). A missing image file is always an error, because it means the folder
does not match its list.
"""
from __future__ import annotations

import logging
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision import transforms

logger = logging.getLogger(__name__)

# The 37 breeds in the official CLASS-ID order (1..37), spelled as in the file names. The order is
# alphabetical ignoring case; Python's case-sensitive sorted() would put the capitalised cat breeds
# first and silently remap labels.
PET_BREEDS = (
    "Abyssinian", "american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle",
    "Bengal", "Birman", "Bombay", "boxer", "British_Shorthair", "chihuahua", "Egyptian_Mau",
    "english_cocker_spaniel", "english_setter", "german_shorthaired", "great_pyrenees", "havanese",
    "japanese_chin", "keeshond", "leonberger", "Maine_Coon", "miniature_pinscher", "newfoundland",
    "Persian", "pomeranian", "pug", "Ragdoll", "Russian_Blue", "saint_bernard", "samoyed",
    "scottish_terrier", "shiba_inu", "Siamese", "Sphynx", "staffordshire_bull_terrier",
    "wheaten_terrier", "yorkshire_terrier",
)
NUM_CLASSES = len(PET_BREEDS)
SPECIES_NAMES = ("cat", "dog")
SPLITS = ("trainval", "test")
DATASET_FOLDER = "oxford-iiit-pet"

# Fraction of each breed's trainval images held out for model selection and early stopping.
DEFAULT_VAL_FRACTION = 0.1
DEFAULT_SPLIT_SEED = 0

# Gentle augmentation for a 3.7k-image fine-grained set: crops keep at least half the image, so
# the pet's distinguishing parts (face, ears, coat) usually stay in view.
TRAIN_CROP_SCALE = (0.5, 1.0)

DOWNLOAD_HELP = """\
Get the dataset in one of two ways:
  1. Rerun with --download (torchvision fetches images.tar.gz and annotations.tar.gz, about 800 MB).
  2. Manually: download https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz and
     https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz, then extract both into
     {base}
Expected layout:
  {root}/
    oxford-iiit-pet/
      images/                 Abyssinian_1.jpg ... (7,390 files, among them a few .mat files)
      annotations/
        trainval.txt          3,680 lines: IMAGE_ID CLASS-ID SPECIES BREED-ID
        test.txt              3,669 lines, same format"""


class DatasetNotFoundError(FileNotFoundError):
    """The dataset folder is missing or incomplete. The message gives the download steps."""


class UndecodableImagesError(RuntimeError):
    """Listed images cannot be decoded and --strict-images is set."""


@dataclass(frozen=True)
class PetSample:
    image_id: str
    path: Path
    label: int  # CLASS-ID - 1, in 0..36
    species: int  # 0 = cat, 1 = dog


def dataset_base(root: str | os.PathLike) -> Path:
    return Path(root) / DATASET_FOLDER


def check_dataset(root: str | os.PathLike) -> Path:
    """Return the dataset folder under a torchvision-style root, or raise with download steps."""
    base = dataset_base(root)
    required = [base / "images", base / "annotations" / "trainval.txt",
                base / "annotations" / "test.txt"]
    missing = [str(path) for path in required if not path.exists()]
    if missing:
        raise DatasetNotFoundError(
            f"Oxford-IIIT Pet dataset not found or incomplete under --data-dir {root}: missing "
            f"{', '.join(missing)}.\n" + DOWNLOAD_HELP.format(root=Path(root), base=base))
    return base


def download_dataset(root: str | os.PathLike) -> Path:
    """Fetch the dataset with torchvision's downloader unless it is already present."""
    from torchvision.datasets import OxfordIIITPet

    try:
        return check_dataset(root)
    except DatasetNotFoundError:
        pass
    logger.info("downloading Oxford-IIIT Pet into %s", dataset_base(root))
    try:
        OxfordIIITPet(root=str(root), split="trainval", download=True)
    except (OSError, RuntimeError) as error:
        raise DatasetNotFoundError(
            f"downloading Oxford-IIIT Pet into {dataset_base(root)} failed: {error}\n"
            + DOWNLOAD_HELP.format(root=Path(root), base=dataset_base(root))) from error
    return check_dataset(root)


def read_list_file(path: Path) -> list[tuple[str, int, int]]:
    """Parse an official list file into (image_id, class_id, species_id) rows (ids 1-based)."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) != 4:
                raise ValueError(f"{path}:{line_number}: expected 'IMAGE_ID CLASS-ID SPECIES "
                                 f"BREED-ID', got {line!r}")
            image_id, class_id, species_id = fields[0], int(fields[1]), int(fields[2])
            if not 1 <= class_id <= NUM_CLASSES or species_id not in (1, 2):
                raise ValueError(f"{path}:{line_number}: CLASS-ID {class_id} or SPECIES "
                                 f"{species_id} is out of range (1..{NUM_CLASSES}, 1..2)")
            rows.append((image_id, class_id, species_id))
    return rows


def breed_of(image_id: str) -> str:
    return image_id.rsplit("_", 1)[0]


def parse_split(root: str | os.PathLike, split: str) -> list[PetSample]:
    """Read one official split; raise FileNotFoundError naming a listed image that is missing."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is invalid; use one of {', '.join(SPLITS)}")
    base = check_dataset(root)
    samples = []
    for image_id, class_id, species_id in read_list_file(base / "annotations" / f"{split}.txt"):
        expected_breed = PET_BREEDS[class_id - 1]
        if breed_of(image_id).lower() != expected_breed.lower():
            raise ValueError(f"{split}.txt lists {image_id} with CLASS-ID {class_id}, but that id "
                             f"is {expected_breed} in the official order")
        path = base / "images" / f"{image_id}.jpg"
        if not path.is_file():
            raise FileNotFoundError(f"{split}.txt lists {image_id}, but {path} does not exist; "
                                    "re-extract images.tar.gz or rerun with --download")
        samples.append(PetSample(image_id, path, class_id - 1, species_id - 1))
    return samples


def class_names(root: str | os.PathLike | None = None) -> list[str]:
    """Return the 37 breed names in label order, spelled as in the dataset's file names.

    Names come from the list files where a class appears there (so the spelling matches the
    release on disk) and from PET_BREEDS otherwise, because small subsets lack some breeds.
    """
    names = list(PET_BREEDS)
    if root is not None:
        base = check_dataset(root)
        for split in SPLITS:
            for image_id, class_id, _ in read_list_file(base / "annotations" / f"{split}.txt"):
                names[class_id - 1] = breed_of(image_id)
    return names


def species_of_classes(samples: Sequence[PetSample] | None = None) -> list[str]:
    """Return "cat" or "dog" for each of the 37 classes (cat breeds are capitalised)."""
    species = ["cat" if name[0].isupper() else "dog" for name in PET_BREEDS]
    for sample in samples or ():
        species[sample.label] = SPECIES_NAMES[sample.species]
    return species


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Open an image and return it fully decoded in RGB mode.

    The release has PNGs in RGBA and GIFs in palette mode saved with a .jpg name, grayscale and
    CMYK JPEGs; PIL reads the real format from the file header, and convert() handles each mode.
    Palette images with transparency go through RGBA so PIL applies the transparency first.
    """
    with Image.open(path) as image:
        image.load()
        if image.mode in ("P", "PA") and "transparency" in image.info:
            image = image.convert("RGBA")
        return image.convert("RGB")


def _decode_error(path: Path) -> str | None:
    try:
        load_rgb(path)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        return f"{type(error).__name__}: {error}"
    return None


def find_undecodable(samples: Sequence[PetSample], num_workers: int = 2) -> dict[str, str]:
    """Decode every sample once and return {image_id: error} for the ones that fail.

    PIL releases the GIL while decoding, so threads give a real speed-up here.
    """
    with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        errors = list(pool.map(_decode_error, [sample.path for sample in samples]))
    return {sample.image_id: error for sample, error in zip(samples, errors) if error}


def drop_undecodable(samples: list[PetSample], split: str, num_workers: int = 2,
                     strict: bool = False) -> list[PetSample]:
    """Apply the undecodable-image policy: warn once with the names and skip, or raise if strict."""
    bad = find_undecodable(samples, num_workers)
    if not bad:
        return samples
    details = "; ".join(f"{image_id} ({error})" for image_id, error in sorted(bad.items()))
    if strict:
        raise UndecodableImagesError(f"{len(bad)} {split} image(s) cannot be decoded: {details}. Replace the "
                           "files, or run without --strict-images to skip them")
    logger.warning("skipping %d undecodable %s image(s): %s", len(bad), split, details)
    return [sample for sample in samples if sample.image_id not in bad]


def stratified_split(samples: Sequence[PetSample], val_fraction: float = DEFAULT_VAL_FRACTION,
                     seed: int = DEFAULT_SPLIT_SEED) -> tuple[list[PetSample], list[PetSample]]:
    """Split trainval per breed into train and validation with a fixed seed.

    Each breed with at least 2 images gives round(n * val_fraction) of them, but at least 1, to
    validation and keeps at least 1 for training. Implemented per class rather than with
    sklearn's StratifiedShuffleSplit, which rejects breeds with a single image in small subsets.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"--val-fraction {val_fraction} is invalid; use a value in [0, 1)")
    by_class: dict[int, list[PetSample]] = defaultdict(list)
    for sample in sorted(samples, key=lambda s: s.image_id):
        by_class[sample.label].append(sample)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in sorted(by_class):
        members = by_class[label]
        order = rng.permutation(len(members))
        n_val = 0
        if val_fraction > 0 and len(members) >= 2:
            n_val = min(max(1, round(len(members) * val_fraction)), len(members) - 1)
        val.extend(members[i] for i in order[:n_val])
        train.extend(members[i] for i in order[n_val:])
    return train, val


class PetDataset(Dataset):
    """Map-style dataset over parsed samples; returns (image tensor, label)."""

    def __init__(self, samples: Sequence[PetSample], transform: Callable | None = None):
        self.samples = list(samples)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        sample = self.samples[index]
        image = load_rgb(sample.path)
        if self.transform is not None:
            image = self.transform(image)
        return image, sample.label


@dataclass(frozen=True)
class Preprocessing:
    """Input settings taken from the pretrained weights' data config."""

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str
    crop_pct: float

    def as_dict(self) -> dict:
        return {"image_size": self.image_size, "mean": list(self.mean), "std": list(self.std),
                "interpolation": self.interpolation, "crop_pct": self.crop_pct}


def preprocessing_from_model(model: torch.nn.Module, image_size: int) -> Preprocessing:
    """Read mean, std, interpolation and crop ratio from the model's timm pretrained config."""
    from timm.data import resolve_model_data_config

    config = resolve_model_data_config(model)
    return Preprocessing(image_size=image_size, mean=tuple(config["mean"]),
                         std=tuple(config["std"]), interpolation=config["interpolation"],
                         crop_pct=float(config["crop_pct"]))


def eval_transform(prep: Preprocessing) -> Callable:
    """Build timm's evaluation transform: resize to size / crop_pct, center crop, normalize."""
    from timm.data import create_transform

    return create_transform(prep.image_size, is_training=False, interpolation=prep.interpolation,
                            mean=prep.mean, std=prep.std, crop_pct=prep.crop_pct)


def train_transform(prep: Preprocessing) -> Callable:
    """Build the training transform: a gentle RandomResizedCrop and a horizontal flip."""
    interpolation = transforms.InterpolationMode(prep.interpolation)
    return transforms.Compose([
        transforms.RandomResizedCrop(prep.image_size, scale=TRAIN_CROP_SCALE,
                                     interpolation=interpolation),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(prep.mean, prep.std),
    ])


def display_transform(prep: Preprocessing) -> Callable:
    """Resize and center-crop like evaluation but keep a PIL image, for figures."""
    interpolation = transforms.InterpolationMode(prep.interpolation)
    resize_to = int(prep.image_size / prep.crop_pct)
    return transforms.Compose([transforms.Resize(resize_to, interpolation=interpolation),
                               transforms.CenterCrop(prep.image_size)])


def seed_worker(worker_id: int) -> None:
    """Seed numpy and random in a DataLoader worker from the seed torch gave that worker."""
    import random

    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)
