"""RocLM: a decoder-only transformer with Qwen3's architecture, written from scratch in PyTorch.

The file reads from the smallest piece to the largest: config, RMSNorm, rotary embedding, MLP,
attention, decoder layer, model, causal-LM head with loading, saving and KV-cache generation.
Parameter names equal the Hugging Face Qwen3 names, so a Qwen3 checkpoint (for example
Qwen/Qwen3-0.6B) loads with strict=True. Dependencies: torch and safetensors only.

Shape legend: B batch, T new tokens in this call, S keys seen (cache plus new), C hidden size,
H query heads, K key/value heads, D head_dim, V vocabulary size.

Run `python part2/roclm_model.py` for a short self-test.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)

HF_CONFIG_NAME = "config.json"
HF_WEIGHTS_NAME = "model.safetensors"
HF_INDEX_NAME = "model.safetensors.index.json"
COURSE_CONFIG_NAME = "model_config.json"
COURSE_WEIGHTS_NAME = "custom_model_state_dict.pth"
ATTENTION_IMPLEMENTATIONS = ("sdpa", "explicit")
# How many offending names an error message lists before it stops.
MAX_NAMES_IN_ERROR = 8


# Configuration


_REQUIRED_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                  "num_attention_heads", "num_key_value_heads")
# NOTE: the course's model_config.json is assumed to use the Hugging Face names or these shorter
# names. Unknown keys are ignored, so a third naming scheme fails with "missing required key".
_KEY_ALIASES = {
    "vocab_size": ("vocab_size",),
    "hidden_size": ("hidden_size", "emb_dim", "d_model"),
    "intermediate_size": ("intermediate_size", "hidden_dim", "ffn_dim"),
    "num_hidden_layers": ("num_hidden_layers", "n_layers", "num_layers"),
    "num_attention_heads": ("num_attention_heads", "n_heads", "num_heads"),
    "num_key_value_heads": ("num_key_value_heads", "n_kv_groups", "n_kv_heads", "num_kv_heads"),
    "head_dim": ("head_dim",),
    "rope_theta": ("rope_theta", "rope_base"),
    "rms_norm_eps": ("rms_norm_eps", "norm_eps"),
    "tie_word_embeddings": ("tie_word_embeddings", "tie_embeddings"),
    "max_position_embeddings": ("max_position_embeddings", "context_length"),
    "bos_token_id": ("bos_token_id",),
    "eos_token_id": ("eos_token_id",),
    "torch_dtype": ("torch_dtype", "dtype"),
}


@dataclass
class RocLMConfig:
    """Hyper-parameters of a Qwen3-style decoder, with the Hugging Face field names.

    head_dim defaults to hidden_size // num_attention_heads, but Qwen3 sets it explicitly
    (Qwen3-0.6B: hidden 1024, 16 heads, head_dim 128), so always read it from the config.
    """

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int | None = None
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = True
    max_position_embeddings: int = 40_960
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    torch_dtype: str | None = None

    def __post_init__(self) -> None:
        if self.head_dim is None:
            self.head_dim = self.hidden_size // self.num_attention_heads
        for name in _REQUIRED_KEYS + ("head_dim",):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"config value {name}={value!r} is invalid; it must be a positive "
                                 "integer")
        if self.num_attention_heads % self.num_key_value_heads != 0:
            raise ValueError(
                f"num_attention_heads={self.num_attention_heads} is not divisible by "
                f"num_key_value_heads={self.num_key_value_heads}; grouped-query attention needs "
                "every key/value head to serve the same number of query heads")
        if self.head_dim % 2 != 0:
            raise ValueError(f"head_dim={self.head_dim} is odd; rotary embeddings rotate pairs of "
                             "dimensions, so head_dim must be even")

    @property
    def num_key_value_groups(self) -> int:
        """Number of query heads that share one key/value head."""
        return self.num_attention_heads // self.num_key_value_heads

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RocLMConfig":
        """Build a config from a Qwen3 config.json or the course's model_config.json dict.

        Unknown keys are ignored; missing required keys raise a ValueError naming them.
        """
        _check_supported_features(data)
        values: dict[str, Any] = {}
        for field_name, aliases in _KEY_ALIASES.items():
            for alias in aliases:
                if alias in data and data[alias] is not None:
                    values[field_name] = data[alias]
                    break
        # transformers 5 writes rope_theta inside rope_parameters instead of at the top level.
        rope_parameters = data.get("rope_parameters") or data.get("rope_scaling") or {}
        if "rope_theta" not in values and "rope_theta" in rope_parameters:
            values["rope_theta"] = rope_parameters["rope_theta"]
        missing = [name for name in _REQUIRED_KEYS if name not in values]
        if missing:
            raise ValueError(f"model config is missing required key(s) {', '.join(missing)}; "
                             "expected a Qwen3 config.json with these fields")
        values["rope_theta"] = float(values.get("rope_theta", cls.rope_theta))
        values["rms_norm_eps"] = float(values.get("rms_norm_eps", cls.rms_norm_eps))
        if "torch_dtype" in values:
            values["torch_dtype"] = str(values["torch_dtype"]).replace("torch.", "")
        return cls(**values)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "RocLMConfig":
        """Read a config file (config.json or model_config.json)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"model config {path} not found")
        with open(path, encoding="utf-8") as handle:
            return cls.from_dict(json.load(handle))

    def to_dict(self) -> dict[str, Any]:
        """Return a dict that transformers' Qwen3Config accepts as config.json."""
        data = dataclasses.asdict(self)
        data.update({
            "architectures": ["Qwen3ForCausalLM"],
            "model_type": "qwen3",
            "hidden_act": "silu",
            "attention_bias": False,
            "attention_dropout": 0.0,
            "use_sliding_window": False,
            "sliding_window": None,
            "rope_scaling": None,
            "rope_parameters": {"rope_type": "default", "rope_theta": self.rope_theta},
        })
        if data["torch_dtype"] is None:
            data.pop("torch_dtype")
        return data


def _check_supported_features(data: dict[str, Any]) -> None:
    """Reject configs that ask for features RocLM does not implement, instead of running wrongly."""
    activation = data.get("hidden_act", "silu")
    if activation != "silu":
        raise ValueError(f"hidden_act={activation!r} is not supported; RocLM implements SwiGLU "
                         "with silu only")
    if data.get("attention_bias"):
        raise ValueError("attention_bias=true is not supported; Qwen3 projections have no bias")
    rope = data.get("rope_parameters") or data.get("rope_scaling") or {}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type != "default":
        raise ValueError(f"rope_type={rope_type!r} is not supported; RocLM implements the default "
                         "rotary embedding only")
    if data.get("use_sliding_window"):
        raise ValueError("use_sliding_window=true is not supported; RocLM uses full attention")


# Building blocks


class RocLMRMSNorm(nn.Module):
    """Root-mean-square norm: x / sqrt(mean(x^2) + eps) * weight, computed in float32."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        input_dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        # Cast back before scaling, as Qwen3 does, so bf16 results match the reference bit for bit.
        return self.weight * x.to(input_dtype)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


class RocLMRotaryEmbedding(nn.Module):
    """Rotary position embedding (RoPE) with frequencies theta_i = rope_theta^(-2i/D).

    Layout: Qwen checkpoints rotate dimension i together with dimension i + D/2 (the "half-split"
    layout), while the RoFormer paper rotates adjacent pairs (2i, 2i+1). Both apply the same
    rotation by angle position * theta_i; they differ only by a fixed permutation of the D
    dimensions. Because q and k are permuted the same way, q.k is unchanged, so the two layouts
    give identical attention. The weights of q_proj and k_proj were trained for the half-split
    layout, so that is the one used here.

    The angles are computed in float32 even when the model runs in bf16, because bf16 has 8
    mantissa bits and cannot represent positions above 256 exactly. inv_freq stays float32 after
    model.to(torch.bfloat16) because _apply recomputes it.
    """

    def __init__(self, head_dim: int, rope_theta: float) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.rope_theta = rope_theta
        self.register_buffer("inv_freq", self._compute_inv_freq(None), persistent=False)

    def _compute_inv_freq(self, device: torch.device | None) -> torch.Tensor:
        exponents = torch.arange(0, self.head_dim, 2, dtype=torch.float32, device=device)
        return 1.0 / (self.rope_theta ** (exponents / self.head_dim))  # (D/2,)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        # .to(dtype), .half(), to_empty() and friends would turn inv_freq into bf16 or garbage.
        if self.inv_freq.device.type != "meta":
            self.inv_freq = self._compute_inv_freq(self.inv_freq.device)
        return self

    def forward(self, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return float32 cos and sin of shape (B, T, D) for integer positions of shape (B, T)."""
        angles = position_ids.float()[..., None] * self.inv_freq  # (B, T, D/2)
        angles = torch.cat((angles, angles), dim=-1)  # (B, T, D), half-split layout
        return angles.cos(), angles.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """Map (x1, x2) to (-x2, x1), where x1 and x2 are the two halves of the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_emb(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor,
                     sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate q (B, H, T, D) and k (B, K, T, D) by the angles behind cos and sin (B, T, D).

    For each pair (x_i, x_{i+D/2}) this computes the 2-D rotation
    (x_i cos a - x_{i+D/2} sin a, x_{i+D/2} cos a + x_i sin a) with a = position * theta_i.
    """
    cos = cos.unsqueeze(1).to(q.dtype)  # (B, 1, T, D), broadcast over heads
    sin = sin.unsqueeze(1).to(q.dtype)
    q_rotated = q * cos + rotate_half(q) * sin
    k_rotated = k * cos + rotate_half(k) * sin
    return q_rotated, k_rotated


class FusedProjections:
    """One or several bias-free nn.Linear layers on the same input, run as one matrix product.

    fuse() concatenates the weights into one tensor and turns each layer's weight into a view of
    it, so no memory is added and the parameter names (q_proj.weight, ...) stay those of the
    checkpoint. One product instead of two or three saves per-call overhead when decoding one
    token at a time. On the CPU in float32 the fused tensor is stored transposed, (in, out),
    because x @ W with that layout decoded one token faster than F.linear. The parameters are
    then non-contiguous views. In bf16 the weight stays (out, in), the layout that PyTorch's
    fast single-row bf16 kernel reads (see _onednn_disabled).
    NOTE: that layout choice was measured on one AMD EPYC CPU with torch 2.14.1 only.

    pack() goes further on the CPU: it reorders the fused weight into oneDNN's blocked layout
    and, with release_dense, moves the parameters to the meta device so that the blocked tensor
    is the only copy. unpack() restores the dense views with the same values. See
    RocLMForCausalLM.pack_weights.

    The fused product runs only without autograd (gradients must reach the separate parameters)
    and only while every weight is still the view made by fuse(). After
    load_state_dict(assign=True) or a conversion that was not re-fused it falls back to the
    separate layers, so the result is always current.

    A plain object, not an nn.Module, so that the layers keep their place in the state dict.
    """

    def __init__(self, projections: list[nn.Linear]) -> None:
        self.projections = projections
        self.sizes = [projection.out_features for projection in projections]
        self.weight: torch.Tensor | None = None  # (sum of out_features, in_features)
        self.transposed = False
        self.pointers: tuple[int, ...] = ()
        self.packed: torch.Tensor | None = None  # oneDNN blocked layout of self.weight
        self.released = False

    def fuse(self, weight: torch.Tensor | None = None) -> None:
        """Make the layers views of one (sum of out_features, in_features) tensor.

        With weight None the layers' current weights are concatenated. unpack() passes the
        unpacked weight.
        """
        if weight is None:
            with torch.no_grad():
                weight = torch.cat([projection.weight for projection in self.projections])
        transpose = weight.dtype == torch.float32 and weight.device.type == "cpu"
        if transpose:
            weight = weight.t().contiguous().t()  # same values, column-major storage
        offset = 0
        for projection in self.projections:
            rows = projection.out_features
            projection.weight = nn.Parameter(weight[offset:offset + rows],
                                             requires_grad=projection.weight.requires_grad)
            offset += rows
        self.weight = weight
        self.transposed = transpose
        self.pointers = self._current_pointers()

    def pack(self, release_dense: bool) -> None:
        """Reorder the fused weight into oneDNN's blocked layout.

        With release_dense the dense parameters move to the meta device, freeing their memory.
        """
        if not self.is_current():
            self.fuse()  # the layers' weights were replaced since fuse(), so fuse their values
        with torch.no_grad():
            self.packed = torch.ops.mkldnn._reorder_linear_weight(self.weight.contiguous(), None)
        if release_dense:
            for projection in self.projections:
                projection.weight = nn.Parameter(
                    torch.empty_like(projection.weight, device="meta"),
                    requires_grad=projection.weight.requires_grad)
            self.weight = None
            self.released = True

    def unpack(self) -> None:
        """Drop the blocked copy, and rebuild the dense views from it if pack() freed them."""
        if self.packed is None:
            return
        if self.released:
            with torch.no_grad():
                dense = self.packed.to_dense()  # (sum of out_features, in_features), exact values
            self.fuse(dense)
            self.released = False
        self.packed = None

    def _current_pointers(self) -> tuple[int, ...]:
        return tuple(projection.weight.data_ptr() for projection in self.projections)

    def is_current(self) -> bool:
        """Return True when fuse() ran and every weight is still the view it made."""
        return self.weight is not None and self._current_pointers() == self.pointers

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.packed is not None:
            if torch.is_grad_enabled():
                raise RuntimeError(
                    "the RocLM weights are packed for CPU inference, so autograd cannot run "
                    "through them; run the model under torch.no_grad() or call "
                    "model.unpack_weights() first")
            rows = x.reshape(-1, x.shape[-1])  # (B*T, in)
            y = torch.ops.mkldnn._linear_pointwise(rows, self.packed, None, "none", [], "")
            return y.view(*x.shape[:-1], y.shape[-1]).split(self.sizes, dim=-1)
        if not torch.is_grad_enabled() and self.is_current():
            if self.transposed:
                y = torch.matmul(x, self.weight.t())  # contiguous (in, out) operand
            elif x.numel() == x.shape[-1] and x.dtype == torch.bfloat16 and x.device.type == "cpu":
                with _onednn_disabled():
                    y = F.linear(x, self.weight)
            else:
                y = F.linear(x, self.weight)
            return y.split(self.sizes, dim=-1)
        return tuple(projection(x) for projection in self.projections)


def packing_unavailable_reason(device: torch.device | str, dtype: torch.dtype) -> str | None:
    """Return why oneDNN weight packing cannot run for this device and dtype, or None if it can.

    The operators are private to PyTorch, so besides the build flags a tiny product is tried. A
    CPU or PyTorch build without them then keeps the dense weights instead of failing later.
    """
    if torch.device(device).type != "cpu":
        return f"packing is for the CPU, and the model is on {device}"
    if dtype not in (torch.float32, torch.bfloat16):
        return f"packing supports float32 and bfloat16, not {str(dtype).replace('torch.', '')}"
    if not torch.backends.mkldnn.is_available():
        return "this PyTorch build has no oneDNN (mkldnn)"
    try:
        with torch.no_grad():
            weight = torch.ones(16, 16, dtype=dtype)
            packed = torch.ops.mkldnn._reorder_linear_weight(weight, None)
            y = torch.ops.mkldnn._linear_pointwise(torch.ones(1, 16, dtype=dtype), packed, None,
                                                   "none", [], "")
    except (RuntimeError, AttributeError) as error:
        return f"oneDNN cannot run a packed {dtype} product on this CPU ({error})"
    if not bool((y == 16).all()):
        return "a packed oneDNN product gave a wrong result on this CPU"
    return None


@contextlib.contextmanager
def _onednn_disabled() -> Iterator[None]:
    """Make CPU matrix products inside the block use PyTorch's own kernels instead of oneDNN.

    For one bf16 row times an (out, in) weight, PyTorch's matrix-vector kernel (float32
    accumulation) read the weights about 1.6 times as fast as oneDNN's bf16 product, measured on
    an AMD EPYC CPU with AVX-512 BF16 and torch 2.14.1. With two or more rows it was slower, so
    only single rows use this block.
    NOTE: the oneDNN switch is process-wide, so a bf16 product that another thread runs at the
    same moment also skips oneDNN. Its result stays correct, only its speed changes.
    """
    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = enabled


class RocLMMLP(nn.Module):
    """SwiGLU feed-forward block: down_proj(silu(gate_proj(x)) * up_proj(x))."""

    def __init__(self, config: RocLMConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

        self.gate_up = FusedProjections([self.gate_proj, self.up_proj])
        self.down = FusedProjections([self.down_proj])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x)
        return self.down(F.silu(gate) * up)[0]


# Attention and KV cache


class RocLMKVCache:
    """Preallocated key/value tensors for every layer, written in place during generation.

    The cache has room for max_length positions, sized for one request (prompt plus new tokens), never
    for max_position_embeddings: 40,960 positions in 28 layers would take gigabytes.
    """

    def __init__(self, config: RocLMConfig, batch_size: int, max_length: int,
                 dtype: torch.dtype, device: torch.device | str) -> None:
        shape = (config.num_hidden_layers, batch_size, config.num_key_value_heads, max_length,
                 config.head_dim)  # (L, B, K, max_length, D)
        self.key = torch.zeros(shape, dtype=dtype, device=device)
        self.value = torch.zeros(shape, dtype=dtype, device=device)
        self.max_length = max_length
        self.length = 0

    def update(self, layer_idx: int, k: torch.Tensor,
               v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k and v (B, K, T, D) after the cached positions; return all keys and values."""
        start, end = self.length, self.length + k.shape[2]
        if end > self.max_length:
            raise RuntimeError(f"KV cache overflow: {end} positions requested but the cache has "
                               f"room for {self.max_length}; allocate a larger cache")
        self.key[layer_idx, :, :, start:end] = k
        self.value[layer_idx, :, :, start:end] = v
        return self.key[layer_idx, :, :, :end], self.value[layer_idx, :, :, :end]  # (B, K, S, D)


class RocLMAttention(nn.Module):
    """Multi-head causal self-attention with grouped-query attention and q/k RMSNorm.

    Query head h reads key/value head h // (H / K). Two paths give the same result: "sdpa"
    (default, torch.nn.functional.scaled_dot_product_attention) and "explicit", which spells out
    scores, scale, mask, float32 softmax and the weighted sum.
    """

    def __init__(self, config: RocLMConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.num_kv_groups = config.num_key_value_groups
        self.head_dim = config.head_dim
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.attn_implementation = "sdpa"

        self.q_proj = nn.Linear(config.hidden_size, self.num_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, self.num_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, self.num_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, config.hidden_size, bias=False)
        # Qwen3 normalizes each head's query and key vector before RoPE.
        self.q_norm = RocLMRMSNorm(self.head_dim, config.rms_norm_eps)
        self.k_norm = RocLMRMSNorm(self.head_dim, config.rms_norm_eps)
        self.qkv = FusedProjections([self.q_proj, self.k_proj, self.v_proj])
        self.out = FusedProjections([self.o_proj])

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                attn_mask: torch.Tensor | None, is_causal: bool,
                kv_cache: RocLMKVCache | None = None) -> torch.Tensor:
        """Attend x (B, T, C); attn_mask is a bool (B or 1, 1, T, S) mask, True = may attend."""
        B, T, _ = x.shape
        q, k, v = self.qkv(x)
        q = self.q_norm(q.view(B, T, self.num_heads, self.head_dim))
        k = self.k_norm(k.view(B, T, self.num_kv_heads, self.head_dim))
        v = v.view(B, T, self.num_kv_heads, self.head_dim)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, heads, T, D)
        q, k = apply_rotary_emb(q, k, cos, sin)

        if kv_cache is not None:
            k, v = kv_cache.update(self.layer_idx, k, v)  # (B, K, S, D)

        if self.attn_implementation == "sdpa" and T == 1 and not is_causal:
            # One new token: the query heads that share a key/value head form a short query
            # sequence against that head. SDPA then need not expand k and v to every query head,
            # an expansion that cost more than the attention itself at long contexts in bf16.
            q = q.reshape(B, self.num_kv_heads, self.num_kv_groups, self.head_dim)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=self.scale)
            y = y.reshape(B, self.num_heads, 1, self.head_dim)  # (B, H, 1, D)
        elif self.attn_implementation == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal,
                                               scale=self.scale, enable_gqa=self.num_kv_groups > 1)
        else:
            y = self._explicit_attention(q, k, v, attn_mask, is_causal)
        y = y.transpose(1, 2).reshape(B, T, self.num_heads * self.head_dim)  # (B, T, H*D)
        return self.out(y)[0]

    def _explicit_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                            attn_mask: torch.Tensor | None, is_causal: bool) -> torch.Tensor:
        """Compute softmax(q k^T / sqrt(D) + mask) v step by step."""
        T, S = q.shape[2], k.shape[2]
        # grouped-query attention: query head h uses key/value head h // num_kv_groups
        k = k.repeat_interleave(self.num_kv_groups, dim=1)  # (B, H, S, D)
        v = v.repeat_interleave(self.num_kv_groups, dim=1)

        scores = (q @ k.transpose(-2, -1)) * self.scale  # (B, H, T, S)
        if is_causal:
            attn_mask = causal_mask(T, S - T, q.device)
        if attn_mask is not None:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).to(q.dtype)
        return weights @ v  # (B, H, T, D)


def causal_mask(T: int, offset: int, device: torch.device) -> torch.Tensor:
    """Return a bool (1, 1, T, offset + T) mask in which query i, at position offset + i, may
    attend to keys 0..offset + i, so new queries attend to every cached key."""
    query_positions = torch.arange(offset, offset + T, device=device)[:, None]
    key_positions = torch.arange(offset + T, device=device)[None, :]
    return (key_positions <= query_positions)[None, None]


class RocLMDecoderLayer(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: RocLMConfig, layer_idx: int) -> None:
        super().__init__()
        self.input_layernorm = RocLMRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = RocLMAttention(config, layer_idx)
        self.post_attention_layernorm = RocLMRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = RocLMMLP(config)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                attn_mask: torch.Tensor | None, is_causal: bool,
                kv_cache: RocLMKVCache | None = None) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, attn_mask, is_causal, kv_cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class RocLMModel(nn.Module):
    """Token embedding, the stack of decoder layers and the final norm; returns hidden states."""

    def __init__(self, config: RocLMConfig) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(RocLMDecoderLayer(config, index)
                                    for index in range(config.num_hidden_layers))
        self.norm = RocLMRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rotary_emb = RocLMRotaryEmbedding(config.head_dim, config.rope_theta)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None,
                kv_cache: RocLMKVCache | None = None) -> torch.Tensor:
        """Return hidden states (B, T, C).

        Args:
            attention_mask: (B, S) with 1 for real tokens and 0 for padding, covering the cached
                positions and the new ones, as in transformers.
            position_ids: (B, T); derived from attention_mask (or the cache length) when None.
        """
        B, T = input_ids.shape
        offset = kv_cache.length if kv_cache is not None else 0
        S = offset + T
        if attention_mask is not None and attention_mask.shape != (B, S):
            raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, expected "
                             f"{(B, S)} (batch, cached plus new positions)")
        if position_ids is None:
            position_ids = _default_position_ids(B, T, offset, attention_mask, input_ids.device)
        attn_mask, is_causal = _build_attention_mask(T, offset, attention_mask, input_ids.device)

        x = self.embed_tokens(input_ids)  # (B, T, C)
        # angles in float32; cast once per call, as the reference does, instead of in every layer
        cos, sin = self.rotary_emb(position_ids)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        for layer in self.layers:
            x = layer(x, cos, sin, attn_mask, is_causal, kv_cache)
        if kv_cache is not None:
            kv_cache.length = S
        return self.norm(x)


def _default_position_ids(B: int, T: int, offset: int, attention_mask: torch.Tensor | None,
                          device: torch.device) -> torch.Tensor:
    if attention_mask is None:
        return torch.arange(offset, offset + T, device=device).expand(B, T)
    # left padding: a row's first real token gets position 0, as if the row had no padding
    positions = attention_mask.long().cumsum(-1) - 1
    return positions.clamp(min=0)[:, -T:]


def _build_attention_mask(T: int, offset: int, attention_mask: torch.Tensor | None,
                          device: torch.device) -> tuple[torch.Tensor | None, bool]:
    """Return (bool mask or None, is_causal) for the attention layers.

    Fast paths: without padding or cache, SDPA's built-in causal mask is used. A single new token
    without padding needs no mask at all, because it may attend to every cached key.
    """
    if attention_mask is None:
        if T == 1:
            return None, False
        if offset == 0:
            return None, True
        return causal_mask(T, offset, device), False
    key_is_real = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, S)
    mask = causal_mask(T, offset, device) & key_is_real  # (B, 1, T, S)
    # A padding query would see no key at all, and softmax over nothing is NaN. Letting it see
    # itself keeps the numbers finite; its output is never used and no real query attends to it.
    query_positions = torch.arange(offset, offset + T, device=device)[:, None]
    key_positions = torch.arange(offset + T, device=device)[None, :]
    return mask | (key_positions == query_positions)[None, None], False


# Causal language model: loading, saving, generation


class RocLMForCausalLM(nn.Module):
    """RocLMModel plus the output projection to vocabulary logits (lm_head)."""

    def __init__(self, config: RocLMConfig) -> None:
        super().__init__()
        self.config = config
        self._fused = False
        self._packed = False
        self.model = RocLMModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.head = FusedProjections([self.lm_head])
        self.apply(_init_weights)
        self.tie_weights()
        self.register_state_dict_pre_hook(_reject_while_packed)
        self.register_load_state_dict_pre_hook(_reject_while_packed)

    def tie_weights(self) -> None:
        """Share one tensor between the input embedding and lm_head when the config ties them."""
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def fuse_projections(self) -> None:
        """Run q/k/v and gate/up as one matrix product each in inference; see FusedProjections.

        The fused weights get new Parameter objects (same names and values), and .to() fuses
        again, so create optimizers after loading and moving the model.
        """
        for fused in self._fused_layers():
            fused.fuse()
        self.head.fuse()
        if self.config.tie_word_embeddings:
            # fuse() gave lm_head a new Parameter; the embedding must share it again
            self.model.embed_tokens.weight = self.lm_head.weight
        self._fused = True

    def _fused_layers(self) -> list[FusedProjections]:
        return [fused for layer in self.model.layers
                for fused in (layer.self_attn.qkv, layer.self_attn.out, layer.mlp.gate_up,
                              layer.mlp.down)]

    @property
    def weights_packed(self) -> bool:
        return self._packed

    def pack_weights(self) -> "RocLMForCausalLM":
        """Store every projection and lm_head in oneDNN's blocked layout for CPU inference.

        A decode step reads every weight once, so its speed is bounded by how fast the matrix
        products read memory. On the AMD EPYC CPU of docs/BENCHMARKS.md the blocked layout read
        the weights 1.5 to 1.7 times as fast as MKL's dense float32 product. The dense
        parameters move to the meta device, so memory does not grow, except for a tied lm_head:
        the embedding lookup needs the dense table, so the head gets a blocked copy
        (vocab_size x hidden_size elements more).

        While packed the model runs only without autograd, and state_dict(), load_state_dict(),
        .to() and save_pretrained() raise until unpack_weights(). The private operators used,
        torch.ops.mkldnn._reorder_linear_weight and _linear_pointwise, are those of inductor's
        CPU weight prepacking (torch/_inductor/fx_passes/mkldnn_fusion.py), and
        packing_unavailable_reason() tries them first.
        """
        if self._packed:
            return self
        reason = packing_unavailable_reason(self.device, self.dtype)
        if reason is not None:
            raise RuntimeError(f"cannot pack the RocLM weights: {reason}; keep the dense "
                               "weights (skip pack_weights(), or pass --no-pack-weights to "
                               "part2/generate.py)")
        if not self._fused:
            self.fuse_projections()
        for fused in self._fused_layers():
            fused.pack(release_dense=True)
        self.head.pack(release_dense=not self.config.tie_word_embeddings)
        self._packed = True
        return self

    def unpack_weights(self) -> "RocLMForCausalLM":
        """Undo pack_weights(): the dense parameters come back with identical values."""
        for fused in self._fused_layers():
            fused.unpack()
        self.head.unpack()
        if self.config.tie_word_embeddings:
            self.model.embed_tokens.weight = self.lm_head.weight
        self._packed = False
        return self

    def _apply(self, fn, recurse=True):
        if getattr(self, "_packed", False):
            raise RuntimeError("the RocLM weights are packed for CPU inference; call "
                               "model.unpack_weights() before moving or converting the model")
        super()._apply(fn, recurse)
        # .to() converts each weight separately, which breaks the views; fuse again.
        if getattr(self, "_fused", False) and not torch.is_inference_mode_enabled():
            self.fuse_projections()
        return self

    # The embedding stays dense when the weights are packed, so device and dtype come from it.
    @property
    def device(self) -> torch.device:
        return self.model.embed_tokens.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.embed_tokens.weight.dtype

    def set_attn_implementation(self, name: str) -> None:
        """Select the attention path of every layer: 'sdpa' (default) or 'explicit'."""
        if name not in ATTENTION_IMPLEMENTATIONS:
            raise ValueError(f"attention implementation {name!r} is invalid; use one of "
                             f"{', '.join(ATTENTION_IMPLEMENTATIONS)}")
        for layer in self.model.layers:
            layer.self_attn.attn_implementation = name

    def allocate_kv_cache(self, batch_size: int, max_length: int) -> RocLMKVCache:
        """Return an empty KV cache for batch_size sequences of at most max_length positions."""
        return RocLMKVCache(self.config, batch_size, max_length, self.dtype, self.device)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, kv_cache: RocLMKVCache | None = None,
                logits_to_keep: int = 0) -> torch.Tensor:
        """Return logits (B, T, V), or (B, logits_to_keep, V) for the last positions only.

        With a kv_cache, input_ids holds only the new tokens; the cache grows by T positions.
        """
        hidden = self.model(input_ids, attention_mask, position_ids, kv_cache)  # (B, T, C)
        if logits_to_keep > 0:
            hidden = hidden[:, -logits_to_keep:]
        return self.head(hidden)[0]

    # -- loading and saving ---------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, dtype: torch.dtype | str | None = None,
                        device: torch.device | str | None = None) -> "RocLMForCausalLM":
        """Load a checkpoint directory in either supported layout.

        Layouts: Hugging Face (config.json + model.safetensors, or shards listed in
        model.safetensors.index.json) and the course's (model_config.json +
        custom_model_state_dict.pth). dtype None keeps the dtype stored in the checkpoint;
        device None means CPU. The model is returned in eval mode.
        """
        directory = Path(path)
        if not directory.is_dir():
            raise FileNotFoundError(f"model directory {directory} not found; download the "
                                    "weights first (see part2/README.md)")
        if (directory / HF_CONFIG_NAME).is_file():
            config = RocLMConfig.from_json(directory / HF_CONFIG_NAME)
            state_dict = _load_safetensors_dir(directory)
        elif (directory / COURSE_CONFIG_NAME).is_file():
            config = RocLMConfig.from_json(directory / COURSE_CONFIG_NAME)
            state_dict = _load_course_state_dict(directory / COURSE_WEIGHTS_NAME)
        else:
            raise FileNotFoundError(
                f"{directory} has neither {HF_CONFIG_NAME} (Hugging Face layout) nor "
                f"{COURSE_CONFIG_NAME} (course layout with {COURSE_WEIGHTS_NAME})")

        return cls.from_state_dict(config, state_dict, dtype, device, source=str(directory))

    @classmethod
    def from_state_dict(cls, config: RocLMConfig, state_dict: dict[str, torch.Tensor],
                        dtype: torch.dtype | str | None = None,
                        device: torch.device | str | None = None,
                        source: str = "state dict") -> "RocLMForCausalLM":
        """Build a model in eval mode from a Qwen3-named state dict, with fused projections."""
        dtype = _resolve_dtype(dtype, state_dict)
        device = torch.device(device if device is not None else "cpu")
        # Build on the meta device so no time goes into random initialization of weights that
        # the checkpoint overwrites anyway.
        with torch.device("meta"):
            model = cls(config)
        model.to(dtype=dtype)
        model.to_empty(device=device)
        model.tie_weights()
        model.load_checkpoint_state_dict(state_dict, source=source)
        model.fuse_projections()
        return model.eval()

    def load_checkpoint_state_dict(self, state_dict: dict[str, torch.Tensor],
                                   source: str = "state dict") -> None:
        """Copy a Qwen3-named state dict into the model, with readable errors on any mismatch.

        A tied model accepts a state dict without lm_head.weight and keeps the head tied.
        """
        state_dict = {name: tensor for name, tensor in state_dict.items()
                      if not name.endswith("rotary_emb.inv_freq")}
        if self.config.tie_word_embeddings:
            state_dict.pop("lm_head.weight", None)
        _check_state_dict(self, state_dict, source)
        if self.config.tie_word_embeddings:
            state_dict["lm_head.weight"] = state_dict["model.embed_tokens.weight"]
        self.load_state_dict(state_dict, strict=True)
        self.tie_weights()

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write config.json and model.safetensors that transformers' Qwen3ForCausalLM loads."""
        from safetensors.torch import save_file

        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        # Fused projections are (possibly transposed) views of one tensor, but safetensors
        # needs contiguous tensors that share no memory.
        state_dict = {name: tensor.detach().to("cpu").clone(memory_format=torch.contiguous_format)
                      for name, tensor in self.state_dict().items()}
        if self.config.tie_word_embeddings:
            # safetensors refuses shared tensors; loaders re-tie from the config flag
            state_dict.pop("lm_head.weight")
        config = self.config.to_dict()
        config["torch_dtype"] = str(self.dtype).replace("torch.", "")

        temporary = directory / f".{HF_WEIGHTS_NAME}.tmp"
        save_file(state_dict, str(temporary), metadata={"format": "pt"})
        os.replace(temporary, directory / HF_WEIGHTS_NAME)
        temporary = directory / f".{HF_CONFIG_NAME}.tmp"
        temporary.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, directory / HF_CONFIG_NAME)

    # -- generation -----------------------------------------------------------------------------

    @torch.inference_mode()
    def generate(self, input_ids: torch.Tensor, max_new_tokens: int, do_sample: bool = False,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 repetition_penalty: float = 1.0, eos_token_id: int | Iterable[int] | None = None,
                 attention_mask: torch.Tensor | None = None, streamer: Any = None) -> torch.Tensor:
        """Generate up to max_new_tokens tokens after input_ids (B, T) with a KV cache.

        Returns a LongTensor (B, T + new) that includes the prompt. Decoding is greedy unless
        do_sample is true and temperature > 0. Sampling applies, in order, the repetition penalty
        (positive logits of already-seen tokens are divided by it, negative ones multiplied),
        temperature, top-k (0 = off) and top-p (1.0 = off; the token that crosses top_p stays in
        the nucleus). A sequence stops at any id in eos_token_id. Finished rows of a batch are
        filled with the first eos id until every row is done. For batches of different lengths,
        pad on the left and pass attention_mask (1 = real token); each row then gets the tokens it
        would get alone.

        streamer: an object with put(ids) and end(), as transformers' TextStreamer. It first
        receives the prompt ids (B, T), then each new token (B,). A callable works too and
        receives each new token (B,). Both get CPU tensors.
        """
        eos_ids = _validate_generate_args(self.config, input_ids, max_new_tokens, temperature,
                                          top_k, top_p, repetition_penalty, eos_token_id,
                                          attention_mask)
        B, T = input_ids.shape
        device = self.device
        input_ids = input_ids.to(device)
        greedy = not do_sample or temperature <= 0
        output = torch.empty(B, T + max_new_tokens, dtype=torch.long, device=device)
        output[:, :T] = input_ids
        if max_new_tokens == 0:
            return output

        padded = attention_mask is not None and not bool(attention_mask.all())
        full_mask = None
        if padded:
            full_mask = torch.ones(B, T + max_new_tokens, dtype=torch.long, device=device)
            full_mask[:, :T] = attention_mask.to(device)
            next_position = full_mask[:, :T].sum(-1, keepdim=True)  # (B, 1)
        else:
            next_position = torch.full((B, 1), T, dtype=torch.long, device=device)
        seen = None
        if repetition_penalty != 1.0:
            prompt_mask = full_mask[:, :T] if padded else torch.ones_like(input_ids)
            counts = torch.zeros(B, self.config.vocab_size, dtype=torch.long, device=device)
            seen = counts.scatter_add_(1, input_ids, prompt_mask) > 0  # (B, V), pads excluded
        eos_tensor = torch.tensor(eos_ids, dtype=torch.long, device=device) if eos_ids else None
        finished = torch.zeros(B, dtype=torch.bool, device=device)
        rows = torch.arange(B, device=device)
        emit = _make_emitter(streamer, input_ids)

        # one prefill over the prompt, then one token per step through the cache
        kv_cache = self.allocate_kv_cache(B, T + max_new_tokens)
        logits = self(input_ids, attention_mask=full_mask[:, :T] if padded else None,
                      kv_cache=kv_cache, logits_to_keep=1)[:, -1]
        length = T + max_new_tokens
        for step in range(max_new_tokens):
            next_token = _select_next_token(logits.float(), greedy, temperature, top_k, top_p,
                                            repetition_penalty, seen)
            if eos_tensor is not None:
                next_token = torch.where(finished, eos_tensor[0], next_token)
            output[:, T + step] = next_token
            emit(next_token)
            if seen is not None:
                seen[rows, next_token] = True
            if eos_tensor is not None:
                finished |= torch.isin(next_token, eos_tensor)
                if bool(finished.all()):
                    length = T + step + 1
                    break
            if step == max_new_tokens - 1:
                break
            logits = self(next_token[:, None],
                          attention_mask=full_mask[:, :T + step + 1] if padded else None,
                          position_ids=next_position + step, kv_cache=kv_cache,
                          logits_to_keep=1)[:, -1]
        if streamer is not None and hasattr(streamer, "end"):
            streamer.end()
        return output[:, :length]


def _reject_while_packed(module: nn.Module, *args: Any) -> None:
    if module.weights_packed:
        raise RuntimeError("the RocLM weights are packed for CPU inference, so the dense "
                           "parameters are not in memory; call model.unpack_weights() before "
                           "state_dict(), load_state_dict() or save_pretrained()")


def _init_weights(module: nn.Module) -> None:
    # Small normal weights, as Qwen3 is initialized; only random-weight models use this.
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)


def _make_emitter(streamer: Any, prompt: torch.Tensor) -> Callable[[torch.Tensor], None]:
    if streamer is None:
        return lambda token: None
    if hasattr(streamer, "put"):
        streamer.put(prompt.cpu())
        return lambda token: streamer.put(token.cpu())
    if callable(streamer):
        return lambda token: streamer(token.cpu())
    raise TypeError(f"streamer of type {type(streamer).__name__} is invalid; pass an object with "
                    "put() and end() or a callable")


def _select_next_token(logits: torch.Tensor, greedy: bool, temperature: float, top_k: int,
                       top_p: float, repetition_penalty: float,
                       seen: torch.Tensor | None) -> torch.Tensor:
    """Pick one token per row from float32 logits (B, V)."""
    if seen is not None:
        logits = apply_repetition_penalty(logits, seen, repetition_penalty)
    if greedy:
        return logits.argmax(dim=-1)
    probs = torch.softmax(filter_logits(logits, temperature, top_k, top_p), dim=-1)
    return torch.multinomial(probs, num_samples=1).squeeze(1)


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor,
                             penalty: float) -> torch.Tensor:
    """Divide the positive logits of seen tokens by penalty and multiply the negative ones.

    Either way a penalty above 1 makes a seen token less likely. seen is a bool (B, V) mask.
    """
    penalized = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalized, logits)


def filter_logits(logits: torch.Tensor, temperature: float, top_k: int,
                  top_p: float) -> torch.Tensor:
    """Scale logits (B, V) by 1 / temperature and set tokens outside top-k and top-p to -inf.

    top_k = 0 and top_p = 1.0 disable their filter. The nucleus is the smallest set of most
    likely tokens whose probability reaches top_p, so it includes the token that crosses top_p.
    """
    logits = logits / temperature
    if top_k > 0:
        kth_largest = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    if top_p < 1.0:
        sorted_logits, sorted_ids = torch.sort(logits, dim=-1, descending=True)
        sorted_probs = torch.softmax(sorted_logits, dim=-1)
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
        drop = mass_before >= top_p
        drop[:, 0] = False
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(1, sorted_ids, sorted_logits)
    return logits


def _validate_generate_args(config: RocLMConfig, input_ids: torch.Tensor, max_new_tokens: int,
                            temperature: float, top_k: int, top_p: float,
                            repetition_penalty: float, eos_token_id: Any,
                            attention_mask: torch.Tensor | None) -> list[int]:
    """Raise ValueError for invalid generate() arguments; return the eos ids as a list."""
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        shape = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids)
        raise ValueError(f"input_ids has shape {shape}; expected a 2-D tensor (batch, tokens), "
                         "for one prompt use ids.unsqueeze(0)")
    if input_ids.dtype not in (torch.long, torch.int32, torch.int64) or input_ids.shape[1] == 0:
        raise ValueError(f"input_ids must be a non-empty integer tensor, got dtype "
                         f"{input_ids.dtype} and shape {tuple(input_ids.shape)}")
    if int(input_ids.min()) < 0 or int(input_ids.max()) >= config.vocab_size:
        raise ValueError(f"input_ids contain ids outside [0, {config.vocab_size}); check that the "
                         "tokenizer matches the model")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens={max_new_tokens!r} is invalid; use an integer >= 0")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise ValueError(f"top_k={top_k!r} is invalid; use an integer >= 0 (0 disables top-k)")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p={top_p!r} is invalid; use a value in (0, 1] (1.0 disables it)")
    if not math.isfinite(temperature):
        raise ValueError(f"temperature={temperature!r} is invalid; use a finite number "
                         "(<= 0 means greedy)")
    if not repetition_penalty > 0.0:
        raise ValueError(f"repetition_penalty={repetition_penalty!r} is invalid; use a value > 0 "
                         "(1.0 disables it)")

    if eos_token_id is None:
        eos_ids: list[int] = []
    elif isinstance(eos_token_id, int):
        eos_ids = [eos_token_id]
    else:
        eos_ids = [int(token) for token in eos_token_id]
    for token in eos_ids:
        if not 0 <= token < config.vocab_size:
            raise ValueError(f"eos_token_id {token} is outside the vocabulary [0, "
                             f"{config.vocab_size})")

    if attention_mask is not None:
        if tuple(attention_mask.shape) != tuple(input_ids.shape):
            raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)} but "
                             f"input_ids has {tuple(input_ids.shape)}; they must match")
        mask = attention_mask.long()
        if bool((mask[:, -1] == 0).any()) or bool((mask[:, 1:] < mask[:, :-1]).any()):
            raise ValueError("attention_mask is not left-padded (zeros first, then ones); pad "
                             "prompts on the left, for example tokenizer.padding_side = 'left'")
    return eos_ids


# Checkpoint files


def _load_safetensors_dir(directory: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if (directory / HF_WEIGHTS_NAME).is_file():
        return load_file(str(directory / HF_WEIGHTS_NAME))
    index_path = directory / HF_INDEX_NAME
    if not index_path.is_file():
        raise FileNotFoundError(f"{directory} has {HF_CONFIG_NAME} but neither {HF_WEIGHTS_NAME} "
                                f"nor {HF_INDEX_NAME}; the weight download is incomplete")
    with open(index_path, encoding="utf-8") as handle:
        weight_map = json.load(handle)["weight_map"]
    state_dict: dict[str, torch.Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        if not (directory / shard).is_file():
            raise FileNotFoundError(f"shard {shard} listed in {index_path} not found")
        state_dict.update(load_file(str(directory / shard)))
    return state_dict


def _load_course_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; the course layout needs {COURSE_CONFIG_NAME} "
                                f"and {COURSE_WEIGHTS_NAME} in the same directory")
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper_key in ("model_state_dict", "state_dict"):
        if wrapper_key in state_dict and isinstance(state_dict[wrapper_key], dict):
            state_dict = state_dict[wrapper_key]
    return state_dict


def _resolve_dtype(dtype: torch.dtype | str | None,
                   state_dict: dict[str, torch.Tensor]) -> torch.dtype:
    if dtype is None or dtype == "auto":
        floating = [t.dtype for t in state_dict.values() if t.is_floating_point()]
        return floating[0] if floating else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype).replace("torch.", ""), None)
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ValueError(f"dtype {dtype!r} is invalid; use float32, bfloat16 or float16")
    return resolved


def _check_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Raise a ValueError listing missing, unexpected and wrongly shaped entries, with shapes."""
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    if getattr(model, "config", None) is not None and model.config.tie_word_embeddings:
        expected.pop("lm_head.weight", None)
    missing = [name for name in expected if name not in state_dict]
    unexpected = [name for name in state_dict if name not in expected]
    mismatched = [name for name in expected if name in state_dict
                  and tuple(state_dict[name].shape) != expected[name]]
    if not (missing or unexpected or mismatched):
        return

    lines = [f"checkpoint {source} does not match the model config:"]
    for name in mismatched[:MAX_NAMES_IN_ERROR]:
        lines.append(f"  shape mismatch {name}: checkpoint {tuple(state_dict[name].shape)}, "
                     f"model {expected[name]}")
    for name in missing[:MAX_NAMES_IN_ERROR]:
        lines.append(f"  missing {name}: model expects shape {expected[name]}")
    for name in unexpected[:MAX_NAMES_IN_ERROR]:
        lines.append(f"  unexpected {name}: checkpoint shape {tuple(state_dict[name].shape)}")
    lines.append(f"  ({len(mismatched)} mismatched, {len(missing)} missing, {len(unexpected)} "
                 "unexpected in total; check that config and weights come from the same model)")
    raise ValueError("\n".join(lines))


# Self-test


def _self_test() -> bool:
    """Check a tiny random model for internal consistency; return True when all checks pass."""
    torch.manual_seed(0)
    config = RocLMConfig(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=24)
    model = RocLMForCausalLM(config).eval()
    prompt = torch.randint(0, config.vocab_size, (2, 7))
    checks: dict[str, bool] = {}

    with torch.inference_mode():
        sdpa_logits = model(prompt)
        model.set_attn_implementation("explicit")
        explicit_logits = model(prompt)
        model.set_attn_implementation("sdpa")
    checks["explicit and sdpa attention agree"] = torch.allclose(sdpa_logits, explicit_logits,
                                                                 atol=1e-5)

    generated = model.generate(prompt, max_new_tokens=8)
    with torch.inference_mode():
        full_argmax = model(generated[:, :-1]).argmax(-1)[:, prompt.shape[1] - 1:]
    checks["KV-cache greedy equals full recomputation"] = torch.equal(
        full_argmax, generated[:, prompt.shape[1]:])

    bf16_model = RocLMForCausalLM(config).to(torch.bfloat16)
    checks["tied head survives .to(bfloat16)"] = (
        bf16_model.lm_head.weight is bf16_model.model.embed_tokens.weight)
    checks["RoPE frequencies stay float32"] = (
        bf16_model.model.rotary_emb.inv_freq.dtype == torch.float32)

    for name, passed in checks.items():
        print(f"{'ok  ' if passed else 'FAIL'} {name}")
    return all(checks.values())


if __name__ == "__main__":
    raise SystemExit(0 if _self_test() else 1)
