"""Fetch the Qwen3 weights and tokenizer with huggingface_hub, and find them again offline.

    python -m part2.download [--repo-id Qwen/Qwen3-0.6B] [--cache-dir DIR] [--tokenizer-out part2/tokenizer]

The files go into the Hugging Face cache (HF_HOME, default ~/.cache/huggingface/hub, or
--cache-dir), so an interrupted download resumes where it stopped. The tokenizer files are also
copied to part2/tokenizer/, where the tokenizer notebook looks for them. The last line on stdout
is the local model directory, so a script can capture it:

    MODEL_DIR=$(python -m part2.download)

A model directory has one of two layouts:
- Hugging Face: config.json plus model.safetensors, or model.safetensors.index.json and its shards;
- course: model_config.json plus custom_model_state_dict.pth (often in a ckpt/ subfolder).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REPO_ID = "Qwen/Qwen3-0.6B"
DEFAULT_TOKENIZER_OUT = REPO_ROOT / "part2" / "tokenizer"

# Files that transformers' AutoTokenizer reads for Qwen3; the last two exist only in some repos.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                   "special_tokens_map.json", "added_tokens.json")
# Everything a generation run needs and nothing else (no README, LICENSE or other weight formats).
ALLOW_PATTERNS = ["config.json", "generation_config.json", "*.safetensors",
                  "model.safetensors.index.json", *TOKENIZER_FILES]

HF_CONFIG, HF_WEIGHTS, HF_INDEX = "config.json", "model.safetensors", "model.safetensors.index.json"
COURSE_CONFIG, COURSE_WEIGHTS = "model_config.json", "custom_model_state_dict.pth"
COURSE_SUBFOLDER = "ckpt"

_TRUE_VALUES = {"1", "on", "yes", "true"}

logger = logging.getLogger(__name__)


class ModelFilesError(FileNotFoundError):
    """Raised when weights or tokenizer files are missing; the message names them and the fix."""


def offline_requested(offline_flag: bool = False) -> bool:
    """Return True when --offline was given or HF_HUB_OFFLINE is set to a true value."""
    return offline_flag or os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE_VALUES


def download_command(repo_id: str = DEFAULT_REPO_ID, cache_dir: str | os.PathLike | None = None) -> str:
    """Return the exact shell command that fetches `repo_id` into the cache that a run reads."""
    command = "python -m part2.download"
    if repo_id != DEFAULT_REPO_ID:
        command += f" --repo-id {repo_id}"
    if cache_dir is not None:
        command += f" --cache-dir {cache_dir}"
    return command


def _missing_hf_shards(directory: Path) -> list[str]:
    """List the shard files that model.safetensors.index.json names but the folder lacks."""
    try:
        index = json.loads((directory / HF_INDEX).read_text())
        shards = sorted(set(index["weight_map"].values()))
    except (OSError, ValueError, KeyError, AttributeError) as error:
        raise ModelFilesError(f"{directory / HF_INDEX} is unreadable or has no weight_map: {error}") from error
    return [name for name in shards if not (directory / name).is_file()]


def detect_layout(directory: str | os.PathLike) -> tuple[str, Path]:
    """Find the checkpoint layout of a model directory.

    Returns ("hf" or "course", the folder that contains the files). A course checkpoint may also sit
    in DIR/ckpt/, as the course handed it out. Raises ModelFilesError naming every file looked for.
    """
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise ModelFilesError(f"model directory {directory} does not exist or is not a directory")

    if (directory / HF_CONFIG).is_file():
        if (directory / HF_WEIGHTS).is_file():
            return "hf", directory
        if (directory / HF_INDEX).is_file():
            missing = _missing_hf_shards(directory)
            if missing:
                raise ModelFilesError(
                    f"model directory {directory} lists weight shards that are missing: "
                    f"{', '.join(missing[:5])}; the download is incomplete, rerun it")
            return "hf", directory

    for folder in (directory, directory / COURSE_SUBFOLDER):
        if (folder / COURSE_CONFIG).is_file() and (folder / COURSE_WEIGHTS).is_file():
            return "course", folder

    raise ModelFilesError(
        f"model directory {directory} has neither checkpoint layout. Looked for "
        f"{HF_CONFIG} with {HF_WEIGHTS} or {HF_INDEX} (Hugging Face layout), and "
        f"{COURSE_CONFIG} with {COURSE_WEIGHTS} in the folder or in its {COURSE_SUBFOLDER}/ "
        f"subfolder (course layout). Found: {_list_names(directory)}")


def _list_names(directory: Path, limit: int = 10) -> str:
    names = sorted(path.name for path in directory.iterdir())
    if not names:
        return "nothing (empty folder)"
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def has_tokenizer_files(directory: str | os.PathLike) -> bool:
    """Return True when a folder contains a tokenizer that AutoTokenizer can load."""
    directory = Path(directory)
    return (directory / "tokenizer_config.json").is_file() and (
        (directory / "tokenizer.json").is_file()
        or ((directory / "vocab.json").is_file() and (directory / "merges.txt").is_file()))


def copy_tokenizer_files(source: str | os.PathLike, destination: str | os.PathLike) -> list[Path]:
    """Copy the tokenizer files present in `source` into `destination`; return the copies."""
    source, destination = Path(source), Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    copies = []
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            # copyfile follows the cache's symlinks into its blob store and copies the content
            shutil.copyfile(source / name, destination / name)
            copies.append(destination / name)
    return copies


def download_model(repo_id: str = DEFAULT_REPO_ID, cache_dir: str | os.PathLike | None = None,
                   tokenizer_out: str | os.PathLike | None = DEFAULT_TOKENIZER_OUT,
                   revision: str | None = None, progress: bool = True,
                   offline: bool = False) -> Path:
    """Download config, safetensors and tokenizer files of `repo_id`; return the local directory.

    Files already in the cache are not fetched again, and partial files resume. Offline (the
    flag or HF_HUB_OFFLINE=1), only the cache is read. Raises ModelFilesError when the Hub cannot
    be reached or offline mode is on and the cache lacks the files.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    if offline_requested(offline):
        local_dir = resolve_model_dir(None, offline=True, repo_id=repo_id, cache_dir=cache_dir,
                                      revision=revision)
    else:
        if progress:
            enable_progress_bars()
        else:
            disable_progress_bars()
        try:
            local_dir = snapshot_download(repo_id, revision=revision, cache_dir=cache_dir,
                                          allow_patterns=ALLOW_PATTERNS)
        except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as error:
            raise ModelFilesError(
                f"downloading {repo_id} failed: {error}. Check the network connection and the "
                f"repository id, then rerun: {download_command(repo_id, cache_dir)}") from error
        local_dir = Path(local_dir)
        detect_layout(local_dir)

    if tokenizer_out is not None:
        copy_tokenizer_files(local_dir, tokenizer_out)
        logger.info("copied the tokenizer files to %s", tokenizer_out)
    return local_dir


def find_cached_model(repo_id: str = DEFAULT_REPO_ID, cache_dir: str | os.PathLike | None = None,
                      revision: str | None = None) -> Path | None:
    """Return the cached snapshot of `repo_id` without touching the network, or None."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision, cache_dir=cache_dir,
                                      allow_patterns=ALLOW_PATTERNS, local_files_only=True))
    except LocalEntryNotFoundError:
        # huggingface_hub 2.4 raises IncompleteSnapshotError, a subclass, for a partial snapshot
        return None


def resolve_model_dir(model_dir: str | os.PathLike | None, offline: bool = False,
                      repo_id: str = DEFAULT_REPO_ID, cache_dir: str | os.PathLike | None = None,
                      revision: str | None = None,
                      tokenizer_out: str | os.PathLike | None = None) -> Path:
    """Return a local folder with a complete checkpoint, downloading `repo_id` only when allowed.

    With `model_dir` the folder is only checked. Without it the Hugging Face cache is searched
    first; on a miss the model is downloaded, unless `offline` or HF_HUB_OFFLINE=1 is set, in
    which case ModelFilesError names what is missing and the command that fetches it.
    """
    if model_dir is not None:
        return detect_layout(model_dir)[1]

    cached = find_cached_model(repo_id, cache_dir, revision)
    if cached is not None:
        try:
            detect_layout(cached)
            return cached
        except ModelFilesError as error:
            incomplete = str(error)
    else:
        incomplete = None

    if offline_requested(offline):
        where = f"the cache {cache_dir}" if cache_dir is not None else "the Hugging Face cache"
        partial = f" The cache holds a partial copy: {incomplete}." if incomplete else ""
        raise ModelFilesError(
            f"the weights of {repo_id} are not in {where}, and offline mode "
            f"(--offline or HF_HUB_OFFLINE=1) blocks the download.{partial} "
            f"Fetch them once with network access: {download_command(repo_id, cache_dir)} "
            f"(about 1.5 GB), or pass --model-dir with a local checkpoint")
    return download_model(repo_id, cache_dir, tokenizer_out=tokenizer_out, revision=revision)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m part2.download",
        description="Download the Qwen3 config, safetensors and tokenizer files with huggingface_hub "
                    "and print the local model directory.")
    parser.add_argument("--repo-id", default=DEFAULT_REPO_ID,
                        help=f"Hugging Face model repository (default: {DEFAULT_REPO_ID})")
    parser.add_argument("--revision", default=None,
                        help="branch, tag or commit of the repository (default: main)")
    parser.add_argument("--cache-dir", default=None,
                        help="Hugging Face cache folder (default: HF_HOME or ~/.cache/huggingface/hub)")
    parser.add_argument("--tokenizer-out", default=str(DEFAULT_TOKENIZER_OUT),
                        help="folder that receives a copy of the tokenizer files "
                             "(default: part2/tokenizer in the repository)")
    parser.add_argument("--offline", action="store_true",
                        help="only look in the cache and never touch the network (default: off; "
                             "HF_HUB_OFFLINE=1 does the same)")
    parser.add_argument("--quiet", action="store_true", help="hide the progress bars (default: shown)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(message)s", stream=sys.stderr)
    progress = not args.quiet and sys.stderr.isatty()
    try:
        model_dir = download_model(args.repo_id, args.cache_dir, args.tokenizer_out,
                                   revision=args.revision, progress=progress, offline=args.offline)
    except ModelFilesError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(model_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
