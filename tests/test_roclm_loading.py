"""RocLM configs and checkpoints: both layouts, shards, save_pretrained and readable errors."""
from __future__ import annotations

import json

import pytest
import torch

from part2.roclm_model import RocLMConfig, RocLMForCausalLM
from tests._roclm_helpers import VOCAB_SIZE, make_reference_model

ATOL = 1e-5
# The fields of Qwen/Qwen3-0.6B's config.json that RocLM reads, with rope_theta at the top level
# as that file has it.
QWEN3_0_6B_CONFIG = {
    "architectures": ["Qwen3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
    "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
    "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
    "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
    "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000,
    "sliding_window": None, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
    "use_cache": True, "use_sliding_window": False, "vocab_size": 151936,
}


def logits_of(model, input_ids):
    with torch.no_grad():
        output = model(input_ids)
    return output if isinstance(output, torch.Tensor) else output.logits


def test_config_reads_qwen3_config():
    config = RocLMConfig.from_dict(QWEN3_0_6B_CONFIG)
    assert config.head_dim == 128
    assert config.hidden_size // config.num_attention_heads == 64
    assert config.rope_theta == 1e6
    assert config.num_key_value_groups == 2
    assert config.tie_word_embeddings is True
    assert config.eos_token_id == 151645


def test_config_reads_rope_parameters_and_ignores_unknown_keys(tmp_path):
    data = dict(QWEN3_0_6B_CONFIG, some_future_key=3)
    del data["rope_theta"]
    data["rope_parameters"] = {"rope_type": "default", "rope_theta": 5e5}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    assert RocLMConfig.from_json(path).rope_theta == 5e5


def test_config_missing_key_is_named():
    data = dict(QWEN3_0_6B_CONFIG)
    del data["num_key_value_heads"]
    del data["intermediate_size"]
    with pytest.raises(ValueError, match="intermediate_size, num_key_value_heads"):
        RocLMConfig.from_dict(data)


def test_config_rejects_indivisible_heads():
    with pytest.raises(ValueError, match="num_attention_heads=16 is not divisible by "
                                         "num_key_value_heads=6"):
        RocLMConfig.from_dict(dict(QWEN3_0_6B_CONFIG, num_key_value_heads=6))


def test_config_rejects_unsupported_features():
    with pytest.raises(ValueError, match="hidden_act"):
        RocLMConfig.from_dict(dict(QWEN3_0_6B_CONFIG, hidden_act="gelu"))
    with pytest.raises(ValueError, match="rope_type"):
        RocLMConfig.from_dict(dict(QWEN3_0_6B_CONFIG, rope_scaling={"rope_type": "yarn"}))


def test_config_round_trips_through_to_dict():
    config = RocLMConfig.from_dict(QWEN3_0_6B_CONFIG)
    assert RocLMConfig.from_dict(config.to_dict()) == config


def test_tied_checkpoint_stays_tied_after_loading(tmp_path):
    make_reference_model("gqa1_head_dim16_tied").save_pretrained(tmp_path)
    model = RocLMForCausalLM.from_pretrained(tmp_path)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    model = model.to(torch.bfloat16)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert model.model.rotary_emb.inv_freq.dtype == torch.float32


def test_sharded_checkpoint_loads(tmp_path):
    reference = make_reference_model("gqa2_head_dim24_untied")
    reference.save_pretrained(tmp_path, max_shard_size="40KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    assert not (tmp_path / "model.safetensors").exists()
    model = RocLMForCausalLM.from_pretrained(tmp_path)
    input_ids = torch.randint(0, VOCAB_SIZE, (1, 12))
    torch.testing.assert_close(logits_of(model, input_ids), logits_of(reference, input_ids),
                               atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", ["gqa1_head_dim16_tied", "gqa2_head_dim24_untied"])
def test_saved_checkpoint_loads_in_transformers(name, tmp_path):
    from transformers import Qwen3ForCausalLM

    make_reference_model(name, seed=4).save_pretrained(tmp_path / "reference")
    model = RocLMForCausalLM.from_pretrained(tmp_path / "reference")
    model.save_pretrained(tmp_path / "roclm")
    reloaded = Qwen3ForCausalLM.from_pretrained(tmp_path / "roclm", attn_implementation="eager")
    assert reloaded.config.tie_word_embeddings == model.config.tie_word_embeddings
    input_ids = torch.randint(0, VOCAB_SIZE, (2, 10))
    torch.testing.assert_close(logits_of(reloaded.eval(), input_ids), logits_of(model, input_ids),
                               atol=ATOL, rtol=0)


def _write_course_layout(directory, reference, state_dict=None):
    directory.mkdir(parents=True, exist_ok=True)
    config = {key: value for key, value in reference.config.to_dict().items()
              if not key.startswith("_")}
    (directory / "model_config.json").write_text(json.dumps(config))
    torch.save(state_dict if state_dict is not None else reference.state_dict(),
               directory / "custom_model_state_dict.pth")


@pytest.mark.parametrize("name", ["gqa4_head_dim12_tied", "gqa2_head_dim24_untied"])
def test_course_layout_loads(name, tmp_path):
    reference = make_reference_model(name)
    _write_course_layout(tmp_path, reference)
    model = RocLMForCausalLM.from_pretrained(tmp_path, dtype="float32")
    input_ids = torch.randint(0, VOCAB_SIZE, (2, 10))
    torch.testing.assert_close(logits_of(model, input_ids), logits_of(reference, input_ids),
                               atol=ATOL, rtol=0)


def test_wrong_shape_lists_name_and_both_shapes(tmp_path):
    reference = make_reference_model("gqa2_head_dim24_untied")
    state_dict = dict(reference.state_dict())
    state_dict["model.layers.1.mlp.up_proj.weight"] = torch.zeros(100, 64)
    _write_course_layout(tmp_path, reference, state_dict)
    with pytest.raises(ValueError) as error:
        RocLMForCausalLM.from_pretrained(tmp_path)
    message = str(error.value)
    assert "model.layers.1.mlp.up_proj.weight" in message
    assert "checkpoint (100, 64)" in message
    assert "model (112, 64)" in message


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    reference = make_reference_model("gqa2_head_dim24_untied")
    state_dict = dict(reference.state_dict())
    del state_dict["lm_head.weight"]
    del state_dict["model.layers.0.self_attn.k_norm.weight"]
    state_dict["model.layers.0.self_attn.q_proj.bias"] = torch.zeros(96)
    _write_course_layout(tmp_path, reference, state_dict)
    with pytest.raises(ValueError) as error:
        RocLMForCausalLM.from_pretrained(tmp_path)
    message = str(error.value)
    assert "missing lm_head.weight: model expects shape (101, 64)" in message
    assert "missing model.layers.0.self_attn.k_norm.weight" in message
    assert "unexpected model.layers.0.self_attn.q_proj.bias: checkpoint shape (96,)" in message


def test_missing_files_raise_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="model_config.json"):
        RocLMForCausalLM.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        RocLMForCausalLM.from_pretrained(tmp_path / "absent")
    (tmp_path / "model_config.json").write_text(json.dumps(QWEN3_0_6B_CONFIG))
    with pytest.raises(FileNotFoundError, match="custom_model_state_dict.pth"):
        RocLMForCausalLM.from_pretrained(tmp_path)
