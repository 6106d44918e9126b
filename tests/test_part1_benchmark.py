"""part1.benchmark: result structure and values on a tiny model; timings are never asserted."""
from __future__ import annotations

import json
import math

import pytest

from part1 import benchmark, models
from tests._part1_helpers import (TINY_IMAGE_SIZE, TINY_SPEC, few_threads,  # noqa: F401
                                  synthetic_root, tiny_model_spec)


def quick_argv(output, *extra: str) -> list[str]:
    return ["--output", str(output), "--quick", "--models", "tiny", "--device", "cpu",
            "--image-size", str(TINY_IMAGE_SIZE), "--batch-size", "4", "--timed-batches", "2",
            "--loader-batches", "2", "--num-workers", "0", *extra]


def numbers_in(value, path: str = ""):
    """Yield (path, number) for every int or float in a nested result, booleans excluded."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from numbers_in(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from numbers_in(item, f"{path}[{index}]")


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory, synthetic_root):
    """One quick run of the CLI on the generated dataset with the tiny timm model."""
    output = tmp_path_factory.mktemp("benchmark") / "benchmark.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(models.MODEL_SPECS, "tiny", TINY_SPEC)
        code = benchmark.main(quick_argv(output, "--data-dir", str(synthetic_root),
                                         "--threads", "1"))
    assert code == 0
    return json.loads(output.read_text())


def test_benchmark_sections_present(quick_result):
    for key in ("quick", "profile", "config", "system", "training", "data_loading",
                "feature_cache", "loader_vs_training", "provenance"):
        assert key in quick_result, key
    assert quick_result["quick"] is True
    assert quick_result["profile"] in ("full", "smoke")
    assert quick_result["provenance"]["profile"] == quick_result["profile"]
    assert quick_result["system"]["torch_threads"] == 1
    assert quick_result["system"]["torch_version"]


def test_benchmark_one_row_per_configuration(quick_result):
    training = quick_result["training"]
    assert [(row["device"], row["model"], row["mode"]) for row in training] == [
        ("cpu", "tiny", "feature_extraction"), ("cpu", "tiny", "finetune")]
    assert [row["num_workers"] for row in quick_result["data_loading"]] == [0]
    assert [(row["device"], row["model"]) for row in quick_result["feature_cache"]] == [
        ("cpu", "tiny")]
    assert len(quick_result["loader_vs_training"]) == len(training)


def test_benchmark_counts_match_settings(quick_result):
    for row in quick_result["training"]:
        assert row["image_size"] == TINY_IMAGE_SIZE
        assert row["timed_images"] == 2 * 4
    assert quick_result["data_loading"][0]["timed_images"] == 2 * 4
    assert quick_result["feature_cache"][0]["cached_epoch_images"] == benchmark.EPOCH_TRAIN_IMAGES
    frozen, finetune = quick_result["training"]
    assert frozen["trainable_parameters"] < finetune["trainable_parameters"]
    assert finetune["trainable_parameters"] == finetune["total_parameters"]


def test_benchmark_numbers_positive_finite(quick_result):
    measured = {key: quick_result[key] for key in ("training", "data_loading", "feature_cache",
                                                   "loader_vs_training")}
    found = list(numbers_in(measured))
    assert len(found) > 20
    for path, number in found:
        assert math.isfinite(number), path
        # a worker count of 0 is a setting (load in the main process), not a measurement
        if not path.endswith("num_workers"):
            assert number > 0, path


def test_benchmark_generates_dataset(tmp_path, tiny_model_spec):
    output = tmp_path / "benchmark.json"
    assert benchmark.main(quick_argv(output, "--threads", "1")) == 0
    result = json.loads(output.read_text())
    assert "make_synthetic_dataset" in result["config"]["data_source"]
    assert result["config"]["dataset_train_images"] > 0


@pytest.mark.parametrize("flag, value", [("--batch-size", "0"), ("--num-workers", "-1"),
                                         ("--models", "vgg16"), ("--threads", "-2")])
def test_benchmark_rejects_bad_flag(tmp_path, capsys, flag, value):
    output = tmp_path / "benchmark.json"
    assert benchmark.main(["--output", str(output), "--quick", flag, value]) == 2
    message = capsys.readouterr().err
    assert flag in message
    assert value in message
    assert not output.exists()


def test_benchmark_missing_data_dir(tmp_path, capsys):
    output = tmp_path / "benchmark.json"
    code = benchmark.main(["--output", str(output), "--quick", "--data-dir",
                           str(tmp_path / "absent")])
    assert code == 2
    assert "absent" in capsys.readouterr().err
