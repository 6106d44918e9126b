"""Checkpoints: atomic save, safe load, and rebuilding the model a checkpoint describes.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so it loads with
torch.load(weights_only=True). A feature-extraction checkpoint stores only the trained head, the
backbone's weights id and a fingerprint of the backbone. Loading rebuilds the backbone from timm
(or, for --no-pretrained, from the same random seed) and checks it against the fingerprint.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from part1 import models
from tools.provenance import write_atomic

CHECKPOINT_FORMAT = 1
# Relative tolerance for the float64 sum of a rebuilt backbone. Summation order on another device
# or library build changes the last digits, but different weights change far more.
FINGERPRINT_RTOL = 1e-6


def save_checkpoint(paths: list[str | os.PathLike], checkpoint: dict[str, Any]) -> None:
    """Write the checkpoint atomically to each path, serializing and writing it only once.

    The first path is written through a temporary file and a rename. The others become hard
    links to it, each placed by a rename too, so a fine-tuning checkpoint of some 300 MB is
    written once. Where hard links are unsupported the bytes are written again.
    """
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    first = Path(paths[0])
    write_atomic(first, buffer.getvalue())
    for path in paths[1:]:
        path = Path(path)
        link_name = path.with_name(f".{path.name}.link")
        link_name.unlink(missing_ok=True)
        try:
            os.link(first, link_name)
            os.replace(link_name, path)
        except OSError:
            link_name.unlink(missing_ok=True)
            write_atomic(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found; run part1.train with "
                                f"--output-dir {path.parent} first")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} has checkpoint format {checkpoint.get('format')!r}, expected "
                         f"{CHECKPOINT_FORMAT}; retrain with this version of part1.train")
    return checkpoint


def model_state(model: nn.Module, mode: str) -> dict[str, torch.Tensor]:
    """Return what a checkpoint stores: the head only for feature extraction, else everything."""
    state = models.head_state_dict(model) if mode == "feature_extraction" else model.state_dict()
    return {name: tensor.detach().cpu() for name, tensor in state.items()}


def model_from_checkpoint(checkpoint: dict[str, Any]) -> nn.Module:
    """Rebuild the model and load the checkpoint's weights into it (on the CPU)."""
    settings = checkpoint["settings"]
    model = models.build_model(checkpoint["model"], len(checkpoint["class_names"]),
                               pretrained=not settings["no_pretrained"],
                               image_size=settings["image_size"], init_seed=settings["seed"])
    if checkpoint["mode"] == "feature_extraction":
        expected = checkpoint["backbone_fingerprint"]
        found = models.backbone_fingerprint(model)
        if abs(found - expected) > FINGERPRINT_RTOL * max(1.0, abs(expected)):
            raise ValueError(f"the rebuilt backbone {checkpoint['weights']} differs from the one "
                             f"the head was trained on (fingerprint {found:.6g}, expected "
                             f"{expected:.6g}); the pretrained weights or timm version changed, "
                             "so retrain the head")
        missing, unexpected = model.load_state_dict(checkpoint["state_dict"], strict=False)
        assert not unexpected, unexpected
        assert all(models.is_head_parameter(model, name) is False for name in missing)
    else:
        model.load_state_dict(checkpoint["state_dict"])
    return model
