"""RocLM with its weights packed into oneDNN's blocked layout (pack_weights) on the CPU.

The packed model must compute what transformers computes, give back the exact dense weights on
unpack_weights(), and reject the operations that need the dense parameters while packed.
"""
from __future__ import annotations

import pytest
import torch

from part2 import roclm_model
from part2.roclm_model import RocLMForCausalLM, packing_unavailable_reason
from tests._roclm_helpers import SMALL_CONFIGS, VOCAB_SIZE, make_reference_model

UNAVAILABLE = packing_unavailable_reason("cpu", torch.float32)
requires_packing = pytest.mark.skipif(UNAVAILABLE is not None,
                                      reason=f"oneDNN packing unavailable: {UNAVAILABLE}")
FLOAT32_ATOL = 1e-5
BFLOAT16_ATOL = 0.1  # as for the dense SDPA path in test_roclm_parity.py
GREEDY_TOKENS = 24


@pytest.fixture(scope="module", params=sorted(SMALL_CONFIGS))
def saved_reference(request, tmp_path_factory):
    """Return (transformers model, folder of its save_pretrained output, config name)."""
    reference = make_reference_model(request.param)
    directory = tmp_path_factory.mktemp(request.param)
    reference.save_pretrained(directory)
    return reference, directory, request.param


def _dense_parameters(model: RocLMForCausalLM) -> list[str]:
    return [name for name, parameter in model.named_parameters() if parameter.device.type != "meta"]


@requires_packing
def test_packed_float32_matches_reference(saved_reference):
    reference, directory, _ = saved_reference
    model = RocLMForCausalLM.from_pretrained(directory).pack_weights()
    assert model.weights_packed
    input_ids = torch.randint(0, VOCAB_SIZE, (3, 21), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(input_ids).logits
        actual = model(input_ids)
    torch.testing.assert_close(actual, expected, atol=FLOAT32_ATOL, rtol=0)

    prompt = input_ids[:2, :9]
    expected_tokens = reference.generate(prompt, max_new_tokens=GREEDY_TOKENS,
                                         min_new_tokens=GREEDY_TOKENS, do_sample=False)
    assert torch.equal(model.generate(prompt, max_new_tokens=GREEDY_TOKENS), expected_tokens)


@requires_packing
@pytest.mark.parametrize("name", ["gqa2_head_dim24_untied", "gqa4_head_dim12_tied"])
def test_packed_bfloat16_matches_reference(name, tmp_path):
    from transformers import Qwen3ForCausalLM

    make_reference_model(name).save_pretrained(tmp_path)
    reference = Qwen3ForCausalLM.from_pretrained(tmp_path, dtype=torch.bfloat16,
                                                 attn_implementation="eager").eval()
    model = RocLMForCausalLM.from_pretrained(tmp_path, dtype=torch.bfloat16).pack_weights()
    input_ids = torch.randint(0, VOCAB_SIZE, (2, 17), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = reference(input_ids).logits.float()
        actual = model(input_ids).float()
    assert actual.abs().max() > 0
    torch.testing.assert_close(actual, expected, atol=BFLOAT16_ATOL, rtol=0)


@requires_packing
def test_packed_padded_batch_equals_singles(saved_reference):
    _, directory, _ = saved_reference
    model = RocLMForCausalLM.from_pretrained(directory).pack_weights()
    generator = torch.Generator().manual_seed(4)
    short = torch.randint(1, VOCAB_SIZE, (1, 5), generator=generator)
    long = torch.randint(1, VOCAB_SIZE, (1, 11), generator=generator)
    batch = torch.cat([torch.cat([torch.zeros(1, 6, dtype=torch.long), short], dim=1), long])
    mask = torch.ones_like(batch)
    mask[0, :6] = 0
    together = model.generate(batch, max_new_tokens=8, attention_mask=mask)
    assert torch.equal(together[0, 6:], model.generate(short, max_new_tokens=8)[0])
    assert torch.equal(together[1], model.generate(long, max_new_tokens=8)[0])


@requires_packing
def test_packing_frees_dense_weights(saved_reference):
    _, directory, name = saved_reference
    model = RocLMForCausalLM.from_pretrained(directory).pack_weights()
    dense_names = set(_dense_parameters(model))
    # only the embedding (needed for the lookup) and the norm weights keep dense storage
    assert dense_names == {name for name in dense_names
                           if name == "model.embed_tokens.weight" or "norm" in name}
    assert "model.embed_tokens.weight" in dense_names
    assert "model.layers.0.self_attn.q_proj.weight" not in dense_names
    assert model.device == torch.device("cpu")
    assert model.dtype == torch.float32
    tied = SMALL_CONFIGS[name].get("tie_word_embeddings", False)
    # a tied head shares the dense embedding, so it stays dense beside its blocked copy
    assert (model.lm_head.weight.device.type == "cpu") == tied


@requires_packing
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_unpack_restores_exact_weights(saved_reference, dtype):
    _, directory, name = saved_reference
    model = RocLMForCausalLM.from_pretrained(directory, dtype=dtype)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    input_ids = torch.randint(0, VOCAB_SIZE, (2, 7), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        dense_logits = model(input_ids)
    model.pack_weights().unpack_weights()
    assert not model.weights_packed
    after = model.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert torch.equal(after[key], value), key
    if SMALL_CONFIGS[name].get("tie_word_embeddings", False):
        assert model.lm_head.weight is model.model.embed_tokens.weight
    with torch.no_grad():
        assert torch.equal(model(input_ids), dense_logits)
    # the unpacked model is an ordinary model again: it converts and trains
    model.to(torch.float32).train()
    model(input_ids).sum().backward()
    assert model.model.layers[0].mlp.down_proj.weight.grad is not None


@requires_packing
def test_packing_uses_reassigned_weights(saved_reference):
    _, directory, _ = saved_reference
    model = RocLMForCausalLM.from_pretrained(directory)
    state_dict = {key: value * 1.5 if value.dim() == 2 else value.clone()
                  for key, value in model.state_dict().items()}
    # assign=True replaces the parameters, so the fused views of from_pretrained are stale
    model.load_state_dict(state_dict, assign=True)
    input_ids = torch.randint(0, VOCAB_SIZE, (1, 8), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        expected = model(input_ids)
        actual = model.pack_weights()(input_ids)
    torch.testing.assert_close(actual, expected, atol=FLOAT32_ATOL, rtol=0)


@requires_packing
def test_packed_model_rejects_dense_operations(saved_reference, tmp_path):
    _, directory, _ = saved_reference
    model = RocLMForCausalLM.from_pretrained(directory)
    state_dict = {key: value.clone() for key, value in model.state_dict().items()}
    model.pack_weights()
    input_ids = torch.ones(1, 4, dtype=torch.long)
    rejected_actions = {
        "state_dict": lambda: model.state_dict(),
        "load_state_dict": lambda: model.load_state_dict(state_dict),
        "save_pretrained": lambda: model.save_pretrained(tmp_path / "saved"),
        "to": lambda: model.to(torch.bfloat16),
        "autograd forward": lambda: model(input_ids),
    }
    for action_name, action in rejected_actions.items():
        with pytest.raises(RuntimeError, match="unpack_weights"):
            action()
        assert model.weights_packed, action_name
    assert not (tmp_path / "saved" / "model.safetensors").exists()
    # the rejected calls changed nothing: the packed model still generates
    assert model.generate(input_ids, max_new_tokens=2).shape == (1, 6)


def test_packing_unavailable_reasons(monkeypatch):
    assert "CPU" in packing_unavailable_reason("cuda", torch.float32)
    assert "float16" in packing_unavailable_reason("cpu", torch.float16)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert "oneDNN" in packing_unavailable_reason("cpu", torch.float32)


def test_packing_probe_reports_failure(monkeypatch):
    class FailingOps:
        def _reorder_linear_weight(self, *args):
            raise RuntimeError("could not create a primitive")

    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    monkeypatch.setattr(roclm_model.torch.ops, "mkldnn", FailingOps())
    reason = packing_unavailable_reason("cpu", torch.bfloat16)
    assert "could not create a primitive" in reason


def test_pack_rejects_float16(tmp_path):
    make_reference_model("gqa2_head_dim24_untied").save_pretrained(tmp_path)
    model = RocLMForCausalLM.from_pretrained(tmp_path, dtype=torch.float16)
    with pytest.raises(RuntimeError, match="float16"):
        model.pack_weights()
    assert not model.weights_packed
    assert model.model.layers[0].self_attn.q_proj.weight.device.type == "cpu"
