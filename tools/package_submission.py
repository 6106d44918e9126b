"""Write submission.zip with the three folders that the course requires: latex, evaluation and Code.

latex contains the report sources, the generated inputs and the PDF. evaluation contains every
result. Code contains the source tree without data, checkpoints, caches, the virtual environment
or results.

    python -m tools.package_submission [--output submission.zip]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from tools.provenance import default_file_mode

REPO_ROOT = Path(__file__).resolve().parents[1]

# Left out of Code even when git tracks them: generated results, data, weights, caches and builds.
EXCLUDED_DIRS = {".git", ".venv", "venv", "data", "checkpoints", "ckpt", "runs", ".cache",
                 "__pycache__", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints", "evaluation"}
EXCLUDED_PATHS = {"part2/tokenizer", "latex/build", "latex/generated", "submission.zip",
                  "student.toml"}
EXCLUDED_SUFFIXES = {".pth", ".pt", ".safetensors", ".bin", ".ckpt", ".npy", ".npz", ".zip",
                     ".pyc"}
# Build products in latex/ that the package leaves out; the PDF and the sources stay.
LATEX_BUILD_SUFFIXES = {".aux", ".log", ".fls", ".fdb_latexmk", ".out", ".toc", ".synctex.gz"}


def is_excluded(relative: Path) -> bool:
    """Return True for paths that are data, weights, caches, results or build products."""
    posix = relative.as_posix()
    if any(part in EXCLUDED_DIRS for part in relative.parts[:-1]) or relative.name in EXCLUDED_DIRS:
        return True
    if any(posix == path or posix.startswith(path + "/") for path in EXCLUDED_PATHS):
        return True
    return relative.suffix in EXCLUDED_SUFFIXES


def source_files(root: Path) -> list[Path]:
    """List the source tree without symbolic links and without what is_excluded rejects.

    In a git checkout the list is the tracked plus the untracked-not-ignored files. Elsewhere it is
    a walk of the folder.
    """
    try:
        listing = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=root, capture_output=True, check=True, timeout=60).stdout.decode()
        candidates = [Path(name) for name in listing.split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        candidates = []
        for folder, dirnames, filenames in os.walk(root):
            relative_folder = Path(folder).relative_to(root)
            dirnames[:] = [name for name in dirnames
                           if not is_excluded(relative_folder / name / "placeholder")]
            candidates.extend(relative_folder / name for name in filenames)
    files = []
    for relative in sorted(set(candidates)):
        path = root / relative
        if is_excluded(relative) or path.is_symlink() or not path.is_file():
            continue
        files.append(relative)
    return files


def latex_files(root: Path) -> list[Path]:
    """List latex/ without LaTeX's auxiliary files and the build folder (the PDF is kept)."""
    latex = root / "latex"
    if not latex.is_dir():
        return []
    files = []
    for path in sorted(latex.rglob("*")):
        relative = path.relative_to(root)
        if not path.is_file() or path.is_symlink() or "build" in relative.parts[1:2]:
            continue
        if any(path.name.endswith(suffix) for suffix in LATEX_BUILD_SUFFIXES):
            continue
        files.append(relative)
    return files


def evaluation_files(root: Path) -> list[Path]:
    evaluation = root / "evaluation"
    return sorted(path.relative_to(root) for path in evaluation.rglob("*")
                  if path.is_file() and not path.is_symlink())


def build_package(root: Path, output: Path) -> dict[str, int]:
    """Write the zip atomically and return the number of files in each top-level folder."""
    sections = {
        "latex": [(relative, relative) for relative in latex_files(root)],
        "evaluation": [(relative, relative) for relative in evaluation_files(root)],
        "Code": [(relative, Path("Code") / relative) for relative in source_files(root)],
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    os.fchmod(fd, default_file_mode())  # mkstemp's 0600 would hide the zip from other users
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp_name, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for entries in sections.values():
                for source, name in entries:
                    archive.write(root / source, name.as_posix())
        os.replace(tmp_name, output)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return {folder: len(entries) for folder, entries in sections.items()}


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Write submission.zip with latex/, evaluation/ "
                                                 "and Code/.")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "submission.zip",
                        help="zip file to write (default: submission.zip in the repository root)")
    parser.add_argument("--root", type=Path, default=REPO_ROOT,
                        help="repository root to package (default: this checkout)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    root = args.root.resolve()
    if not (root / "run_all.sh").is_file():
        print(f"error: {root} is not the project root (no run_all.sh); pass --root", file=sys.stderr)
        return 1
    if not (root / "latex" / "report.pdf").is_file():
        print("warning: latex/report.pdf is missing; run `bash run_all.sh` (with TeX installed) "
              "first, so that the package contains the PDF", file=sys.stderr)
    profile_file = root / "evaluation" / "logs" / "profile"
    if profile_file.is_file() and profile_file.read_text().strip() == "smoke":
        print("warning: evaluation/ holds SMOKE results, which are not results; run "
              "`bash run_all.sh` for the full profile before submitting", file=sys.stderr)

    output = args.output if args.output.is_absolute() else Path.cwd() / args.output
    counts = build_package(root, output)
    print(f"wrote {output}: " + ", ".join(f"{folder}/ {count} files"
                                          for folder, count in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
