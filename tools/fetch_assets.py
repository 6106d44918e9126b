"""Fetch or check the inputs of Part 1 (Oxford-IIIT Pet, the timm ImageNet weights) and report a
tokenizer's size. run_all.sh calls it; each command prints one line per item and exits non-zero
with one message when something is missing. Qwen3-0.6B is fetched by part2.download.

    python -m tools.fetch_assets pets --data-dir data [--download]
    python -m tools.fetch_assets timm-weights [--offline]
    python -m tools.fetch_assets vocab-size --tokenizer-dir DIR
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

PETS_LIST_FILES = ("trainval.txt", "test.txt")
# The addresses torchvision 0.29's OxfordIIITPet downloads from, named in the manual steps.
PETS_URLS = ("https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz",
             "https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz")


class MissingInput(Exception):
    """An input of the run is missing; the message says how to get it."""


def check_pets(data_dir: Path) -> Path:
    """Return DATA_DIR/oxford-iiit-pet after checking its list files and images folder."""
    root = data_dir / "oxford-iiit-pet"
    if not data_dir.is_dir():
        raise MissingInput(f"data directory {data_dir} not found; pass --data-dir with a folder "
                           f"that holds oxford-iiit-pet/{{images,annotations}}")
    missing = [name for name in PETS_LIST_FILES if not (root / "annotations" / name).is_file()]
    if not (root / "images").is_dir():
        missing.append("images/")
    if missing:
        raise MissingInput(
            f"Oxford-IIIT Pet is incomplete in {root}: missing {', '.join(missing)}. "
            f"Run `bash run_all.sh --download-only` on a machine with internet, or download "
            f"{' and '.join(PETS_URLS)} and unpack both into {root}/")
    return root


def fetch_pets(data_dir: Path) -> Path:
    """Download Oxford-IIIT Pet with torchvision's downloader when it is not complete yet."""
    try:
        return check_pets(data_dir)
    except MissingInput:
        pass
    from torchvision.datasets import OxfordIIITPet

    data_dir.mkdir(parents=True, exist_ok=True)
    for split in ("trainval", "test"):
        OxfordIIITPet(root=str(data_dir), split=split, download=True)
    return check_pets(data_dir)


def fetch_timm_weights(offline: bool) -> None:
    """Load each pretrained timm model once, which downloads its weights into the cache."""
    import timm
    from huggingface_hub.errors import LocalEntryNotFoundError

    from part1.models import MODEL_SPECS

    # timm stores the weights in the Hugging Face cache, where part1.train finds them offline.
    for name in (f"{spec.timm_name}.{spec.pretrained_tag}" for spec in MODEL_SPECS.values()):
        try:
            timm.create_model(name, pretrained=True)
        except (LocalEntryNotFoundError, OSError) as error:
            hint = ("run `bash run_all.sh --download-only` on a machine with internet first"
                    if offline else "check the network connection")
            raise MissingInput(f"timm weights {name} are not available ({error}); {hint}") from None
        print(f"timm weights ready: {name}")


def tokenizer_vocab_size(tokenizer_dir: Path) -> int:
    """Return the number of ids the tokenizer can produce, added tokens included."""
    from transformers import AutoTokenizer

    if not tokenizer_dir.is_dir():
        raise MissingInput(f"tokenizer directory {tokenizer_dir} not found")
    return len(AutoTokenizer.from_pretrained(str(tokenizer_dir)))


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    pets = commands.add_parser("pets", help="check (and with --download fetch) Oxford-IIIT Pet")
    pets.add_argument("--data-dir", type=Path, required=True,
                      help="folder that holds (or will hold) oxford-iiit-pet/")
    pets.add_argument("--download", action="store_true",
                      help="download the dataset when it is missing (default: only check)")

    timm_weights = commands.add_parser("timm-weights", help="download or check the timm weights")
    timm_weights.add_argument("--offline", action="store_true",
                              help="only check the cache (set HF_HUB_OFFLINE=1 as well)")

    vocab = commands.add_parser("vocab-size", help="print the tokenizer's size, added tokens included")
    vocab.add_argument("--tokenizer-dir", type=Path, required=True,
                       help="directory that AutoTokenizer.from_pretrained loads")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        if args.command == "pets":
            root = fetch_pets(args.data_dir) if args.download else check_pets(args.data_dir)
            print(f"Oxford-IIIT Pet ready: {root}")
        elif args.command == "timm-weights":
            fetch_timm_weights(args.offline)
        elif args.command == "vocab-size":
            print(tokenizer_vocab_size(args.tokenizer_dir))
    except MissingInput as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
