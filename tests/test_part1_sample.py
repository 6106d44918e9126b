"""Each of the four runs on the real Oxford-IIIT Pet sample: one short epoch, then evaluation.

Needs PETS_SAMPLE_ROOT (a folder holding oxford-iiit-pet/); skipped with a reason otherwise.
Random weights (--no-pretrained), 32-pixel inputs and two batches of 4 images keep it on the CPU.
"""
import json

import pytest

from part1 import dataset as data
from part1 import evaluate as evaluate_module
from part1 import train as train_module
from tests._part1_helpers import few_threads, train_argv  # noqa: F401  (fixture)

RUNS = [("resnet50", "feature_extraction"), ("resnet50", "finetune"),
        ("swin_t", "feature_extraction"), ("swin_t", "finetune")]


def test_sample_parsing_matches_release(pets_sample_root):
    trainval = data.parse_split(pets_sample_root, "trainval")
    test = data.parse_split(pets_sample_root, "test")
    ids = {s.image_id for s in trainval + test}
    assert len(trainval) == 370
    assert len(test) == 68
    # unlisted GIF and JPEG
    assert "Abyssinian_34" not in ids
    assert "Abyssinian_82" not in ids
    rgba_png = next(s for s in test if s.image_id == "Abyssinian_5")
    assert data.load_rgb(rgba_png.path).mode == "RGB"
    assert data.find_undecodable(trainval + test) == {}


@pytest.mark.parametrize("model, mode", RUNS)
def test_sample_run_end_to_end(pets_sample_root, tmp_path, model, mode):
    run_dir, eval_dir = tmp_path / "run", tmp_path / "eval"
    argv = train_argv(pets_sample_root, run_dir, model, mode, "--epochs", "1", "--batch-size",
                      "4", "--image-size", "32", "--max-train-batches", "2",
                      "--max-eval-batches", "1")
    assert train_module.main(argv) == 0
    history = json.loads((run_dir / "history.json").read_text())["history"]
    assert len(history) == 1

    assert evaluate_module.main([
        "--run-dir", str(run_dir), "--data-dir", str(pets_sample_root), "--output-dir",
        str(eval_dir), "--device", "cpu", "--num-workers", "0", "--quiet"]) == 0
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    assert metrics["weights"] == "random init (--no-pretrained)"
    assert metrics["test"]["num_images"] == 68
    assert len(metrics["test"]["classes_without_test_images"]) > 0
    for name in metrics["artifacts"]:
        assert (eval_dir / name).stat().st_size > 0, name
