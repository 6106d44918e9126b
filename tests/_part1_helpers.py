"""Shared fixtures for the Part 1 tests: a generated dataset and a tiny timm model spec."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from part1 import models
from part1.make_synthetic_dataset import make_dataset

# timm's test_resnet has BatchNorm like ResNet-50 but 0.4M parameters, so training tests take
# seconds; it is registered under --model tiny only inside tests.
TINY_SPEC = models.ModelSpec("test_resnet", "r160_in1k", takes_image_size=False)
TINY_IMAGE_SIZE = 32


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A generated dataset with the release's quirks, 6 images per breed (3 trainval, 3 test)."""
    root = tmp_path_factory.mktemp("pets")
    make_dataset(root, images_per_class=6, seed=0)
    return root


@pytest.fixture
def tiny_model_spec(monkeypatch):
    monkeypatch.setitem(models.MODEL_SPECS, "tiny", TINY_SPEC)
    return "tiny"


@pytest.fixture(autouse=True)
def few_threads():
    """Run torch on one thread, because on a shared 2-core machine extra OpenMP threads spin and
    make small models many times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def train_argv(data_dir: Path, output_dir: Path, model: str = "tiny", mode: str = "finetune",
               *extra: str) -> list[str]:
    image_size = TINY_IMAGE_SIZE if model == "tiny" else 64
    return ["--data-dir", str(data_dir), "--output-dir", str(output_dir), "--model", model,
            "--mode", mode, "--batch-size", "16", "--image-size", str(image_size),
            "--no-pretrained", "--device", "cpu", "--num-workers", "0", "--quiet", *extra]
