"""Provenance records and atomic writes shared by every step that writes into evaluation/.

Every artifact records where it came from: git commit, resolved settings, seed, package versions,
device and date, plus the run profile. run_all.sh exports RUN_PROFILE=smoke for its smoke profile,
and every artifact written under that profile must be marked SMOKE where a reader will see it.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
PROFILES = ("full", "smoke")
SMOKE_BANNER = "SMOKE RUN: tiny data and random weights; these numbers are not results"
_PACKAGES = ("torch", "torchvision", "timm", "transformers", "tokenizers", "safetensors",
             "numpy", "scikit-learn", "matplotlib")


def run_profile() -> str:
    """Return the profile of the current run: 'full' (default) or 'smoke', from RUN_PROFILE."""
    profile = os.environ.get("RUN_PROFILE", "full").strip().lower() or "full"
    if profile not in PROFILES:
        raise ValueError(f"RUN_PROFILE={profile!r} is invalid; use one of {', '.join(PROFILES)}")
    return profile


def is_smoke() -> bool:
    return run_profile() == "smoke"


def title_with_profile(title: str) -> str:
    """Prefix a plot or document title with 'SMOKE' under the smoke profile."""
    return f"SMOKE: {title}" if is_smoke() else title


def git_commit() -> str:
    """Return the current commit hash, with '-dirty' when tracked files differ, or 'unknown'."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                                timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if status else commit


def package_versions() -> dict[str, str]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def describe_device(device: str | None) -> str:
    """Return a readable name for a torch device string, such as 'cuda (NVIDIA H200)'."""
    if device is None:
        return platform.processor() or platform.machine()
    if str(device).startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    if str(device) == "cpu":
        return f"cpu ({platform.machine()}, {os.cpu_count()} logical cores)"
    return str(device)


def collect_provenance(settings: dict[str, Any] | None = None, seed: int | None = None,
                       device: str | None = None) -> dict[str, Any]:
    """Build the provenance block that every artifact in evaluation/ carries."""
    return {
        "profile": run_profile(),
        "git_commit": git_commit(),
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "device": describe_device(device),
        "seed": seed,
        "settings": settings or {},
    }


def default_file_mode() -> int:
    """Return the mode open() gives a new file under the current umask (0o644 under umask 022)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write a file through a temporary file in the same folder and a rename, so a crash never
    leaves a half-written file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file with mode 0600; give it the mode a plain open() would.
        os.fchmod(fd, default_file_mode())
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
