"""part2.benchmark on a tiny shape: the report's structure and byte counts (no timing asserts)."""
from __future__ import annotations

import json

import pytest
import torch

from part2 import benchmark
from part2.roclm_model import RocLMConfig, packing_unavailable_reason

TINY_SHAPE = dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                  rope_theta=10_000.0, max_position_embeddings=256, tie_word_embeddings=True)


def test_decode_bytes_count_each_weight_once():
    tied = RocLMConfig.from_dict(TINY_SHAPE)
    untied = RocLMConfig.from_dict(dict(TINY_SHAPE, tie_word_embeddings=False))
    per_layer = (32 * 64 + 2 * 32 * 32 + 64 * 32  # q, k, v, o
                 + 3 * 32 * 64  # gate, up, down
                 + 2 * 32 + 2 * 16)  # two layer norms, q_norm, k_norm
    weights = 2 * per_layer + 32 + 96 * 32  # layers, final norm, one vocabulary matrix
    assert benchmark.decode_bytes_per_token(tied, torch.float32, 0) == 4 * weights
    assert benchmark.decode_bytes_per_token(untied, torch.bfloat16, 0) == 2 * weights
    kv_cache = 2 * 2 * 2 * 16 * 10  # keys and values, layers, kv heads, head_dim, context
    assert benchmark.decode_bytes_per_token(tied, torch.float32, 10) == 4 * (weights + kv_cache)


@pytest.fixture
def run_tiny(tmp_path, monkeypatch):
    """Return a function that runs the quick benchmark on TINY_SHAPE and returns its report."""
    plan = dict(benchmark.PLANS["quick"], shape=TINY_SHAPE, prompt_tokens=6, new_tokens=4,
                contexts=(4, 12), context_decode_tokens=3, recompute_tokens=2,
                parity_prompt_tokens=5)
    monkeypatch.setitem(benchmark.PLANS, "quick", plan)
    monkeypatch.setitem(benchmark.BANDWIDTH_BYTES, "quick", 2**20)
    output = tmp_path / "benchmark.json"

    def run(*extra_args: str) -> dict:
        status = benchmark.main(["--output", str(output), "--quick", "--device", "cpu",
                                 "--threads", "1", *extra_args])
        assert status == 0
        return json.loads(output.read_text())

    return run


def test_benchmark_writes_report(run_tiny, monkeypatch):
    monkeypatch.setenv("RUN_PROFILE", "smoke")
    result = run_tiny()
    assert result["profile"] == "smoke"
    assert result["mode"] == "quick"
    assert result["provenance"]["settings"]["prompt_tokens"] == 6
    entries = result["devices"][0]["dtypes"]
    assert set(entries) == {"float32", "bfloat16"}
    for dtype_name, entry in entries.items():
        if packing_unavailable_reason("cpu", getattr(torch, dtype_name)) is None:
            # with packing, a dense RocLM row is timed beside the packed one
            assert entry["roclm_weights"] == "packed for oneDNN"
            assert set(entry["implementations"]) == {"roclm", "transformers", "roclm_dense"}
            assert entry["packed_over_dense_decode"] > 0
        else:
            assert entry["roclm_weights"].startswith("dense")
            assert set(entry["implementations"]) == {"roclm", "transformers"}
        assert entry["decode_ratio"] > 0
        assert entry["roofline"]["roofline_tokens_per_s"] > 0
    assert entries["float32"]["parity"]["max_abs_logit_diff"] < 1e-4
    assert [row["context"] for row in entries["float32"]["context_scaling"]["rows"]] == [4, 12]
    assert set(result["targets"]) >= {"decode_ratio_float32_at_least_1.3",
                                      "long_context_within_1.5x"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_benchmark_rejects_unavailable_device(tmp_path, capsys):
    status = benchmark.main(["--output", str(tmp_path / "b.json"), "--device", "cuda"])
    assert status == 1
    assert "CUDA is not available" in capsys.readouterr().err


def test_benchmark_no_pack_dense_only(run_tiny):
    result = run_tiny("--dtypes", "float32", "--no-pack-weights")
    entry = result["devices"][0]["dtypes"]["float32"]
    assert entry["roclm_weights"] == "dense (--no-pack-weights)"
    assert set(entry["implementations"]) == {"roclm", "transformers"}
    assert "packed_over_dense_decode" not in entry
