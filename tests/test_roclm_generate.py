"""RocLM generate(): stopping, streaming, sampling filters and argument checks, against
transformers where it has the same feature."""
from __future__ import annotations

import pytest
import torch

from part2.roclm_model import RocLMForCausalLM, apply_repetition_penalty, filter_logits
from tests._roclm_helpers import VOCAB_SIZE, make_reference_model

PROMPT_LENGTH = 7


@pytest.fixture(scope="module")
def model_pair(tmp_path_factory):
    reference = make_reference_model("gqa2_head_dim24_untied", seed=3)
    directory = tmp_path_factory.mktemp("generate")
    reference.save_pretrained(directory)
    return reference, RocLMForCausalLM.from_pretrained(directory)


@pytest.fixture()
def prompt():
    return torch.randint(0, VOCAB_SIZE, (2, PROMPT_LENGTH),
                         generator=torch.Generator().manual_seed(11))


def test_eos_stops_like_transformers(model_pair, prompt):
    reference, model = model_pair
    free_run = model.generate(prompt, max_new_tokens=12)
    eos = int(free_run[0, PROMPT_LENGTH + 2])
    expected = reference.generate(prompt, attention_mask=torch.ones_like(prompt),
                                  max_new_tokens=12, do_sample=False, eos_token_id=eos,
                                  pad_token_id=eos)
    # finished rows are filled with the first eos id, as transformers fills them with pad_token_id
    actual = model.generate(prompt, max_new_tokens=12, eos_token_id=[eos, VOCAB_SIZE - 1])
    assert torch.equal(actual, expected)
    assert (actual[0, PROMPT_LENGTH + 2:] == eos).all()


def test_single_row_stops_at_eos(model_pair, prompt):
    _, model = model_pair
    free_run = model.generate(prompt[:1], max_new_tokens=12)
    eos = int(free_run[0, PROMPT_LENGTH + 3])
    first_eos = int((free_run[0, PROMPT_LENGTH:] == eos).nonzero()[0])
    stopped = model.generate(prompt[:1], max_new_tokens=12, eos_token_id=eos)
    assert stopped.shape == (1, PROMPT_LENGTH + first_eos + 1)
    assert torch.equal(stopped[0], free_run[0, :PROMPT_LENGTH + first_eos + 1])


def test_repetition_penalty_matches_transformers(model_pair, prompt):
    reference, model = model_pair
    expected = reference.generate(prompt, max_new_tokens=16, min_new_tokens=16, do_sample=False,
                                  repetition_penalty=1.8)
    actual = model.generate(prompt, max_new_tokens=16, repetition_penalty=1.8)
    assert torch.equal(actual, expected)
    assert not torch.equal(actual, model.generate(prompt, max_new_tokens=16))


def test_repetition_penalty_divides_positive_multiplies_negative():
    logits = torch.tensor([[2.0, -2.0, 3.0, -1.0]])
    seen = torch.tensor([[True, True, False, False]])
    penalized = apply_repetition_penalty(logits, seen, 2.0)
    assert penalized.tolist() == [[1.0, -4.0, 3.0, -1.0]]


@pytest.mark.parametrize("top_k,top_p", [(0, 0.9), (5, 1.0), (7, 0.5), (0, 0.05)])
def test_filters_match_transformers(top_k, top_p):
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(top_k)) * 3
    expected = TemperatureLogitsWarper(0.7)(None, logits.clone())
    if top_k > 0:
        expected = TopKLogitsWarper(top_k)(None, expected)
    if top_p < 1.0:
        expected = TopPLogitsWarper(top_p)(None, expected)
    actual = filter_logits(logits, 0.7, top_k, top_p)
    assert torch.equal(torch.isinf(actual), torch.isinf(expected))
    kept = ~torch.isinf(expected)
    torch.testing.assert_close(actual[kept], expected[kept])


def test_nucleus_keeps_token_that_crosses_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = ~torch.isinf(filter_logits(logits, 1.0, 0, 0.6))
    assert kept.tolist() == [[True, True, False, False]]
    kept = ~torch.isinf(filter_logits(logits, 1.0, 0, 0.5))
    assert kept.tolist() == [[True, False, False, False]]


def test_degenerate_sampling_equals_greedy(model_pair, prompt):
    _, model = model_pair
    greedy = model.generate(prompt, max_new_tokens=10)
    torch.manual_seed(0)
    assert torch.equal(model.generate(prompt, 10, do_sample=True, temperature=0.0), greedy)
    assert torch.equal(model.generate(prompt, 10, do_sample=True, top_k=1), greedy)
    assert torch.equal(model.generate(prompt, 10, do_sample=True, top_p=1e-6), greedy)


def test_sampling_is_seeded_and_varies(model_pair, prompt):
    _, model = model_pair
    torch.manual_seed(5)
    first = model.generate(prompt, 20, do_sample=True, temperature=1.5)
    torch.manual_seed(5)
    second = model.generate(prompt, 20, do_sample=True, temperature=1.5)
    assert torch.equal(first, second)
    assert not torch.equal(first, model.generate(prompt, 20))


class RecordingStreamer:
    def __init__(self):
        self.chunks = []
        self.ended = False

    def put(self, value):
        self.chunks.append(value.clone())

    def end(self):
        self.ended = True


def test_streamer_receives_prompt_then_each_token(model_pair, prompt):
    _, model = model_pair
    streamer = RecordingStreamer()
    output = model.generate(prompt[:1], max_new_tokens=5, streamer=streamer)
    assert streamer.ended
    assert torch.equal(streamer.chunks[0], prompt[:1])
    assert [chunk.tolist() for chunk in streamer.chunks[1:]] == [[t] for t in output[0, -5:].tolist()]


def test_callable_streamer_receives_each_token(model_pair, prompt):
    _, model = model_pair
    received = []
    output = model.generate(prompt, max_new_tokens=4, streamer=received.append)
    assert torch.equal(torch.stack(received, dim=1), output[:, PROMPT_LENGTH:])


def test_zero_new_tokens_returns_prompt(model_pair, prompt):
    _, model = model_pair
    assert torch.equal(model.generate(prompt, max_new_tokens=0), prompt)


@pytest.mark.parametrize("kwargs,message", [
    (dict(top_p=0.0), "top_p=0.0 is invalid"),
    (dict(top_p=1.5), "top_p=1.5 is invalid"),
    (dict(top_k=-1), "top_k=-1 is invalid"),
    (dict(max_new_tokens=-2), "max_new_tokens=-2 is invalid"),
    (dict(repetition_penalty=0.0), "repetition_penalty=0.0 is invalid"),
    (dict(eos_token_id=VOCAB_SIZE), "outside the vocabulary"),
    (dict(input_ids=torch.tensor([1, 2, 3])), "expected a 2-D tensor"),
    (dict(input_ids=torch.tensor([[1, VOCAB_SIZE]])), "outside"),
    (dict(attention_mask=torch.tensor([[1, 1, 0]])), "not left-padded"),
    (dict(attention_mask=torch.ones(1, 2, dtype=torch.long)), "must match"),
])
def test_generate_rejects_invalid_arguments(model_pair, kwargs, message):
    _, model = model_pair
    arguments = dict(input_ids=torch.tensor([[1, 2, 3]]), max_new_tokens=3)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        model.generate(**arguments)


def test_transformers_text_streamer_prints_new_text(qwen_tokenizer_dir, capsys):
    from transformers import AutoTokenizer, TextStreamer

    from part2.roclm_model import RocLMConfig

    tokenizer = AutoTokenizer.from_pretrained(qwen_tokenizer_dir)
    torch.manual_seed(0)
    config = RocLMConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1)
    model = RocLMForCausalLM(config).eval()
    prompt = tokenizer("The cat sat on", return_tensors="pt").input_ids
    streamer = TextStreamer(tokenizer, skip_prompt=True)
    output = model.generate(prompt, max_new_tokens=6, streamer=streamer)
    printed = capsys.readouterr().out
    expected = tokenizer.decode(output[0, prompt.shape[1]:])
    assert printed.strip() == expected.strip()
