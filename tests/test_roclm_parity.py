"""RocLM against transformers' Qwen3ForCausalLM on small random configs (no downloads)."""
from __future__ import annotations

import pytest
import torch

from part2.roclm_model import RocLMForCausalLM
from tests._roclm_helpers import SMALL_CONFIGS, VOCAB_SIZE, make_reference_model

FLOAT32_ATOL = 1e-5
# bf16 keeps 8 mantissa bits; logits of magnitude ~4 round to steps of ~0.03, and two
# implementations that order bf16 operations differently may differ by a few steps.
BFLOAT16_ATOL = 0.1
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


@pytest.mark.parametrize("name", ["gqa2_untied", "gqa4_tied"])
def test_bfloat16_logits_match_reference(name, tmp_path):
    reference = make_reference_model(name)
    reference.save_pretrained(tmp_path)
    reference = reference.to(torch.bfloat16)
    model = RocLMForCausalLM.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert model.model.rotary_emb.inv_freq.dtype == torch.float32
    input_ids = torch.randint(0, VOCAB_SIZE, (2, 17), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = reference(input_ids).logits.float()
        actual = model(input_ids).float()
    torch.testing.assert_close(actual, expected, atol=BFLOAT16_ATOL, rtol=0)
