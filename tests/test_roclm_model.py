"""RocLM building blocks and invariants: norms, RoPE, attention paths, KV cache, training."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from torch import nn

from part2.roclm_model import (FusedProjections, RocLMConfig, RocLMForCausalLM, RocLMRMSNorm,
                               RocLMRotaryEmbedding, apply_rotary_emb)

REPO_ROOT = Path(__file__).resolve().parents[1]
ATOL = 1e-5


def tiny_config(**overrides) -> RocLMConfig:
    values = dict(vocab_size=53, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=20, rope_theta=10_000.0)
    values.update(overrides)
    return RocLMConfig(**values)


def tiny_model(seed: int = 0, **overrides) -> RocLMForCausalLM:
    torch.manual_seed(seed)
    model = RocLMForCausalLM(tiny_config(**overrides)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.2)
    return model


def random_ids(shape, seed: int = 0, vocab_size: int = 53) -> torch.Tensor:
    return torch.randint(0, vocab_size, shape, generator=torch.Generator().manual_seed(seed))


def test_rmsnorm_matches_torch():
    norm = RocLMRMSNorm(32, eps=1e-6)
    reference = torch.nn.RMSNorm(32, eps=1e-6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        reference.weight.copy_(norm.weight)
    x = torch.randn(3, 5, 32) * 4
    torch.testing.assert_close(norm(x), reference(x), atol=ATOL, rtol=0)


def _rotate_adjacent_pairs(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """Apply the RoFormer rotation to adjacent pairs (2i, 2i+1) through complex numbers."""
    D = x.shape[-1]
    inv_freq = 1.0 / theta ** (torch.arange(0, D, 2, dtype=torch.float64) / D)
    angles = positions.double()[:, None] * inv_freq  # (T, D/2)
    pairs = torch.view_as_complex(x.double().reshape(*x.shape[:-1], D // 2, 2).contiguous())
    rotated = pairs * torch.polar(torch.ones_like(angles), angles)
    return torch.view_as_real(rotated).reshape(x.shape).float()


def test_rope_half_split_equals_adjacent_pairs():
    D, T, theta = 16, 9, 10_000.0
    rope = RocLMRotaryEmbedding(D, theta)
    positions = torch.arange(100, 100 + T)
    q = torch.randn(1, 2, T, D)
    k = torch.randn(1, 2, T, D)
    cos, sin = rope(positions[None])
    q_half, k_half = apply_rotary_emb(q, k, cos, sin)

    # dimension i of the half-split layout is dimension 2i (i < D/2) or 2(i - D/2) + 1 of the
    # adjacent-pair layout
    to_adjacent = torch.stack([torch.arange(D // 2), torch.arange(D // 2, D)], dim=1).flatten()
    q_adjacent = _rotate_adjacent_pairs(q[..., to_adjacent], positions, theta)
    k_adjacent = _rotate_adjacent_pairs(k[..., to_adjacent], positions, theta)
    torch.testing.assert_close(q_half[..., to_adjacent], q_adjacent, atol=ATOL, rtol=0)
    torch.testing.assert_close(q_half @ k_half.transpose(-2, -1),
                               q_adjacent @ k_adjacent.transpose(-2, -1), atol=1e-4, rtol=0)


def test_rope_frequencies_stay_float32_in_bf16():
    model = tiny_model().to(torch.bfloat16)
    inv_freq = model.model.rotary_emb.inv_freq
    assert inv_freq.dtype == torch.float32
    torch.testing.assert_close(inv_freq, RocLMRotaryEmbedding(20, 10_000.0).inv_freq)
    assert model.lm_head.weight.dtype == torch.bfloat16


def test_tied_head_stays_tied_after_to():
    model = tiny_model(tie_word_embeddings=True)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    model = model.to(torch.bfloat16).to(torch.float32)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    untied = tiny_model(tie_word_embeddings=False)
    assert untied.lm_head.weight is not untied.model.embed_tokens.weight


@pytest.mark.parametrize("num_kv_heads", [4, 2, 1])
def test_explicit_and_sdpa_attention_agree(num_kv_heads):
    model = tiny_model(num_key_value_heads=num_kv_heads)
    input_ids = random_ids((2, 11))
    attention_mask = torch.ones(2, 11, dtype=torch.long)
    attention_mask[1, :4] = 0
    outputs = {}
    for implementation in ("sdpa", "explicit"):
        model.set_attn_implementation(implementation)
        with torch.no_grad():
            plain = model(input_ids)
            masked = model(input_ids, attention_mask=attention_mask)
            cache = model.allocate_kv_cache(2, 11)
            model(input_ids[:, :6], kv_cache=cache)
            cached = model(input_ids[:, 6:], kv_cache=cache)
            # single-token steps take a separate SDPA path, with and without a padding mask
            cache = model.allocate_kv_cache(2, 11)
            model(input_ids[:, :10], attention_mask=attention_mask[:, :10], kv_cache=cache)
            one_masked = model(input_ids[:, 10:], attention_mask=attention_mask, kv_cache=cache)
            cache = model.allocate_kv_cache(2, 11)
            model(input_ids[:, :10], kv_cache=cache)
            one_plain = model(input_ids[:, 10:], kv_cache=cache)
        outputs[implementation] = (plain, masked, cached, one_masked, one_plain)
    for sdpa, explicit in zip(outputs["sdpa"], outputs["explicit"]):
        torch.testing.assert_close(sdpa, explicit, atol=ATOL, rtol=0)


def test_kv_cache_logits_equal_full_recomputation():
    model = tiny_model()
    input_ids = random_ids((2, 14))
    with torch.no_grad():
        full = model(input_ids)
        cache = model.allocate_kv_cache(2, 14)
        chunks = [model(input_ids[:, :5], kv_cache=cache)]
        for t in range(5, 14):
            chunks.append(model(input_ids[:, t:t + 1], kv_cache=cache))
    assert cache.length == 14
    torch.testing.assert_close(torch.cat(chunks, dim=1), full, atol=ATOL, rtol=0)


def test_kv_cache_generate_equals_recompute_loop():
    model = tiny_model()
    prompt = random_ids((2, 6))
    generated = model.generate(prompt, max_new_tokens=12)
    sequence = prompt
    with torch.no_grad():
        for _ in range(12):
            next_token = model(sequence)[:, -1].argmax(-1, keepdim=True)
            sequence = torch.cat([sequence, next_token], dim=1)
    assert torch.equal(generated, sequence)


def test_kv_cache_overflow_raises():
    model = tiny_model()
    cache = model.allocate_kv_cache(1, 4)
    with pytest.raises(RuntimeError, match="KV cache overflow"):
        model(random_ids((1, 5)), kv_cache=cache)


def test_generate_sizes_cache_for_request(monkeypatch):
    model = tiny_model()
    sizes = []
    original = model.allocate_kv_cache

    def spy(batch_size, max_length):
        sizes.append((batch_size, max_length))
        return original(batch_size, max_length)

    monkeypatch.setattr(model, "allocate_kv_cache", spy)
    model.generate(random_ids((3, 5)), max_new_tokens=7)
    assert sizes == [(3, 12)]


def test_changing_token_keeps_earlier_logits():
    model = tiny_model()
    input_ids = random_ids((1, 12))
    changed = input_ids.clone()
    changed[0, 7] = (changed[0, 7] + 1) % 53
    with torch.no_grad():
        before = model(input_ids)
        after = model(changed)
    torch.testing.assert_close(after[:, :7], before[:, :7], atol=0, rtol=0)
    assert not torch.allclose(after[:, 7:], before[:, 7:])


def test_left_padded_batch_equals_single_prompts():
    model = tiny_model()
    prompts = [random_ids((1, 9), seed=1), random_ids((1, 4), seed=2), random_ids((1, 6), seed=3)]
    width = max(p.shape[1] for p in prompts)
    input_ids = torch.zeros(len(prompts), width, dtype=torch.long)
    attention_mask = torch.zeros(len(prompts), width, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        input_ids[row, width - prompt.shape[1]:] = prompt[0]
        attention_mask[row, width - prompt.shape[1]:] = 1

    batched = model.generate(input_ids, max_new_tokens=10, attention_mask=attention_mask)
    for row, prompt in enumerate(prompts):
        alone = model.generate(prompt, max_new_tokens=10)
        assert torch.equal(batched[row, width:], alone[0, prompt.shape[1]:]), f"row {row}"

    with torch.no_grad():
        padded_logits = model(input_ids, attention_mask=attention_mask)
        short_logits = model(prompts[1])
    torch.testing.assert_close(padded_logits[1, width - 4:], short_logits[0], atol=ATOL, rtol=0)


def test_every_parameter_receives_gradient():
    model = tiny_model(tie_word_embeddings=False).train()
    input_ids = random_ids((2, 10))
    logits = model(input_ids[:, :-1])
    F.cross_entropy(logits.reshape(-1, logits.shape[-1]), input_ids[:, 1:].reshape(-1)).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


def test_tiny_model_overfits_fixed_sequence():
    torch.manual_seed(0)
    model = RocLMForCausalLM(tiny_config()).train()
    sequence = random_ids((1, 24), seed=5)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(60):
        logits = model(sequence[:, :-1])
        loss = F.cross_entropy(logits[0], sequence[0, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1, loss.item()
    model.eval()
    continuation = model.generate(sequence[:, :4], max_new_tokens=20)
    assert torch.equal(continuation, sequence)


def test_self_test_runs():
    result = subprocess.run([sys.executable, "part2/roclm_model.py"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout


def test_imports_both_ways():
    code = ("import sys; sys.path.insert(0, 'part2'); import roclm_model; "
            "import part2.roclm_model as packaged; "
            "assert roclm_model.RocLMForCausalLM.__name__ == packaged.RocLMForCausalLM.__name__")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def _fused_path_active(model) -> bool:
    attention, mlp = model.model.layers[0].self_attn, model.model.layers[0].mlp
    fused = [attention.qkv, attention.out, mlp.gate_up, mlp.down, model.head]
    return all(projections.is_current() for projections in fused)


def test_fused_projections_match_separate_layers():
    model = tiny_model()
    input_ids = random_ids((2, 9))
    with torch.no_grad():
        separate = model(input_ids)
    model.fuse_projections()
    assert _fused_path_active(model)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert [name for name, _ in model.named_parameters()] == [
        name for name, _ in tiny_model().named_parameters()]
    with torch.no_grad():
        fused = model(input_ids)
    torch.testing.assert_close(fused, separate, atol=ATOL, rtol=0)

    model = model.to(torch.bfloat16)
    assert _fused_path_active(model)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    reference = tiny_model().to(torch.bfloat16)
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids), reference(input_ids), atol=0, rtol=0)


def test_fused_model_follows_weight_updates():
    model = tiny_model()
    model.fuse_projections()
    input_ids = random_ids((1, 8))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    logits = model(input_ids[:, :-1])
    F.cross_entropy(logits[0], input_ids[0, 1:]).backward()
    assert model.model.layers[0].self_attn.q_proj.weight.grad is not None
    optimizer.step()
    with torch.no_grad():
        after_step = model(input_ids)
        replaced = {name: torch.randn_like(tensor) for name, tensor in model.state_dict().items()}
        replaced["lm_head.weight"] = replaced["model.embed_tokens.weight"]
        model.load_state_dict(replaced, assign=True)
        after_assign = model(input_ids)
    unfused = tiny_model()
    with torch.no_grad():
        unfused.load_state_dict(replaced)
        torch.testing.assert_close(after_assign, unfused(input_ids), atol=ATOL, rtol=0)
    assert not torch.allclose(after_step, after_assign)


@pytest.mark.parametrize("rows", [1, 3])
def test_bfloat16_fused_rows_match_float32_product(rows):
    torch.manual_seed(0)
    layers = [nn.Linear(64, 48, bias=False).to(torch.bfloat16),
              nn.Linear(64, 32, bias=False).to(torch.bfloat16)]
    fused = FusedProjections(layers)
    fused.fuse()
    x = torch.randn(1, rows, 64).to(torch.bfloat16)
    onednn_before = torch.backends.mkldnn.enabled
    with torch.no_grad():
        outputs = fused(x)
    assert torch.backends.mkldnn.enabled == onednn_before
    assert len(outputs) == 2
    for output, layer in zip(outputs, layers):
        expected = F.linear(x.float(), layer.weight.float()).to(torch.bfloat16)
        assert output.shape == (1, rows, layer.out_features)
        torch.testing.assert_close(output, expected)
