"""Helpers for the generation tests: a tiny random Qwen3 checkpoint and a subprocess runner."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from conftest import REPO_ROOT

# The real Qwen3 tokenizer has ids up to 151668, so the embedding needs at least 151669 rows;
# 151936 is Qwen3-0.6B's size. A short context makes the context-length checks cheap to reach.
TINY_VOCAB_SIZE = 151_936
TINY_CONTEXT = 128
# seconds; a generous ceiling for one command-line run of the tiny model on a busy machine
SUBPROCESS_TIMEOUT = 120


def make_tiny_checkpoint(directory: Path, seed: int = 0) -> Path:
    """Save a random one-layer transformers Qwen3ForCausalLM in the Hugging Face layout."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    config = Qwen3Config(vocab_size=TINY_VOCAB_SIZE, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=8, max_position_embeddings=TINY_CONTEXT, tie_word_embeddings=True)
    Qwen3ForCausalLM(config).save_pretrained(directory)
    return directory


def write_course_layout(hf_directory: Path, course_directory: Path) -> Path:
    """Copy a Hugging Face checkpoint into the course layout, inside a ckpt/ subfolder."""
    from safetensors.torch import load_file

    folder = course_directory / "ckpt"
    folder.mkdir(parents=True)
    config = json.loads((hf_directory / "config.json").read_text())
    (folder / "model_config.json").write_text(json.dumps(config))
    state_dict = load_file(str(hf_directory / "model.safetensors"))
    torch.save(state_dict, folder / "custom_model_state_dict.pth")
    return course_directory


def subprocess_env(**overrides: str) -> dict[str, str]:
    """Return an environment for a child run: offline, one thread, and a dead Hub endpoint."""
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
                # any request that slipped past the offline switches would hit a closed local port
                "HF_ENDPOINT": "http://127.0.0.1:9", "PYTHONUNBUFFERED": "1"})
    env.update(overrides)
    return env


def run_generate(args: list[str], stdin: str = "", env: dict[str, str] | None = None,
                 as_script: bool = False) -> subprocess.CompletedProcess:
    """Run part2.generate as a module (or as a script) with `args`; capture text output."""
    entry = [str(REPO_ROOT / "part2" / "generate.py")] if as_script else ["-m", "part2.generate"]
    return subprocess.run([sys.executable, *entry, *args], input=stdin, capture_output=True,
                          text=True, cwd=REPO_ROOT, env=env or subprocess_env(),
                          timeout=SUBPROCESS_TIMEOUT)


def prompt_ids_lines(stderr: str) -> list[list[int]]:
    """Parse the 'prompt ids: [...]' lines that --show-prompt writes to stderr."""
    prefix = "prompt ids: "
    return [json.loads(line[len(prefix):]) for line in stderr.splitlines() if line.startswith(prefix)]
