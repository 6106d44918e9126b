"""Command-line runs of part2.generate on a tiny random Qwen3 checkpoint with the real tokenizer.

Every mode runs in a subprocess, as a user runs it. The tiny model produces random text, so the
tests compare runs with each other and with transformers' chat template, never with fixed text.
"""
from __future__ import annotations

import io
import logging
import signal
import subprocess
import sys
import time

import pytest
import torch

from _generate_helpers import (
    REPO_ROOT, SUBPROCESS_TIMEOUT, make_tiny_checkpoint, prompt_ids_lines, run_generate,
    subprocess_env, write_course_layout,
)

CHAT_MESSAGE = "Name a prime number."
SECOND_MESSAGE = "And another one?"
# float32 on CPU keeps the runs comparable on every machine; auto may pick bfloat16
COMMON = ["--device", "cpu", "--dtype", "float32", "--max-new-tokens", "24"]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny_qwen3"))


@pytest.fixture(scope="module")
def course_model_dir(tiny_model_dir, tmp_path_factory):
    return write_course_layout(tiny_model_dir, tmp_path_factory.mktemp("course"))


@pytest.fixture(scope="module")
def tokenizer(qwen_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir))


@pytest.fixture(scope="module")
def model_args(tiny_model_dir, qwen_tokenizer_dir):
    return ["--model-dir", str(tiny_model_dir), "--tokenizer-dir", str(qwen_tokenizer_dir), *COMMON]


@pytest.fixture(scope="module")
def thinking_chat(model_args):
    """One sampled chat answer with thinking on, printed when complete."""
    return run_generate([*model_args, "--chat", CHAT_MESSAGE, "--think", "--seed", "3",
                         "--no-stream", "--show-prompt"])


def history_content(labelled_reply: str) -> str:
    """Rebuild the assistant message that the REPL keeps from a printed thinking-mode reply."""
    body = labelled_reply.removeprefix("Reasoning:\n")
    reasoning, answer = body.split("\nAnswer:\n", 1)
    if answer.startswith("(none: the reasoning did not finish"):
        return ""
    return f"<think>\n{reasoning.strip()}\n</think>\n\n{answer.strip()}"


def reference_chat_ids(tokenizer, messages, thinking):
    encoding = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                             enable_thinking=thinking, tokenize=True)
    return list(encoding["input_ids"])


def assert_clean_success(result):
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_completion_stream_equals_plain(model_args, course_model_dir, qwen_tokenizer_dir):
    plain = run_generate([*model_args, "--prompt", "Once upon a time", "--seed", "5", "--no-stream"])
    # streamed, read from stdin, and loaded from the course layout of the same weights
    course_args = ["--model-dir", str(course_model_dir), "--tokenizer-dir", str(qwen_tokenizer_dir),
                   *COMMON]
    streamed = run_generate([*course_args, "--seed", "5", "--stream", "--quiet"],
                            stdin="Once upon a time")
    assert_clean_success(plain)
    assert_clean_success(streamed)
    assert plain.stdout.strip(), "the completion printed nothing"
    assert streamed.stdout == plain.stdout
    assert "hf layout" in plain.stderr
    assert "tokens/s" in plain.stderr
    assert streamed.stderr == ""  # --quiet hides the load and speed lines


def test_packed_and_dense_same_text(model_args):
    from part2.roclm_model import packing_unavailable_reason

    argv = [*model_args, "--prompt", "Once upon a time", "--greedy", "--no-stream"]
    packed = run_generate(argv)
    dense = run_generate([*argv, "--no-pack-weights"])
    assert_clean_success(packed)
    assert_clean_success(dense)
    assert packed.stdout.strip()
    assert dense.stdout == packed.stdout
    assert "dense weights" in dense.stderr
    if packing_unavailable_reason("cpu", torch.float32) is None:
        assert "weights packed for oneDNN" in packed.stderr


def test_chat_prompt_ids_match_template(model_args, tokenizer, thinking_chat):
    thinking = thinking_chat
    direct_1 = run_generate([*model_args, "--chat", CHAT_MESSAGE, "--no-think", "--seed", "3",
                             "--no-stream", "--show-prompt"], as_script=True)
    for result in (thinking, direct_1):
        assert_clean_success(result)

    messages = [{"role": "user", "content": CHAT_MESSAGE}]
    assert prompt_ids_lines(thinking.stderr) == [reference_chat_ids(tokenizer, messages, True)]
    assert prompt_ids_lines(direct_1.stderr) == [reference_chat_ids(tokenizer, messages, False)]
    assert thinking.stdout.startswith("Reasoning:\n")
    assert "\nAnswer:\n" in thinking.stdout
    assert direct_1.stdout.startswith("Answer:\n")
    assert "Reasoning:" not in direct_1.stdout


def test_repl_streams_and_resets(model_args, tokenizer, thinking_chat):
    plain = thinking_chat
    script = "\n".join([CHAT_MESSAGE, "/no_think", SECOND_MESSAGE, "/reset", "/think",
                        CHAT_MESSAGE, "/bogus", "/exit", "never sent"]) + "\n"
    repl = run_generate([*model_args, "--interactive", "--seed", "3", "--show-prompt"],
                        stdin=script)
    assert_clean_success(plain)
    assert_clean_success(repl)

    # the first streamed reply equals the non-streamed chat answer for the same seed and prompt
    first_reply = repl.stdout.split(f"User: {CHAT_MESSAGE}\n", 1)[1].split("User: ", 1)[0]
    assert first_reply == plain.stdout

    prompts = prompt_ids_lines(repl.stderr)
    assert len(prompts) == 3, repl.stderr
    first = [{"role": "user", "content": CHAT_MESSAGE}]
    assert prompts[0] == reference_chat_ids(tokenizer, first, True)
    # the second turn carries the first exchange; the template drops the first reasoning
    conversation = first + [{"role": "assistant", "content": history_content(plain.stdout)},
                            {"role": "user", "content": SECOND_MESSAGE}]
    assert prompts[1] == reference_chat_ids(tokenizer, conversation, False)
    # after /reset the history is gone: the prompt equals a fresh first turn
    assert prompts[2] == prompts[0]

    assert "thinking off" in repl.stdout
    assert "conversation cleared" in repl.stdout
    assert "unknown command /bogus" in repl.stdout
    assert "never sent" not in repl.stdout
    assert repl.stderr.count("tokens/s") == 3


def test_repl_ctrl_c_exits_cleanly(model_args):
    process = subprocess.Popen([sys.executable, "-m", "part2.generate", *model_args, "--interactive"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=REPO_ROOT, env=subprocess_env())
    try:
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        seen = []
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("interactive chat"):
                break
        assert seen and seen[-1].startswith("interactive chat"), "".join(seen)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=SUBPROCESS_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_offline_missing_weights_message(tmp_path):
    # no --model-dir: the default repository is looked up in an empty cache, with the flag only
    env = subprocess_env(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_CACHE=str(tmp_path / "hub"))
    del env["HF_HUB_OFFLINE"]
    result = run_generate(["--offline", "--prompt", "hello", "--device", "cpu"], env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Qwen/Qwen3-0.6B" in result.stderr
    assert "python -m part2.download" in result.stderr
    assert "offline" in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


# -- the same entry point in-process, with the model loaded once ---------------------------------

@pytest.fixture(scope="module")
def generator(tiny_model_dir, qwen_tokenizer_dir):
    from part2.generate import load_generator

    # one thread: on a loaded 2-core machine, two threads make the tiny model several times slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_generator(tiny_model_dir, qwen_tokenizer_dir, device="cpu", dtype="float32")
    torch.set_num_threads(threads)


def run_in_process(generator, argv, stdin_text=""):
    from part2.generate import get_args_parser, run

    args = get_args_parser().parse_args(argv)
    out = io.StringIO()
    status = run(args, stdin=io.StringIO(stdin_text), out=out, generator=generator)
    return status, out.getvalue()


def test_seed_repeats_sampling(generator):
    argv = ["--prompt", "The weather today", "--max-new-tokens", "16", "--quiet", "--no-stream"]
    first = run_in_process(generator, [*argv, "--seed", "11"])
    second = run_in_process(generator, [*argv, "--seed", "11"])
    other = run_in_process(generator, [*argv, "--seed", "12"])
    assert first == second
    assert first[1].strip()
    assert other[1] != first[1]


def test_prompt_beyond_context_rejected(generator):
    from part2.generate import UserError

    with pytest.raises(UserError, match="exceed the model's context of 128 positions") as caught:
        run_in_process(generator, ["--prompt", "hello", "--max-new-tokens", "400", "--quiet"])
    assert "lower --max-new-tokens to at most" in str(caught.value)
    long_prompt = "word " * 150
    with pytest.raises(UserError, match="shorten the prompt"):
        run_in_process(generator, ["--prompt", long_prompt, "--max-new-tokens", "8", "--quiet"])


def test_repl_drops_oldest_turn(generator, caplog, capsys):
    script = "First question\nSecond question\n" + "word " * 150 + "\nThird question\n"
    with caplog.at_level(logging.WARNING, logger="part2.generate"):
        status, output = run_in_process(
            generator, ["--interactive", "--no-think", "--max-new-tokens", "60", "--quiet",
                        "--seed", "1"], script)
    assert status == 0
    assert output.count("Answer:") == 3
    assert any("dropped the oldest turn" in record.getMessage() for record in caplog.records)
    assert "this message alone plus --max-new-tokens 60 exceeds" in capsys.readouterr().err


def test_empty_input_rejected(generator):
    from part2.generate import UserError

    for argv, stdin_text in ((["--prompt", "   "], ""), (["--chat", ""], ""), ([], "\n\n")):
        with pytest.raises(UserError, match="is empty"):
            run_in_process(generator, argv, stdin_text)
    status, output = run_in_process(generator, ["--interactive", "--quiet"], "")
    assert status == 0
    assert output == ""


def test_model_dir_without_layout(tmp_path, capsys):
    from part2.generate import main

    (tmp_path / "notes.txt").write_text("not a checkpoint")
    assert main(["--model-dir", str(tmp_path), "--prompt", "hi", "--device", "cpu"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ")
    for name in ("config.json", "model.safetensors", "model_config.json",
                 "custom_model_state_dict.pth", "notes.txt"):
        assert name in error


def test_write_samples_smoke(generator, tmp_path, monkeypatch):
    from tools.provenance import SMOKE_BANNER

    monkeypatch.setenv("RUN_PROFILE", "smoke")
    out_dir = tmp_path / "evaluation" / "part2"
    status, _ = run_in_process(generator, ["--write-samples", str(out_dir), "--max-new-tokens", "8",
                                           "--quiet"])
    assert status == 0
    samples = (out_dir / "generation_samples.md").read_text()
    transcript = (out_dir / "chat_transcript.md").read_text()
    for text in (samples, transcript):
        assert text.startswith(SMOKE_BANNER)
        assert "## Provenance" in text
        assert '"profile": "smoke"' in text
        assert "tokens/s" in text
    for title in ("## Completion", "## Chat without thinking", "## Chat with thinking"):
        assert title in samples
    assert samples.count("max 8 new tokens") == 3
    for turn in ("## Turn 1: thinking on", "## Turn 2: thinking off", "## Turn 3: thinking on"):
        assert turn in transcript
    assert not list(out_dir.glob("*.tmp"))
