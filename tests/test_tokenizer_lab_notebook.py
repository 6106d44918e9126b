"""End-to-end tests of the tokenizer lab: the notebook executed headless by part2.run_tokenizer_lab.

A notebook run took 15 to 25 seconds on 2 shared CPU cores, so each tokenizer's notebook runs once
per module and several tests read its outputs.
"""
import json
import os
import subprocess
import sys

import nbformat
import pytest
from transformers import AutoTokenizer

from part2.smoke_tokenizer import save_smoke_tokenizer
from tests.conftest import REPO_ROOT
from tools.provenance import SMOKE_BANNER

NOTEBOOK_TIMEOUT_S = 600
REAL_STUDENT_ID = "31415926"
SMOKE_STUDENT_ID = "A2024-0917"


def run_lab(output_dir, extra_args=(), env_updates=None):
    env = {key: value for key, value in os.environ.items()
           if key not in ("STUDENT_ID", "TOKENIZER_DIR", "RUN_PROFILE", "TOKENIZER_LAB_STUDENT_ID")}
    env.update(env_updates or {})
    command = [sys.executable, "-m", "part2.run_tokenizer_lab", "--output-dir", str(output_dir),
               *extra_args]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=NOTEBOOK_TIMEOUT_S)


@pytest.fixture(scope="module")
def qwen_run(qwen_tokenizer_dir, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("lab_qwen")
    result = run_lab(output_dir, ["--tokenizer-dir", str(qwen_tokenizer_dir)],
                     {"STUDENT_ID": REAL_STUDENT_ID})
    return result, output_dir


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    tokenizer_dir = tmp_path_factory.mktemp("smoke_tokenizer")
    save_smoke_tokenizer(tokenizer_dir)
    output_dir = tmp_path_factory.mktemp("lab_smoke")
    result = run_lab(output_dir, ["--student-id", SMOKE_STUDENT_ID],
                     {"TOKENIZER_DIR": str(tokenizer_dir), "RUN_PROFILE": "smoke"})
    return result, output_dir, tokenizer_dir


@pytest.mark.slow
def test_qwen_notebook_executes(qwen_run):
    result, output_dir = qwen_run
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("Tokenizer_Lab.ipynb", "Tokenizer_Lab.html", "id_analysis.json"):
        assert (output_dir / name).is_file(), name
    notebook = nbformat.read(output_dir / "Tokenizer_Lab.ipynb", as_version=4)
    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.outputs if output.output_type == "error"]
    assert errors == []
    images = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.outputs if "image/png" in output.get("data", {})]
    assert len(images) >= 3


@pytest.mark.slow
def test_qwen_id_count_matches_tokenizer(qwen_run, qwen_tokenizer_dir):
    result, output_dir = qwen_run
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((output_dir / "id_analysis.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(qwen_tokenizer_dir)
    direct_ids = tokenizer.encode(REAL_STUDENT_ID, add_special_tokens=False)

    assert record["student_id"] == REAL_STUDENT_ID
    assert record["student_id_source"] == "environment"
    assert record["student_id_is_example"] is False
    assert record["token_count"] == len(direct_ids)
    assert record["token_count"] == len(REAL_STUDENT_ID)
    assert record["ids"] == direct_ids
    assert record["tokens"] == list(REAL_STUDENT_ID)
    assert record["one_token_per_digit"] is True
    assert record["tokenizer"]["kind"] == "Qwen3"
    assert record["profile"] == "full"
    assert record["provenance"]["profile"] == "full"


@pytest.mark.slow
def test_qwen_html_shows_id_analysis(qwen_run):
    result, output_dir = qwen_run
    assert result.returncode == 0, result.stderr[-3000:]
    html = (output_dir / "Tokenizer_Lab.html").read_text(encoding="utf-8")
    assert f"student ID: {REAL_STUDENT_ID}" in html
    assert SMOKE_BANNER not in html


@pytest.mark.slow
def test_smoke_notebook_executes(smoke_run):
    result, output_dir, _ = smoke_run
    assert result.returncode == 0, result.stderr[-3000:]
    notebook = nbformat.read(output_dir / "Tokenizer_Lab.ipynb", as_version=4)
    assert SMOKE_BANNER in notebook.cells[0].source
    assert SMOKE_BANNER in (output_dir / "Tokenizer_Lab.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_smoke_id_count_matches_tokenizer(smoke_run):
    result, output_dir, tokenizer_dir = smoke_run
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((output_dir / "id_analysis.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    direct_ids = tokenizer.encode(SMOKE_STUDENT_ID, add_special_tokens=False)

    assert record["student_id"] == SMOKE_STUDENT_ID
    assert record["student_id_source"] == "--student-id"
    assert record["token_count"] == len(direct_ids)
    assert record["ids"] == direct_ids
    assert record["tokenizer"]["kind"].startswith("smoke")
    assert record["profile"] == "smoke"
    assert record["provenance"]["profile"] == "smoke"


def test_missing_tokenizer_names_download(tmp_path):
    result = run_lab(tmp_path / "out", ["--tokenizer-dir", str(tmp_path / "absent")])
    assert result.returncode != 0
    assert "python -m part2.download" in result.stderr
    assert str(tmp_path / "absent") in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_default_tokenizer_dir_missing(tmp_path):
    if (REPO_ROOT / "part2" / "tokenizer" / "tokenizer.json").is_file():
        pytest.skip("part2/tokenizer/ exists in this checkout, so the default location is not missing")
    result = run_lab(tmp_path / "out")
    assert result.returncode != 0
    assert "python -m part2.download" in result.stderr
    assert "Traceback" not in result.stderr
