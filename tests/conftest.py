"""Shared test set-up: offline Hugging Face libraries, a socket guard, and the real sample files."""
import os
import socket
from pathlib import Path

import pytest

# Set before any test module imports transformers or huggingface_hub, which read them at import.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

REPO_ROOT = Path(__file__).resolve().parents[1]
_LOOPBACK_PREFIXES = ("127.", "::1", "localhost")
_real_connect = socket.socket.connect


def _guarded_connect(sock: socket.socket, address):
    """Reject connections to anything but loopback, so a download attempt fails at once."""
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (host.startswith(_LOOPBACK_PREFIXES) or sock.family == socket.AF_UNIX):
        return _real_connect(sock, address)
    raise RuntimeError(f"test tried to open a network connection to {address!r}; tests must stay offline")


socket.socket.connect = _guarded_connect


def _env_dir(variable: str, what: str) -> Path:
    value = os.environ.get(variable)
    if not value:
        pytest.skip(f"{variable} is not set; it should point to {what}")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"{variable}={value} is not a directory; it should point to {what}")
    return path


@pytest.fixture(scope="session")
def pets_sample_root() -> Path:
    """Torchvision-style root holding a real `oxford-iiit-pet/` sample (from PETS_SAMPLE_ROOT)."""
    return _env_dir("PETS_SAMPLE_ROOT", "a folder that holds oxford-iiit-pet/{images,annotations}")


@pytest.fixture(scope="session")
def qwen_tokenizer_dir() -> Path:
    """Directory with the real Qwen3 tokenizer files (from QWEN_TOKENIZER_DIR)."""
    return _env_dir("QWEN_TOKENIZER_DIR", "a directory with the Qwen3 tokenizer.json and tokenizer_config.json")
