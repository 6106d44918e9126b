"""Generate text and chat with RocLM on Qwen3 weights: completion, one chat message, or a REPL.

    python -m part2.generate --prompt "The capital of France is"
    echo "Once upon a time" | python -m part2.generate
    python -m part2.generate --chat "What is 17 * 23?" --think
    python -m part2.generate --interactive
    python -m part2.generate --download-only
    python -m part2.generate --model-dir D --write-samples evaluation/part2

Without --model-dir the weights of Qwen/Qwen3-0.6B come from the Hugging Face cache and are
downloaded on first use unless --offline or HF_HUB_OFFLINE=1 is set. Generated text goes to
stdout; load time, speed and warnings go to stderr, so the output can be piped.

A prompt whose length plus --max-new-tokens exceeds the model's context (max_position_embeddings)
is rejected with an error in the one-shot modes. The interactive chat instead drops its oldest
turns, with a warning, until the conversation fits.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

if __package__ in (None, ""):
    # run as `python part2/generate.py`: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from part2.chat import (  # noqa: E402
    ReplyPrinter, SamplingSettings, chat_prompt_ids, completion_prompt_ids,
    IncrementalDecoder, decode_text, find_tokenizer_dir, format_reply, load_tokenizer, resolve_sampling, split_reply,
    stop_token_ids,
)
from part2.download import (  # noqa: E402
    DEFAULT_REPO_ID, DEFAULT_TOKENIZER_OUT, ModelFilesError, detect_layout, download_model,
    has_tokenizer_files, offline_requested, resolve_model_dir,
)

logger = logging.getLogger("part2.generate")

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
DTYPE_ALIASES = {"auto": "auto", "bfloat16": "bfloat16", "bf16": "bfloat16",
                 "float16": "float16", "fp16": "float16", "half": "float16",
                 "float32": "float32", "fp32": "float32", "float": "float32"}
DEFAULT_MAX_NEW_TOKENS = 512
# CPU feature flags (Linux /proc/cpuinfo) of native bf16 dot-product instructions. Without them
# bf16 matmuls need conversions in software, so float32 is the default there.
FAST_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
FLOAT16_WARNING = ("float16 was requested: Qwen3 activations exceed the float16 range, and the "
                   "output often turns into repeated '!' tokens; use bfloat16 or float32")


class UserError(Exception):
    """A problem with the request that the user can fix; main prints it without a traceback."""


# -- argument parsing ---------------------------------------------------------------------------

def _bounded_type(kind, name: str, low: float | None, high: float | None, low_open: bool,
                  what: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value {text!r}; {name} {what}")
        below = low is not None and (value <= low if low_open else value < low)
        above = high is not None and value > high
        if below or above or value != value:  # value != value rejects NaN
            raise argparse.ArgumentTypeError(f"invalid value {text}; {name} {what}")
        return value
    return parse


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m part2.generate",
        description="Generate text with RocLM on Qwen3 weights: completion, chat, or an "
                    "interactive chat.")
    mode = parser.add_argument_group("mode (pick one; without one, the prompt is read from stdin)")
    exclusive = mode.add_mutually_exclusive_group()
    exclusive.add_argument("--prompt", help="text to continue (completion mode); '-' reads stdin")
    exclusive.add_argument("--chat", metavar="MESSAGE",
                           help="answer one user message with the chat template; '-' reads stdin")
    exclusive.add_argument("--interactive", action="store_true",
                           help="interactive chat that keeps the conversation; reads stdin, "
                                "also when piped")
    exclusive.add_argument("--download-only", action="store_true",
                           help="fetch the weights and tokenizer into the cache, copy the tokenizer "
                                "to part2/tokenizer, print the model directory and exit")
    exclusive.add_argument("--write-samples", metavar="OUT_DIR",
                           help="write OUT_DIR/generation_samples.md and OUT_DIR/chat_transcript.md "
                                "from fixed prompts")

    chat = parser.add_argument_group("chat")
    chat.add_argument("--think", dest="think", action="store_true", default=True,
                      help="let the model reason inside <think></think> before answering "
                           "(default: on)")
    chat.add_argument("--no-think", dest="think", action="store_false",
                      help="answer directly, without the reasoning part")
    chat.add_argument("--system", default=None, help="system message for chat modes (default: none)")
    chat.add_argument("--show-prompt", action="store_true",
                      help="print each formatted prompt and its token ids to stderr (default: off)")

    weights = parser.add_argument_group("weights and tokenizer")
    weights.add_argument("--model-dir", default=None,
                         help="checkpoint folder in the Hugging Face layout (config.json + "
                              "model.safetensors) or the course layout (model_config.json + "
                              "custom_model_state_dict.pth); default: the cached --repo-id")
    weights.add_argument("--tokenizer-dir", default=None,
                         help="tokenizer folder (default: the model folder, else part2/tokenizer)")
    weights.add_argument("--repo-id", default=DEFAULT_REPO_ID,
                         help=f"Hugging Face repository used without --model-dir "
                              f"(default: {DEFAULT_REPO_ID})")
    weights.add_argument("--cache-dir", default=None,
                         help="Hugging Face cache folder (default: HF_HOME or ~/.cache/huggingface/hub)")
    weights.add_argument("--offline", action="store_true",
                         help="never touch the network, only read local files (default: off; "
                              "HF_HUB_OFFLINE=1 does the same)")

    runtime = parser.add_argument_group("device and precision")
    runtime.add_argument("--device", default="auto",
                         help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps "
                              "(default: auto)")
    runtime.add_argument("--dtype", default="auto", choices=sorted(DTYPE_ALIASES),
                         help="weight and activation dtype; auto is bfloat16 on CUDA and on CPUs "
                              "with native bf16, else float32 (default: auto)")
    runtime.add_argument("--no-pack-weights", dest="pack_weights", action="store_false",
                         help="on the CPU, keep the checkpoint's dense weights instead of "
                              "oneDNN's blocked layout; slower, but a tied lm_head then needs "
                              "no second copy (default: pack when oneDNN supports the dtype)")

    sampling = parser.add_argument_group(
        "sampling (unset values follow Qwen3's defaults: thinking T=0.6 top_p=0.95 top_k=20; "
        "non-thinking and completion T=0.7 top_p=0.8 top_k=20)")
    sampling.add_argument("--max-new-tokens", type=_bounded_type(int, "--max-new-tokens", 1, None, False,
                                                                 "must be an integer >= 1"),
                          default=DEFAULT_MAX_NEW_TOKENS,
                          help=f"maximum number of generated tokens per answer "
                               f"(default: {DEFAULT_MAX_NEW_TOKENS})")
    sampling.add_argument("--temperature", type=_bounded_type(float, "--temperature", 0, None, False,
                                                              "must be a number >= 0 (0 = greedy)"),
                          default=None, help="softmax temperature, 0 means greedy (default: per mode)")
    sampling.add_argument("--top-p", type=_bounded_type(float, "--top-p", 0, 1, True,
                                                        "must be in (0, 1]"),
                          default=None, help="nucleus probability mass, 1 disables it "
                                             "(default: per mode)")
    sampling.add_argument("--top-k", type=_bounded_type(int, "--top-k", 0, None, False,
                                                        "must be an integer >= 0 (0 disables it)"),
                          default=None, help="keep the k most likely tokens, 0 disables it "
                                             "(default: 20)")
    sampling.add_argument("--repetition-penalty",
                          type=_bounded_type(float, "--repetition-penalty", 0, None, True,
                                             "must be a number > 0 (1 disables it)"),
                          default=1.0, help="divide positive and multiply negative logits of seen "
                                            "tokens by this value (default: 1.0, off)")
    sampling.add_argument("--greedy", action="store_true",
                          help="always pick the most likely token (default: sample)")
    sampling.add_argument("--seed", type=int, default=None,
                          help="random seed that makes sampling reproducible (default: none)")

    output = parser.add_argument_group("output")
    output.add_argument("--stream", dest="stream", action="store_true", default=None,
                        help="print tokens as they are generated (default: when stdout is a "
                             "terminal; the interactive chat always streams)")
    output.add_argument("--no-stream", dest="stream", action="store_false",
                        help="print each answer when it is complete")
    output.add_argument("--quiet", action="store_true",
                        help="hide the load and speed lines and the progress bars (default: shown)")
    return parser


# -- device and dtype ---------------------------------------------------------------------------

def resolve_device(name: str) -> str:
    """Turn --device into a torch device string; raise UserError when it is unavailable."""
    import torch

    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name == "cpu":
        return "cpu"
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise UserError("--device mps was requested but MPS is not available on this machine; "
                            "use --device auto or cpu")
        return "mps"
    if name == "cuda" or name.startswith("cuda:"):
        index = name.partition(":")[2]
        if index and not index.isdigit():
            raise UserError(f"--device {name} is invalid; use cuda or cuda:N with N a GPU index")
        if not torch.cuda.is_available():
            raise UserError(f"--device {name} was requested but CUDA is not available; "
                            "use --device auto or cpu")
        if index and int(index) >= torch.cuda.device_count():
            raise UserError(f"--device {name} is invalid: this machine has "
                            f"{torch.cuda.device_count()} CUDA device(s)")
        return name
    raise UserError(f"--device {name} is invalid; use one of {', '.join(DEVICE_CHOICES)} or cuda:N")


def cpu_has_fast_bf16() -> bool:
    """Return True when /proc/cpuinfo lists a native bf16 dot-product instruction set."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            flags = set()
            for line in handle:
                if line.startswith("flags"):
                    flags.update(line.partition(":")[2].split())
                    break
    except OSError:
        return False
    return any(flag in flags for flag in FAST_BF16_CPU_FLAGS)


def resolve_dtype(name: str, device: str):
    """Turn --dtype into a torch dtype; auto picks bfloat16 where it is fast, else float32."""
    import torch

    name = DTYPE_ALIASES[name]
    if name == "auto":
        if device.startswith("cuda"):
            # GPUs before Ampere lack bf16, and float16 overflows on Qwen3 activations
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        if device == "cpu" and cpu_has_fast_bf16():
            # NOTE: chosen from CPU flags, not measured; --dtype float32 overrides it
            return torch.bfloat16
        return torch.float32
    if name == "float16":
        logger.warning(FLOAT16_WARNING)
    return getattr(torch, name)


# -- model loading and one generation -----------------------------------------------------------

@dataclass
class GenerationResult:
    """Token ids of one answer (stop token removed) with its timing."""

    prompt_tokens: int
    new_ids: list[int]
    stop_token: int | None
    seconds: float

    @property
    def generated_tokens(self) -> int:
        # the stop token costs a forward pass like any other, so it counts toward the speed
        return len(self.new_ids) + (self.stop_token is not None)

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class Generator:
    """A loaded model and tokenizer with the stop ids and context length read from them."""

    model: object
    tokenizer: object
    model_dir: Path
    layout: str
    tokenizer_dir: Path
    device: str
    dtype: object
    load_seconds: float
    stop_ids: list[int] = field(default_factory=list)
    weights_note: str = "dense weights"

    @property
    def context_length(self) -> int:
        return int(self.model.config.max_position_embeddings)

    @property
    def num_parameters(self) -> int:
        # a tied lm_head shares the embedding tensor, and parameters() lists shared tensors once
        return sum(parameter.numel() for parameter in self.model.parameters())

    def describe(self) -> str:
        dtype = str(self.dtype).replace("torch.", "")
        return (f"loaded {self.model_dir} ({self.layout} layout, {self.num_parameters / 1e6:.1f}M "
                f"parameters) on {self.device} in {dtype} in {self.load_seconds:.2f} s, "
                f"{self.weights_note}; tokenizer {self.tokenizer_dir}")

    def check_context(self, prompt_tokens: int, max_new_tokens: int) -> None:
        if prompt_tokens + max_new_tokens > self.context_length:
            allowed = self.context_length - prompt_tokens
            fix = (f"lower --max-new-tokens to at most {allowed}" if allowed > 0
                   else "shorten the prompt")
            raise UserError(f"the prompt has {prompt_tokens} tokens and --max-new-tokens is "
                            f"{max_new_tokens}; together they exceed the model's context of "
                            f"{self.context_length} positions; {fix}")

    def generate(self, prompt_ids: list[int], settings: SamplingSettings,
                 on_token=None) -> GenerationResult:
        """Run the model on one prompt; `on_token` receives each new token id as an int."""
        import torch

        self.check_context(len(prompt_ids), settings.max_new_tokens)
        input_ids = torch.tensor([prompt_ids], dtype=torch.long, device=self.device)
        streamer = None if on_token is None else (lambda token: on_token(int(token[0])))
        start = time.perf_counter()
        output = self.model.generate(
            input_ids, max_new_tokens=settings.max_new_tokens, do_sample=settings.do_sample,
            temperature=settings.temperature, top_k=settings.top_k, top_p=settings.top_p,
            repetition_penalty=settings.repetition_penalty, eos_token_id=self.stop_ids,
            streamer=streamer)
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start

        new_ids = output[0, len(prompt_ids):].tolist()
        stop_token = None
        if new_ids and new_ids[-1] in self.stop_ids:
            stop_token = new_ids.pop()
        return GenerationResult(len(prompt_ids), new_ids, stop_token, seconds)

    def stats_line(self, result: GenerationResult) -> str:
        stop = ("stop token " + self.tokenizer.convert_ids_to_tokens(result.stop_token)
                if result.stop_token is not None else "--max-new-tokens reached")
        return (f"generated {result.generated_tokens} tokens in {result.seconds:.2f} s "
                f"({result.tokens_per_second:.1f} tokens/s, prompt {result.prompt_tokens} tokens, "
                f"{stop})")


def load_generator(model_dir: str | Path | None, tokenizer_dir: str | Path | None = None,
                   device: str = "auto", dtype: str = "auto", offline: bool = False,
                   repo_id: str = DEFAULT_REPO_ID, cache_dir: str | None = None,
                   pack_weights: bool = True) -> Generator:
    """Find the weights and tokenizer, load both, and return a ready Generator.

    On the CPU the weights are packed into oneDNN's blocked layout (RocLMForCausalLM.pack_weights)
    when pack_weights is true and this CPU and dtype support it. Otherwise they stay dense.

    Raises ModelFilesError (missing files) or UserError (unusable device, load failure).
    """
    from part2.roclm_model import RocLMForCausalLM, packing_unavailable_reason

    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    folder = resolve_model_dir(model_dir, offline=offline, repo_id=repo_id, cache_dir=cache_dir,
                               tokenizer_out=DEFAULT_TOKENIZER_OUT)
    layout, folder = detect_layout(folder)
    try:
        tokenizer_folder = find_tokenizer_dir(tokenizer_dir, folder, DEFAULT_TOKENIZER_OUT,
                                              has_tokenizer_files)
    except FileNotFoundError as error:
        raise ModelFilesError(str(error)) from error

    start = time.perf_counter()
    try:
        tokenizer = load_tokenizer(tokenizer_folder)
        model = RocLMForCausalLM.from_pretrained(folder, dtype=torch_dtype, device=device)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise UserError(f"loading the checkpoint in {folder} failed: {error}") from error
    weights_note = "dense weights"
    if pack_weights and model.device.type == "cpu":
        reason = packing_unavailable_reason(model.device, model.dtype)
        if reason is None:
            model.pack_weights()
            weights_note = "weights packed for oneDNN"
        else:
            weights_note = f"dense weights ({reason})"
    load_seconds = time.perf_counter() - start

    if len(tokenizer) > model.config.vocab_size:
        raise UserError(f"the tokenizer in {tokenizer_folder} has {len(tokenizer)} tokens but the "
                        f"model's vocabulary has {model.config.vocab_size}; pass the tokenizer that "
                        "belongs to this checkpoint with --tokenizer-dir")
    return Generator(model, tokenizer, folder, layout, tokenizer_folder, device, torch_dtype,
                     load_seconds, stop_token_ids(tokenizer), weights_note)


# -- modes --------------------------------------------------------------------------------------

def sampling_for(args: argparse.Namespace, thinking: bool) -> SamplingSettings:
    return resolve_sampling(thinking, args.max_new_tokens, greedy=args.greedy,
                            temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
                            repetition_penalty=args.repetition_penalty)


def _show_prompt(generator: Generator, prompt_ids: list[int]) -> None:
    text = generator.tokenizer.decode(prompt_ids)
    print(f"prompt ({len(prompt_ids)} tokens):\n{text}", file=sys.stderr)
    print(f"prompt ids: {prompt_ids}", file=sys.stderr)


def _report(generator: Generator, result: GenerationResult, quiet: bool) -> None:
    if not quiet:
        print(generator.stats_line(result), file=sys.stderr, flush=True)


def run_completion(generator: Generator, text: str, args: argparse.Namespace, stream: bool,
                   out: TextIO) -> GenerationResult:
    """Continue `text` and print the continuation, token by token when `stream` is set."""
    prompt_ids = completion_prompt_ids(generator.tokenizer, text)
    if args.show_prompt:
        _show_prompt(generator, prompt_ids)
    settings = sampling_for(args, thinking=False)
    if stream:
        decoder = IncrementalDecoder(generator.tokenizer)

        def print_token(token: int) -> None:
            if token not in generator.stop_ids:
                out.write(decoder.add(token))
                out.flush()

        result = generator.generate(prompt_ids, settings, print_token)
        out.write(decoder.flush() + "\n")
    else:
        result = generator.generate(prompt_ids, settings)
        out.write(decode_text(generator.tokenizer, result.new_ids) + "\n")
    out.flush()
    _report(generator, result, args.quiet)
    return result


def run_chat_turn(generator: Generator, messages: list[dict[str, str]], thinking: bool,
                  args: argparse.Namespace, stream: bool, out: TextIO,
                  prompt_ids: list[int] | None = None) -> tuple[GenerationResult, object]:
    """Answer the last user message of `messages`; print the reasoning and the answer labelled."""
    if prompt_ids is None:
        prompt_ids = chat_prompt_ids(generator.tokenizer, messages, thinking)
    if args.show_prompt:
        _show_prompt(generator, prompt_ids)
    settings = sampling_for(args, thinking)
    if stream:
        printer = ReplyPrinter(generator.tokenizer, thinking, out, generator.stop_ids)
        result = generator.generate(prompt_ids, settings, printer.put)
        printer.end()
        reply = split_reply(generator.tokenizer, result.new_ids, thinking)
    else:
        result = generator.generate(prompt_ids, settings)
        reply = split_reply(generator.tokenizer, result.new_ids, thinking)
        out.write(format_reply(reply, thinking))
    out.flush()
    _report(generator, result, args.quiet)
    return result, reply


def base_messages(system: str | None) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}] if system else []


# -- command line -------------------------------------------------------------------------------

def read_text(value: str | None, what: str, stdin: TextIO) -> str:
    """Return the prompt or message from the flag, or from stdin for None or '-'."""
    if value is None or value == "-":
        if value is None and stdin.isatty():
            raise UserError("no prompt given: pass --prompt TEXT, pipe text on stdin, or use "
                            "--chat MESSAGE or --interactive")
        value = stdin.read()
    if not value.strip():
        raise UserError(f"the {what} is empty; pass some text")
    return value


def _download_only(args: argparse.Namespace) -> int:
    if args.model_dir is not None:
        raise UserError("--download-only fetches --repo-id into the cache; --model-dir names a "
                        "local folder that needs no download, so drop one of them")
    progress = not args.quiet and sys.stderr.isatty()
    folder = download_model(args.repo_id, args.cache_dir, DEFAULT_TOKENIZER_OUT,
                            progress=progress, offline=args.offline)
    print(folder)
    return 0


def run(args: argparse.Namespace, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout,
        generator: Generator | None = None) -> int:
    """Run the mode that `args` selects; raise UserError or ModelFilesError for bad requests.

    A `generator` loaded earlier is used as it is, and the weight and device flags are ignored.
    """
    if args.download_only:
        return _download_only(args)

    # read and check the input before loading, so a bad request fails at once
    text = None
    if args.chat is not None:
        text = read_text(args.chat, "chat message", stdin)
    elif not args.interactive and args.write_samples is None:
        text = read_text(args.prompt, "prompt", stdin)

    if generator is None:
        generator = load_generator(args.model_dir, args.tokenizer_dir, args.device, args.dtype,
                                   offline=offline_requested(args.offline), repo_id=args.repo_id,
                                   cache_dir=args.cache_dir, pack_weights=args.pack_weights)
        if not args.quiet:
            print(generator.describe(), file=sys.stderr, flush=True)

    if args.write_samples is not None:
        from part2.samples import write_samples

        for path in write_samples(generator, args.write_samples, args):
            print(f"wrote {path}", file=sys.stderr)
        return 0

    if args.seed is not None:
        import torch

        torch.manual_seed(args.seed)
    if args.interactive:
        from part2.repl import run_interactive

        return run_interactive(generator, args, stdin, out)

    stream = out.isatty() if args.stream is None else args.stream
    if args.chat is not None:
        run_chat_turn(generator, base_messages(args.system) + [{"role": "user", "content": text}],
                      args.think, args, stream, out)
    else:
        run_completion(generator, text, args, stream, out)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)
    try:
        return run(args)
    except (UserError, ModelFilesError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of stdout went away (for example `| head`); point stdout at /dev/null so the
        # final flush at exit does not raise a second time
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    # run the imported part2.generate, so that the REPL and samples modules, which import it,
    # share its classes (UserError, Generator) with the code that catches them
    from part2.generate import main as package_main

    sys.exit(package_main())
