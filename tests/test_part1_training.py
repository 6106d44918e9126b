"""Regimes, overfitting, resume and artifacts of the Part 1 training loop (CPU, tiny model)."""
import csv
import json

import pytest
import torch
from torch import nn

from part1 import checkpoint as ckpt
from part1 import dataset as data
from part1 import evaluate as evaluate_module
from part1 import models
from part1 import train as train_module
from tests._part1_helpers import (TINY_IMAGE_SIZE, few_threads, synthetic_root,  # noqa: F401
                                  tiny_model_spec, train_argv)


def run_train(argv):
    args = train_module.get_args_parser().parse_args(argv)
    return train_module.train(args)


def run_evaluate(run_dir, data_dir, output_dir):
    args = evaluate_module.get_args_parser().parse_args([
        "--run-dir", str(run_dir), "--data-dir", str(data_dir), "--output-dir", str(output_dir),
        "--device", "cpu", "--num-workers", "0", "--quiet"])
    return evaluate_module.evaluate(args)


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def take_steps(model_name, mode, steps=3, image_size=32):
    torch.manual_seed(0)
    model = models.build_model(model_name, 37, pretrained=False, image_size=image_size)
    groups = models.configure_regime(model, mode, lr=1e-2, backbone_lr=1e-2, weight_decay=0.05)
    optimizer = torch.optim.AdamW(groups)
    before = snapshot(model)
    images, labels = torch.randn(4, 3, image_size, image_size), torch.arange(4)
    for _ in range(steps):
        models.set_train_mode(model, mode)
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, optimizer, before, snapshot(model)


@pytest.mark.parametrize("model_name", ["resnet50", "swin_t"])
def test_feature_extraction_freezes_backbone(model_name):
    model, optimizer, before, after = take_steps(model_name, "feature_extraction")
    head_names = {n for n in before if models.is_head_parameter(model, n)}
    assert head_names
    optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
    for name, parameter in model.named_parameters():
        assert (id(parameter) in optimized) == (name in head_names), name
    for name in before:
        if name in head_names:
            assert not torch.equal(before[name], after[name]), f"head {name} did not train"
        else:
            assert torch.equal(before[name], after[name]), f"backbone {name} changed"


def test_feature_extraction_keeps_batchnorm_buffers():
    model, _, before, after = take_steps("resnet50", "feature_extraction")
    buffers = [n for n in before if "running_mean" in n or "running_var" in n]
    assert len(buffers) > 50
    assert all(torch.equal(before[n], after[n]) for n in buffers)


def test_finetune_changes_backbone_and_buffers():
    model, optimizer, before, after = take_steps("resnet50", "finetune")
    changed = [n for n in before if not torch.equal(before[n], after[n])]
    assert "conv1.weight" in changed
    assert "bn1.running_mean" in changed
    lrs = {group["name"]: group["lr"] for group in optimizer.param_groups}
    assert set(lrs) == {"head", "backbone"}


def test_finetune_backbone_lr_lower(synthetic_root, tmp_path, tiny_model_spec):
    run_train(train_argv(synthetic_root, tmp_path, "tiny", "finetune", "--epochs", "1"))
    saved = ckpt.load_checkpoint(tmp_path / "last.pth")
    groups = saved["optimizer"]["param_groups"]
    head = {g["initial_lr"] for g in groups if g["name"] == "head"}
    backbone = {g["initial_lr"] for g in groups if g["name"] == "backbone"}
    assert head == {1e-3}
    assert backbone == {5e-5}


def test_tiny_model_overfits_few_images(synthetic_root, tiny_model_spec):
    torch.manual_seed(0)
    samples = [s for s in data.parse_split(synthetic_root, "trainval") if s.label < 8][::3]
    model = models.build_model("tiny", 37, pretrained=False, image_size=TINY_IMAGE_SIZE)
    prep = data.preprocessing_from_model(model, TINY_IMAGE_SIZE)
    images = torch.stack([data.eval_transform(prep)(data.load_rgb(s.path)) for s in samples])
    labels = torch.tensor([s.label for s in samples])
    optimizer = torch.optim.AdamW(models.configure_regime(model, "finetune", 3e-3, 3e-3, 0.0))
    for _ in range(60):
        model.train()
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        predictions = model(images).argmax(dim=1)
    assert loss.item() < 0.1
    assert torch.equal(predictions, labels)


@pytest.mark.parametrize("mode_flags", [("finetune",), ("feature_extraction", "--cached-features")])
def test_resume_matches_uninterrupted(synthetic_root, tmp_path, tiny_model_spec, monkeypatch,
                                      mode_flags):
    mode, *flags = mode_flags
    common = ["--epochs", "3", "--patience", "0", *flags]
    full = run_train(train_argv(synthetic_root, tmp_path / "full", "tiny", mode, *common))

    real_run_epoch = train_module.run_epoch
    calls = {"train": 0}

    def interrupted_run_epoch(*args, **kwargs):
        if kwargs.get("optimizer") is not None or len(args) > 6:
            calls["train"] += 1
            if calls["train"] == 3:
                raise KeyboardInterrupt
        return real_run_epoch(*args, **kwargs)

    monkeypatch.setattr(train_module, "run_epoch", interrupted_run_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_train(train_argv(synthetic_root, tmp_path / "cut", "tiny", mode, *common))
    assert ckpt.load_checkpoint(tmp_path / "cut" / "last.pth")["epoch"] == 2
    monkeypatch.setattr(train_module, "run_epoch", real_run_epoch)
    resumed = run_train(train_argv(synthetic_root, tmp_path / "cut", "tiny", mode, *common,
                                   "--resume"))

    columns = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")
    for row_full, row_resumed in zip(full["history"], resumed["history"], strict=True):
        for column in columns:
            assert row_resumed[column] == row_full[column], (row_full["epoch"], column)
    state_full = ckpt.load_checkpoint(tmp_path / "full" / "last.pth")["state_dict"]
    state_resumed = ckpt.load_checkpoint(tmp_path / "cut" / "last.pth")["state_dict"]
    assert state_full.keys() == state_resumed.keys()
    for name in state_full:
        assert torch.equal(state_full[name], state_resumed[name]), name


def test_resume_rejects_changed_settings(synthetic_root, tmp_path, tiny_model_spec):
    run_train(train_argv(synthetic_root, tmp_path, "tiny", "finetune", "--epochs", "1"))
    with pytest.raises(ValueError, match="--batch-size"):
        argv = train_argv(synthetic_root, tmp_path, "tiny", "finetune", "--epochs", "1",
                          "--resume")
        argv[argv.index("--batch-size") + 1] = "8"
        run_train(argv)


def test_nan_loss_stops_run(synthetic_root, tmp_path, tiny_model_spec, monkeypatch):
    class NanLoss(nn.Module):
        def forward(self, logits, labels):
            return logits.sum() * float("nan")

    monkeypatch.setattr(train_module, "make_criterion", lambda args: NanLoss())
    code = train_module.main(train_argv(synthetic_root, tmp_path, "tiny", "finetune",
                                        "--epochs", "1"))
    assert code == 1


def test_cli_user_error_is_one_message(tmp_path, capsys, tiny_model_spec):
    code = train_module.main(train_argv(tmp_path / "nowhere", tmp_path / "run"))
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith("error: Oxford-IIIT Pet dataset not found")
    assert "Traceback" not in captured.err


def test_cached_features_needs_feature_extraction(synthetic_root, tmp_path, tiny_model_spec):
    with pytest.raises(ValueError, match="--cached-features"):
        run_train(train_argv(synthetic_root, tmp_path, "tiny", "finetune", "--cached-features"))


@pytest.mark.parametrize("mode", models.MODES)
def test_every_artifact_written(synthetic_root, tmp_path, tiny_model_spec, monkeypatch, mode):
    monkeypatch.setenv("RUN_PROFILE", "smoke")
    run_dir, eval_dir = tmp_path / "run", tmp_path / "eval"
    metrics = run_train(train_argv(synthetic_root, run_dir, "tiny", mode, "--epochs", "2"))
    for name in ("args.json", "history.csv", "history.json", "metrics.json", "best.pth",
                 "last.pth"):
        assert (run_dir / name).is_file(), name
    with open(run_dir / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == [1, 2]
    assert tuple(rows[0]) == train_module.HISTORY_COLUMNS
    assert json.loads((run_dir / "args.json").read_text())["weight_decay"] is not None
    training = metrics["training"]
    for key in ("epochs_run", "best_epoch", "best_val_acc", "epochs_to_convergence",
                "mean_epoch_seconds", "mean_images_per_second", "peak_gpu_memory_mb",
                "trainable_parameters", "total_parameters", "image_size", "batch_size"):
        assert key in training, key

    saved = ckpt.load_checkpoint(run_dir / "best.pth")
    model = models.build_model("tiny", 37, pretrained=False, image_size=TINY_IMAGE_SIZE)
    if mode == "feature_extraction":
        assert all(models.is_head_parameter(model, name) for name in saved["state_dict"])
    else:
        assert saved["state_dict"].keys() == model.state_dict().keys()
    assert saved["class_names"] == list(data.PET_BREEDS)

    result = run_evaluate(run_dir, synthetic_root, eval_dir)
    for name in result["artifacts"]:
        assert (eval_dir / name).stat().st_size > 0, name
    written = json.loads((eval_dir / "metrics.json").read_text())
    assert written["run"] == f"tiny_{mode}"
    for name in ("predictions.csv", "classification_report.csv"):
        with open(eval_dir / name) as handle:
            assert {row["profile"] for row in csv.DictReader(handle)} == {"smoke"}, name
    assert written["provenance"]["profile"] == "smoke"
    assert written["test"]["num_images"] == 37 * 3
    assert 0.0 <= written["test"]["top1"] <= written["test"]["top5"] <= 1.0
    assert len(written["history"]) == 2


def test_missing_dataset_leaves_no_run_folder(tmp_path, capsys):
    run_dir = tmp_path / "run"
    status = train_module.main(["--data-dir", str(tmp_path / "no-data"), "--output-dir",
                                str(run_dir), "--model", "resnet50", "--mode", "finetune",
                                "--no-pretrained"])
    assert status == 2
    assert "error:" in capsys.readouterr().err
    assert not run_dir.exists()
