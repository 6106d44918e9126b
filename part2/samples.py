"""Fixed generation samples and a multi-turn chat transcript for the evaluation folder.

    python -m part2.generate --model-dir D [--tokenizer-dir T] --write-samples evaluation/part2

writes generation_samples.md (a completion, a chat answer without thinking, a chat answer with
thinking: settings, outputs and speed) and chat_transcript.md (a conversation that switches
thinking on and off). Both files end with a provenance section and, under RUN_PROFILE=smoke,
start with the smoke banner. The random generator is seeded again before every answer, so each
sample can be reproduced on its own with the same --seed.
"""
from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path

from part2.chat import chat_prompt_text
from part2.generate import Generator, base_messages, run_chat_turn, run_completion
from tools.provenance import SMOKE_BANNER, collect_provenance, is_smoke, title_with_profile, write_atomic

SAMPLES_FILE = "generation_samples.md"
TRANSCRIPT_FILE = "chat_transcript.md"
DEFAULT_SAMPLE_SEED = 0

# (title, mode, thinking, text); mode "completion" continues the text, "chat" answers it
SAMPLE_PROMPTS = (
    ("Completion", "completion", False,
     "The three primary colors of light are"),
    ("Chat without thinking", "chat", False,
     "Explain in two sentences what a transformer language model does."),
    ("Chat with thinking", "chat", True,
     "A train leaves at 14:10 and arrives at 16:45. How many minutes is the trip?"),
)
# (thinking, user message) for the multi-turn transcript
TRANSCRIPT_TURNS = (
    (True, "What is the sum of the first five prime numbers?"),
    (False, "Write that number in words."),
    (True, "Is that number prime? Answer briefly."),
)


def fenced(text: str, language: str = "text") -> str:
    """Return `text` in a Markdown code fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def _header(title: str, generator: Generator, settings_line: str) -> list[str]:
    lines = [SMOKE_BANNER, ""] if is_smoke() else []
    lines += [f"# {title_with_profile(title)}", "",
              f"- Model: `{generator.model_dir}` ({generator.layout} layout, "
              f"{generator.num_parameters / 1e6:.1f}M parameters), loaded in "
              f"{generator.load_seconds:.2f} s",
              f"- Tokenizer: `{generator.tokenizer_dir}`",
              f"- Device: {generator.device}, dtype {str(generator.dtype).replace('torch.', '')}, "
              f"{generator.weights_note}",
              f"- {settings_line}",
              "- Speed counts every generated token, the stop token included, and its time "
              "includes the prompt's prefill.", ""]
    return lines


def _provenance_section(generator: Generator, args: argparse.Namespace, seed: int) -> list[str]:
    settings = {key: value for key, value in vars(args).items() if key != "write_samples"}
    settings["model_dir"] = str(generator.model_dir)
    settings["tokenizer_dir"] = str(generator.tokenizer_dir)
    settings["dtype"] = str(generator.dtype).replace("torch.", "")
    settings["weights"] = generator.weights_note
    provenance = collect_provenance(settings=settings, seed=seed, device=generator.device)
    return ["## Provenance", "", fenced(json.dumps(provenance, indent=2, default=str), "json"), ""]


def _seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def _sample_section(generator: Generator, args: argparse.Namespace, seed: int,
                    title: str, mode: str, thinking: bool, text: str) -> tuple[list[str], list]:
    _seed(seed)
    output = io.StringIO()
    if mode == "completion":
        result = run_completion(generator, text, args, stream=False, out=output)
        settings = _sampling_description(args, thinking=False)
        prompt_block = fenced(text)
    else:
        messages = base_messages(args.system) + [{"role": "user", "content": text}]
        result, _ = run_chat_turn(generator, messages, thinking, args, stream=False, out=output)
        settings = _sampling_description(args, thinking)
        prompt_block = fenced(chat_prompt_text(generator.tokenizer, messages, thinking))
    lines = [f"## {title}", "",
             f"Settings: {settings}, seed {seed}.", "",
             "Prompt (as the model sees it):", "", prompt_block, "",
             "Output:", "", fenced(output.getvalue().rstrip("\n")), "",
             f"Speed: {generator.stats_line(result)}.", ""]
    if mode == "completion":
        mode_name = "completion"
    else:
        mode_name = "thinking" if thinking else "no thinking"
    row = [title, mode_name, result.prompt_tokens, result.generated_tokens, f"{result.seconds:.2f}",
           f"{result.tokens_per_second:.1f}"]
    return lines, row


def _sampling_description(args: argparse.Namespace, thinking: bool) -> str:
    from part2.generate import sampling_for

    return sampling_for(args, thinking).describe()


def write_generation_samples(generator: Generator, out_dir: str | Path,
                             args: argparse.Namespace) -> Path:
    """Generate the fixed samples and write OUT_DIR/generation_samples.md; return its path."""
    seed = DEFAULT_SAMPLE_SEED if args.seed is None else args.seed
    sections, rows = [], []
    for title, mode, thinking, text in SAMPLE_PROMPTS:
        lines, row = _sample_section(generator, args, seed, title, mode, thinking, text)
        sections += lines
        rows.append(row)

    settings_line = ("Sampling: Qwen3's defaults per mode unless overridden on the command line; "
                     f"seed {seed}, set again before each sample.")
    lines = _header("Generation samples", generator, settings_line)
    lines += ["| Sample | Mode | Prompt tokens | Generated tokens | Seconds | Tokens/s |",
              "|---|---|---:|---:|---:|---:|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    lines += [""] + sections + _provenance_section(generator, args, seed)
    path = Path(out_dir) / SAMPLES_FILE
    write_atomic(path, "\n".join(lines))
    return path


def write_chat_transcript(generator: Generator, out_dir: str | Path,
                          args: argparse.Namespace) -> Path:
    """Hold a short multi-turn chat and write OUT_DIR/chat_transcript.md; return its path."""
    from part2.repl import ChatSession

    seed = DEFAULT_SAMPLE_SEED if args.seed is None else args.seed
    session = ChatSession(args.system, thinking=True)
    sections = []
    for number, (thinking, message) in enumerate(TRANSCRIPT_TURNS, start=1):
        session.thinking = thinking
        _seed(seed)
        output = io.StringIO()
        messages = session.messages_with(message)
        result, reply = run_chat_turn(generator, messages, thinking, args, stream=False, out=output)
        session.add_turn(message, reply.history_content(thinking))
        sections += [f"## Turn {number}: thinking {'on' if thinking else 'off'}", "",
                     f"User: {message}", "", fenced(output.getvalue().rstrip("\n")), "",
                     f"Settings: {_sampling_description(args, thinking)}, seed {seed}. "
                     f"Speed: {generator.stats_line(result)}.", ""]

    # the template re-renders the history each turn; earlier turns appear without their reasoning
    final_prompt = generator.tokenizer.apply_chat_template(
        base_messages(args.system) + session.history, tokenize=False)
    final_ids = generator.tokenizer(final_prompt)["input_ids"]
    sections += ["## The conversation as the chat template renders it", "",
                 f"After the last turn the history is {len(final_ids)} tokens. Qwen3's template "
                 "keeps the reasoning of the latest answer only; earlier answers appear without "
                 "it.", "", fenced(final_prompt), ""]

    settings_line = ("Thinking is switched per turn as in the REPL's /think and /no_think; seed "
                     f"{seed}, set again before each turn.")
    lines = _header("Chat transcript", generator, settings_line) + sections
    lines += _provenance_section(generator, args, seed)
    path = Path(out_dir) / TRANSCRIPT_FILE
    write_atomic(path, "\n".join(lines))
    return path


def write_samples(generator: Generator, out_dir: str | Path,
                  args: argparse.Namespace) -> list[Path]:
    """Write both files into `out_dir` and return their paths."""
    return [write_generation_samples(generator, out_dir, args),
            write_chat_transcript(generator, out_dir, args)]
