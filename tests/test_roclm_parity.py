"""RocLM against transformers' Qwen3ForCausalLM on small random configs (no downloads)."""
from __future__ import annotations

import pytest
import torch

from part2.roclm_model import RocLMForCausalLM, packing_unavailable_reason
from tests._roclm_helpers import SMALL_CONFIGS, VOCAB_SIZE, make_reference_model

FLOAT32_ATOL = 1e-5
# bf16 keeps 8 mantissa bits, so logits of magnitude ~4 round to steps of ~0.03. The fused SDPA
# kernel accumulates differently from the reference's eager attention and may differ by a few steps.
BFLOAT16_EXPLICIT_ATOL = 1e-6
BFLOAT16_SDPA_ATOL = 0.1
GREEDY_TOKENS = 32


@pytest.fixture(scope="module", params=sorted(SMALL_CONFIGS))
def model_pair(request, tmp_path_factory):
    """Return (transformers model, RocLM loaded from its save_pretrained output)."""
    reference = make_reference_model(request.param)
    directory = tmp_path_factory.mktemp(request.param)
    reference.save_pretrained(directory)
    return reference, RocLMForCausalLM.from_pretrained(directory)


def test_float32_logits_match_reference(model_pair):
    reference, model = model_pair
    input_ids = torch.randint(0, VOCAB_SIZE, (3, 21), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(input_ids).logits
        actual = model(input_ids)
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, atol=FLOAT32_ATOL, rtol=0)


def test_greedy_tokens_match_reference(model_pair):
    reference, model = model_pair
    input_ids = torch.randint(0, VOCAB_SIZE, (2, 9), generator=torch.Generator().manual_seed(2))
    expected = reference.generate(input_ids, max_new_tokens=GREEDY_TOKENS,
                                  min_new_tokens=GREEDY_TOKENS, do_sample=False)
    actual = model.generate(input_ids, max_new_tokens=GREEDY_TOKENS)
    assert actual.shape == (2, 9 + GREEDY_TOKENS)
    assert torch.equal(actual, expected)


@pytest.mark.parametrize("name", ["gqa2_head_dim24_untied", "gqa4_head_dim12_tied"])
def test_bfloat16_logits_match_reference(name, tmp_path):
    from transformers import Qwen3ForCausalLM

    make_reference_model(name).save_pretrained(tmp_path)
    # Loading in bf16 (instead of .to(bfloat16)) keeps the reference's RoPE frequencies float32.
    reference = Qwen3ForCausalLM.from_pretrained(tmp_path, dtype=torch.bfloat16,
                                                 attn_implementation="eager").eval()
    model = RocLMForCausalLM.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert model.model.rotary_emb.inv_freq.dtype == torch.float32
    input_ids = torch.randint(0, VOCAB_SIZE, (2, 17), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = reference(input_ids).logits.float()
        sdpa_logits = model(input_ids).float()
        model.set_attn_implementation("explicit")
        explicit_logits = model(input_ids).float()
    # The explicit path performs the reference's eager operations in the same order.
    torch.testing.assert_close(explicit_logits, expected, atol=BFLOAT16_EXPLICIT_ATOL, rtol=0)
    torch.testing.assert_close(sdpa_logits, expected, atol=BFLOAT16_SDPA_ATOL, rtol=0)


@pytest.mark.slow
def test_full_qwen3_shape_logits_match(tmp_path):
    """Random weights at the Qwen3-0.6B shape (about 0.6 B parameters in float32, 25 to 40 s)."""
    from part2.verify_parity import check_full_shape

    records = check_full_shape(tmp_path)
    # dense weights, then packed for oneDNN where this CPU supports it
    assert len(records) == (2 if packing_unavailable_reason("cpu", torch.float32) is None else 1)
    for record in records:
        assert record["max_abs_logit"] > 0
        assert record["max_abs_logit_diff"] <= record["tolerance"], record
