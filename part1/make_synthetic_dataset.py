"""Write a small generated dataset in the official Oxford-IIIT Pet layout, quirks included.

Each breed gets images of a distinct colour and stripe pattern with noise, so a model can learn
the labels. The quirks of the real release are reproduced where the loader must cope with them:
- a PNG in RGBA mode saved as .jpg, and a GIF in palette mode saved as .jpg (both listed);
- a grayscale JPEG and a CMYK JPEG (listed);
- a truncated JPEG (listed; the loader must skip it by name);
- .mat files inside images/, an unlisted JPEG, and a hidden folder with an image in it;
- list.txt with the release's '#' header lines, plus trainval.txt and test.txt without them.

Usage: python -m part1.make_synthetic_dataset --output-dir DIR [--images-per-class N] [--seed S]
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from part1.dataset import DATASET_FOLDER, PET_BREEDS

MIN_SIDE, MAX_SIDE = 40, 72  # pixels; sizes vary so resizing code paths run
LIST_HEADER = (
    "#Image CLASS-ID SPECIES BREED ID\n"
    "#ID: 1:37 Class ids\n"
    "#SPECIES: 1:Cat 2:Dog\n"
    "#BREED ID: 1-25:Cat 1:12:Dog\n"
    "#All images with 1st letter as captial are cat images\n"
    "#images with small first letter are dog images\n"
)

# (breed index, image number within the breed, quirk). Image numbers count from 1 per breed, and
# the first ceil(n / 2) numbers of each breed go to trainval, the rest to test.
QUIRKS = {
    (0, 1): "rgba_png",  # Abyssinian: the release's Abyssinian_5.jpg is an RGBA PNG
    (11, 1): "gif",  # Egyptian_Mau: the release has palette GIFs named .jpg
    (11, 2): "grayscale",
    (34, 1): "grayscale",  # staffordshire_bull_terrier
    (9, 1): "cmyk",  # British_Shorthair
    (4, 2): "truncated",  # beagle
}


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", required=True, type=Path,
                        help="torchvision-style root; the dataset goes into "
                             "OUTPUT_DIR/oxford-iiit-pet/{images,annotations} (required)")
    parser.add_argument("--images-per-class", type=int, default=6,
                        help="listed images per breed, split about half trainval and half test "
                             "(default: 6, minimum 2)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for the pixels (default: 0)")
    return parser


def _breed_image(breed_index: int, rng: np.random.Generator) -> Image.Image:
    """Draw an RGB image whose base colour and stripe period identify the breed."""
    height, width = rng.integers(MIN_SIDE, MAX_SIDE + 1, size=2)
    hue = np.array([(breed_index * 53) % 256, (breed_index * 97 + 80) % 256,
                    (breed_index * 151 + 160) % 256], dtype=np.float32)
    period = 3 + breed_index % 7
    stripes = ((np.arange(width) // period) % 2).astype(np.float32)[None, :, None]
    if breed_index % 2:
        stripes = ((np.arange(height) // period) % 2).astype(np.float32)[:, None, None]
    pixels = hue[None, None, :] * (0.6 + 0.4 * stripes)
    pixels = pixels + rng.normal(0, 12, size=(height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")


def _jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _write_image(path: Path, image: Image.Image, quirk: str | None) -> None:
    if quirk == "rgba_png":
        rgba = image.convert("RGBA")
        rgba.putalpha(200)
        rgba.save(path, format="PNG")
    elif quirk == "gif":
        image.convert("P", palette=Image.Palette.ADAPTIVE).save(path, format="GIF")
    elif quirk == "grayscale":
        image.convert("L").save(path, format="JPEG", quality=90)
    elif quirk == "cmyk":
        image.convert("CMYK").save(path, format="JPEG", quality=90)
    elif quirk == "truncated":
        data = _jpeg_bytes(image)
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(_jpeg_bytes(image))


def _write_mat_file(path: Path) -> None:
    """Write a file that starts like a MATLAB 5 .mat file, as the release's stray files do."""
    header = b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2012"
    path.write_bytes(header.ljust(116, b" ") + bytes(12))


def make_dataset(output_dir: Path, images_per_class: int = 6, seed: int = 0) -> Path:
    """Write the dataset and return its folder (output_dir / oxford-iiit-pet)."""
    if images_per_class < 2:
        raise ValueError(f"--images-per-class {images_per_class} is too small; use at least 2 so "
                         "every breed has a trainval and a test image")
    base = Path(output_dir) / DATASET_FOLDER
    images = base / "images"
    annotations = base / "annotations"
    images.mkdir(parents=True, exist_ok=True)
    annotations.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    trainval_lines, test_lines = [], []
    n_trainval = (images_per_class + 1) // 2
    for breed_index, breed in enumerate(PET_BREEDS):
        species = 1 if breed[0].isupper() else 2
        breed_id = sum(1 for name in PET_BREEDS[: breed_index + 1]
                       if name[0].isupper() == breed[0].isupper())
        for number in range(1, images_per_class + 1):
            image_id = f"{breed}_{number}"
            quirk = QUIRKS.get((breed_index, number))
            _write_image(images / f"{image_id}.jpg", _breed_image(breed_index, rng), quirk)
            line = f"{image_id} {breed_index + 1} {species} {breed_id}\n"
            (trainval_lines if number <= n_trainval else test_lines).append(line)

    # quirks outside the lists: the loader must never pick these up
    _breed_image(0, rng).save(images / "Abyssinian_999.jpg", format="JPEG")
    for number in (100, 101):
        _write_mat_file(images / f"Abyssinian_{number}.mat")
    hidden = images / ".ipynb_checkpoints"
    hidden.mkdir(exist_ok=True)
    _breed_image(1, rng).save(hidden / "american_bulldog_1-checkpoint.jpg", format="JPEG")

    (annotations / "trainval.txt").write_text("".join(trainval_lines))
    (annotations / "test.txt").write_text("".join(test_lines))
    (annotations / "list.txt").write_text(LIST_HEADER + "".join(trainval_lines + test_lines))
    (annotations / "README").write_text("Generated stand-in for the Oxford-IIIT Pet annotations; "
                                        "same list format as the release.\n")
    return base


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        base = make_dataset(args.output_dir, args.images_per_class, args.seed)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(PET_BREEDS) * args.images_per_class} listed images for {len(PET_BREEDS)} "
          f"breeds into {base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
