"""Shared helpers for the RocLM tests: small random transformers Qwen3 models as references."""
from __future__ import annotations

import torch

# The head layouts come from the parity check, so the tests and part2.verify_parity cover the
# same hard cases: GQA ratios 1, 2 and 4, a head_dim different from hidden_size /
# num_attention_heads, and tied and untied embeddings.
from part2.verify_parity import SMALL_CONFIGS  # noqa: F401 (re-exported)

VOCAB_SIZE = 101


def make_reference_model(name: str, seed: int = 0, vocab_size: int = VOCAB_SIZE,
                         dtype: torch.dtype = torch.float32):
    """Build a random transformers Qwen3ForCausalLM in eval mode for one of SMALL_CONFIGS."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    config = Qwen3Config(vocab_size=vocab_size, hidden_size=64, intermediate_size=112,
                         num_hidden_layers=2, rope_theta=10_000.0, rms_norm_eps=1e-6,
                         max_position_embeddings=512, initializer_range=0.1,
                         **SMALL_CONFIGS[name])
    config._attn_implementation = "eager"
    model = Qwen3ForCausalLM(config).to(dtype).eval()
    # transformers initializes norm weights to one; random values make the norms testable
    with torch.no_grad():
        for parameter_name, parameter in model.named_parameters():
            if "norm" in parameter_name:
                parameter.uniform_(0.5, 1.5)
    return model
