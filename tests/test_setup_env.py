"""tools/setup_env.sh: clear failures for an old Python and a failed pip install, and the stamp."""
import os
import stat
import subprocess
from pathlib import Path

from conftest import REPO_ROOT

SETUP = REPO_ROOT / "tools" / "setup_env.sh"


def _fake_executable(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _run_setup(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, VENV_DIR=str(tmp_path / "venv"), **variables)
    return subprocess.run(["bash", str(SETUP)], env=env, capture_output=True, text=True, timeout=60)


def test_old_python_rejected(tmp_path):
    # Fails the version check and reports version 3.9.18, as Python 3.9 would.
    fake = _fake_executable(tmp_path / "python3.9", """
case "$*" in
  *version_info*) exit 1 ;;
  *python_version*) echo 3.9.18 ;;
esac
""")
    result = _run_setup(tmp_path, PYTHON=str(fake))
    assert result.returncode == 1
    assert "Python 3.9.18 is too old" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_pip_failure_reported(tmp_path):
    # An existing venv whose pip fails, as it does without a reachable package index.
    _fake_executable(tmp_path / "venv" / "bin" / "python", 'if [ "$2" = pip ]; then exit 1; fi\n')
    result = _run_setup(tmp_path)
    assert result.returncode == 1
    assert "pip could not install requirements.txt" in result.stderr
    assert not (tmp_path / "venv" / ".requirements.sha256").exists()


def test_matching_stamp_skips_install(tmp_path):
    # A python that would fail any pip call: the stamp must keep pip from running at all.
    _fake_executable(tmp_path / "venv" / "bin" / "python", "exit 1\n")
    digest = subprocess.run(["sha256sum", str(REPO_ROOT / "requirements.txt")], capture_output=True,
                            text=True, check=True).stdout.split()[0]
    (tmp_path / "venv" / ".requirements.sha256").write_text(digest + "\n")
    result = _run_setup(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "installing" not in result.stdout
