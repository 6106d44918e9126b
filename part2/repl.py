"""The interactive chat of part2.generate: a read-eval-print loop over a growing conversation.

Each turn formats the whole conversation with the tokenizer's chat template, so earlier assistant
turns lose their reasoning exactly as Qwen3's template drops it. Lines that are exactly a command
(/think, /no_think, /reset, /exit, /help) are handled here and never sent to the model.
"""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, field
from typing import TextIO

from part2.chat import chat_prompt_ids
from part2.generate import Generator, base_messages, run_chat_turn

logger = logging.getLogger("part2.generate")

HELP_TEXT = """commands:
  /think     reason inside <think></think> before each answer
  /no_think  answer directly, without reasoning
  /reset     clear the conversation (the system message stays)
  /exit      end the chat; Ctrl-D and Ctrl-C end it too
  /help      show this list"""
EXIT_COMMANDS = ("/exit", "/quit")


@dataclass
class ChatSession:
    """The conversation so far and the thinking switch for the next answer."""

    system: str | None
    thinking: bool
    history: list[dict[str, str]] = field(default_factory=list)

    def messages_with(self, user_message: str) -> list[dict[str, str]]:
        return base_messages(self.system) + self.history + [{"role": "user", "content": user_message}]

    def add_turn(self, user_message: str, assistant_content: str) -> None:
        self.history += [{"role": "user", "content": user_message},
                         {"role": "assistant", "content": assistant_content}]

    def reset(self) -> None:
        self.history.clear()


def fit_prompt(generator: Generator, session: ChatSession, user_message: str,
               max_new_tokens: int) -> list[int] | None:
    """Return the prompt ids of the next turn, dropping the oldest turns until the prompt plus
    max_new_tokens fits the context; None when even the message alone does not fit."""
    while True:
        prompt_ids = chat_prompt_ids(generator.tokenizer, session.messages_with(user_message),
                                     session.thinking)
        if len(prompt_ids) + max_new_tokens <= generator.context_length:
            return prompt_ids
        if not session.history:
            return None
        session.history = session.history[2:]
        logger.warning("the conversation plus --max-new-tokens %d exceeds the context of %d "
                       "positions; dropped the oldest turn", max_new_tokens,
                       generator.context_length)


def handle_command(command: str, session: ChatSession, out: TextIO) -> bool:
    """Apply a /command; return False when the chat should end."""
    name = command.strip().lower()
    if name in EXIT_COMMANDS:
        return False
    if name == "/think":
        session.thinking = True
        out.write("thinking on\n")
    elif name == "/no_think":
        session.thinking = False
        out.write("thinking off\n")
    elif name == "/reset":
        session.reset()
        out.write("conversation cleared\n")
    elif name == "/help":
        out.write(HELP_TEXT + "\n")
    else:
        out.write(f"unknown command {command.strip()}; /help lists the commands\n")
    out.flush()
    return True


def read_message(stdin: TextIO, interactive_terminal: bool) -> str:
    """Read one line; raise EOFError at the end of input (Ctrl-D on a terminal)."""
    if interactive_terminal:
        return input("User: ")
    line = stdin.readline()
    if not line:
        raise EOFError
    return line.rstrip("\n")


def run_interactive(generator: Generator, args: argparse.Namespace, stdin: TextIO = sys.stdin,
                    out: TextIO = sys.stdout) -> int:
    """Run the chat until /exit, end of input, or Ctrl-C; return the exit status (0)."""
    session = ChatSession(args.system, args.think)
    interactive_terminal = stdin.isatty() and stdin is sys.stdin
    if interactive_terminal:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass
    try:
        # the ready line sits inside the try, so Ctrl-C right after it still ends cleanly
        if not args.quiet:
            mode = "on" if session.thinking else "off"
            print(f"interactive chat, thinking {mode}: type a message; /help lists the commands; "
                  "Ctrl-D or /exit ends it", file=sys.stderr, flush=True)
        while True:
            try:
                line = read_message(stdin, interactive_terminal)
            except EOFError:
                if interactive_terminal:
                    out.write("\n")  # end the "User: " line that Ctrl-D left open
                break
            message = line.strip()
            if not message:
                continue
            if not interactive_terminal:
                # piped input is not echoed by a terminal, so write it into the transcript
                out.write(f"User: {message}\n")
            if message.startswith("/") and len(message.split()) == 1:
                if not handle_command(message, session, out):
                    break
                continue
            answer_turn(generator, session, message, args, out)
    except KeyboardInterrupt:
        out.write("\n")
    out.flush()
    return 0


def answer_turn(generator: Generator, session: ChatSession, message: str,
                args: argparse.Namespace, out: TextIO) -> None:
    """Stream the answer to `message` and add the turn to the conversation."""
    prompt_ids = fit_prompt(generator, session, message, args.max_new_tokens)
    if prompt_ids is None:
        print(f"error: this message alone plus --max-new-tokens {args.max_new_tokens} exceeds the "
              f"context of {generator.context_length} positions; send a shorter message",
              file=sys.stderr, flush=True)
        return
    _, reply = run_chat_turn(generator, session.messages_with(message), session.thinking, args,
                             stream=True, out=out, prompt_ids=prompt_ids)
    session.add_turn(message, reply.history_content(session.thinking))
