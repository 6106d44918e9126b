"""timm backbones with a new 37-way head, and the two transfer regimes.

- feature_extraction: only the head trains. Every backbone parameter is frozen and left out of
  the optimizer, and the backbone runs in eval mode, so BatchNorm running statistics stay fixed.
- finetune: every parameter trains, the backbone at a lower learning rate than the new head.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

logger = logging.getLogger(__name__)

MODES = ("feature_extraction", "finetune")


@dataclass(frozen=True)
class ModelSpec:
    timm_name: str  # architecture name in timm
    pretrained_tag: str  # exact ImageNet-1k weights, as timm_name.tag on the Hugging Face Hub
    takes_image_size: bool  # the architecture needs the input size at construction (Swin)


# `--model` choices. resnet50.a1_in1k is timm's default ResNet-50 weights (trained with the
# "ResNet strikes back" A1 recipe); swin_tiny_patch4_window7_224.ms_in1k is Microsoft's release.
MODEL_SPECS: dict[str, ModelSpec] = {
    "resnet50": ModelSpec("resnet50", "a1_in1k", takes_image_size=False),
    "swin_t": ModelSpec("swin_tiny_patch4_window7_224", "ms_in1k", takes_image_size=True),
}
RANDOM_INIT = "random init (--no-pretrained)"


class PretrainedWeightsError(RuntimeError):
    """The pretrained weights could not be downloaded or loaded."""


def weights_id(model_name: str, pretrained: bool) -> str:
    """Return the exact weights id recorded in checkpoints and metrics."""
    spec = MODEL_SPECS[model_name]
    return f"timm/{spec.timm_name}.{spec.pretrained_tag}" if pretrained else RANDOM_INIT


def build_model(model_name: str, num_classes: int, pretrained: bool, image_size: int,
                init_seed: int = 0) -> nn.Module:
    """Create the timm model with a new num_classes head.

    The random initialisation (of the head, and of the backbone with pretrained=False) is drawn
    under init_seed, so evaluation can rebuild a random backbone that a feature-extraction
    checkpoint does not store.
    """
    import timm

    if model_name not in MODEL_SPECS:
        raise ValueError(f"--model {model_name!r} is invalid; use one of {', '.join(MODEL_SPECS)}")
    spec = MODEL_SPECS[model_name]
    kwargs = {"img_size": image_size} if spec.takes_image_size else {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        try:
            model = timm.create_model(f"{spec.timm_name}.{spec.pretrained_tag}",
                                      pretrained=pretrained, num_classes=num_classes, **kwargs)
        except (OSError, RuntimeError, ValueError) as error:
            if not pretrained:
                raise
            raise PretrainedWeightsError(
                f"loading pretrained weights {weights_id(model_name, True)} failed ({error}). "
                "They download from the Hugging Face Hub on first use: connect to the internet "
                "once, or set HF_HOME to a cache that holds them, or rerun with --no-pretrained "
                "for random weights") from error
    return model


def head_prefix(model: nn.Module) -> str:
    """Return the state-dict prefix of the classifier, e.g. 'fc' (ResNet) or 'head.fc' (Swin)."""
    return model.pretrained_cfg["classifier"]


def is_head_parameter(model: nn.Module, name: str) -> bool:
    prefix = head_prefix(model)
    return name == prefix or name.startswith(prefix + ".")


def head_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor for name, tensor in model.state_dict().items()
            if is_head_parameter(model, name)}


def backbone_fingerprint(model: nn.Module) -> float:
    """Sum every backbone parameter and buffer in float64, to check a rebuilt backbone."""
    total = 0.0
    for name, tensor in model.state_dict().items():
        if not is_head_parameter(model, name) and tensor.is_floating_point():
            total += float(tensor.double().sum())
    return total


def configure_regime(model: nn.Module, mode: str, lr: float, backbone_lr: float,
                     weight_decay: float) -> list[dict]:
    """Set requires_grad for the regime and return AdamW parameter groups.

    Biases and normalization weights (1-D tensors) get no weight decay, as in timm's and
    torchvision's recipes.
    """
    if mode not in MODES:
        raise ValueError(f"--mode {mode!r} is invalid; use one of {', '.join(MODES)}")
    groups: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        is_head = is_head_parameter(model, name)
        parameter.requires_grad_(is_head or mode == "finetune")
        if not parameter.requires_grad:
            continue
        key = ("head" if is_head else "backbone", parameter.ndim > 1)
        groups.setdefault(key, []).append(parameter)

    param_groups = []
    for (part, decays), parameters in sorted(groups.items()):
        param_groups.append({"params": parameters, "lr": lr if part == "head" else backbone_lr,
                             "weight_decay": weight_decay if decays else 0.0, "name": part})
    return param_groups


def set_train_mode(model: nn.Module, mode: str) -> None:
    """Put the model in training mode for the regime; a frozen backbone stays in eval mode."""
    if mode == "finetune":
        model.train()
        return
    model.eval()
    model.get_classifier().train()


def pooled_features(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Return the pooled backbone features that the classifier reads.  # (B, num_features)"""
    return model.forward_head(model.forward_features(images), pre_logits=True)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """Return (trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
