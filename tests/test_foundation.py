"""Checks of the project scaffolding: offline guard, package imports and provenance records."""
import json
import socket
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from tools.provenance import collect_provenance, write_json_atomic


def test_network_guard_rejects_remote_hosts():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(RuntimeError, match="offline"):
        sock.connect(("203.0.113.1", 443))
    sock.close()


def test_offline_variables_set():
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1"


@pytest.mark.parametrize("package", ["part1", "part2", "tools"])
def test_packages_import(package):
    result = subprocess.run([sys.executable, "-c", f"import {package}"], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_provenance_fields(tmp_path):
    record = collect_provenance(settings={"lr": 0.1}, seed=3, device="cpu")
    for key in ("git_commit", "date_utc", "python", "packages", "device", "seed", "settings", "profile"):
        assert key in record
    assert record["seed"] == 3
    assert record["packages"]["torch"]
    path = tmp_path / "nested" / "record.json"
    write_json_atomic(path, record)
    assert json.loads(path.read_text())["settings"] == {"lr": 0.1}
    assert not list(path.parent.glob("*.tmp"))


def test_atomic_write_uses_default_mode(tmp_path):
    import os
    import stat

    path = tmp_path / "out.txt"
    write_json_atomic(path, {"a": 1})
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
