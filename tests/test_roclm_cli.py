"""The Part 2 model command-line tools: make_tiny_checkpoint and verify_parity."""
from __future__ import annotations

import json

import pytest
import torch

from part2 import make_tiny_checkpoint, verify_parity
from part2.roclm_model import RocLMForCausalLM, packing_unavailable_reason


@pytest.mark.parametrize("tie", [True, False])
def test_tiny_checkpoint_loads_in_roclm(tmp_path, tie):
    flag = "--tie" if tie else "--no-tie"
    status = make_tiny_checkpoint.main(["--output-dir", str(tmp_path), "--vocab-size", "300",
                                        "--seed", "3", flag, "--eos-token-id", "7"])
    assert status == 0
    assert (tmp_path / "config.json").is_file()
    assert (tmp_path / "model.safetensors").is_file()
    model = RocLMForCausalLM.from_pretrained(tmp_path)
    assert model.config.vocab_size == 300
    assert model.config.tie_word_embeddings is tie
    assert model.config.eos_token_id == 7
    assert (model.lm_head.weight is model.model.embed_tokens.weight) is tie
    output = model.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=4)
    assert output.shape[0] == 1


def test_tiny_checkpoint_rejects_bad_eos(tmp_path, capsys):
    status = make_tiny_checkpoint.main(["--output-dir", str(tmp_path), "--vocab-size", "10",
                                        "--eos-token-id", "10"])
    assert status == 1
    assert "outside the vocabulary" in capsys.readouterr().err


@pytest.fixture()
def one_small_config(monkeypatch):
    name = "gqa2_head_dim24_untied"
    monkeypatch.setattr(verify_parity, "SMALL_CONFIGS", {name: verify_parity.SMALL_CONFIGS[name]})


def test_verify_parity_writes_smoke_json(tmp_path, monkeypatch, one_small_config):
    monkeypatch.setenv("RUN_PROFILE", "smoke")
    make_tiny_checkpoint.main(["--output-dir", str(tmp_path / "tiny"), "--vocab-size", "200"])
    output = tmp_path / "parity.json"
    status = verify_parity.main(["--output", str(output), "--quick",
                                 "--model-dir", str(tmp_path / "tiny")])
    assert status == 0
    result = json.loads(output.read_text())
    assert result["profile"] == "smoke"
    assert result["provenance"]["profile"] == "smoke"
    assert result["all_passed"] is True
    configs = {record["config"] for record in result["checks"]}
    assert configs == {"gqa2_head_dim24_untied", "checkpoint tiny"}
    for record in result["checks"]:
        assert record["max_abs_logit_diff"] <= record["tolerance"]
    packed = [record["config"] for record in result["checks"]
              if record["check"] == "float32 logits, weights packed for oneDNN"]
    if packing_unavailable_reason("cpu", torch.float32) is None:
        assert sorted(packed) == ["checkpoint tiny", "gqa2_head_dim24_untied"]
    else:
        assert packed == []


def test_verify_parity_fails_when_tolerance_is_exceeded(tmp_path, monkeypatch, one_small_config):
    monkeypatch.setattr(verify_parity, "FLOAT32_ATOL", -1.0)
    output = tmp_path / "parity.json"
    assert verify_parity.main(["--output", str(output), "--quick"]) == 1
    assert json.loads(output.read_text())["all_passed"] is False


def test_verify_parity_rejects_missing_model_dir(tmp_path, capsys):
    status = verify_parity.main(["--output", str(tmp_path / "p.json"),
                                 "--model-dir", str(tmp_path / "absent")])
    assert status == 1
    assert "is not a directory" in capsys.readouterr().err
