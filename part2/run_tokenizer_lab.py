"""Execute part2/Tokenizer_Lab.ipynb headless and save the executed notebook, HTML and ID analysis.

    python -m part2.run_tokenizer_lab --output-dir evaluation/part2 [--tokenizer-dir T] [--student-id ID]

The notebook runs with nbclient in a kernel started from the current interpreter, with the
repository root as working directory. The tokenizer directory, the --student-id value and the
output directory reach it through environment variables (TOKENIZER_DIR, TOKENIZER_LAB_STUDENT_ID
and TOKENIZER_LAB_OUTPUT_DIR), and the notebook writes id_analysis.json itself, so the file contains
exactly what the notebook showed.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from part2.tokenizer_lab import (ID_ANALYSIS_FILE, OUTPUT_DIR_ENV, STUDENT_ID_OPTION_ENV,
                                 TOKENIZER_DIR_ENV, TokenizerNotFoundError, resolve_tokenizer_dir)
from tools.provenance import SMOKE_BANNER, collect_provenance, is_smoke, run_profile, write_atomic

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO_ROOT / "part2" / "Tokenizer_Lab.ipynb"
EXECUTED_NOTEBOOK = "Tokenizer_Lab.ipynb"
HTML_EXPORT = "Tokenizer_Lab.html"
DEFAULT_CELL_TIMEOUT_S = 600
# jupyter_client replaces a kernelspec command of "python" with sys.executable, so this kernel
# runs in the interpreter that runs this script (the project's .venv when started from it).
KERNEL_NAME = "python3"


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Execute the tokenizer lab notebook headless and save the executed notebook, "
                    "an HTML export and id_analysis.json.")
    parser.add_argument("--output-dir", required=True, type=Path,
                        help="directory for Tokenizer_Lab.ipynb, Tokenizer_Lab.html and "
                             "id_analysis.json (created if missing)")
    parser.add_argument("--tokenizer-dir", type=Path, default=None,
                        help="tokenizer directory (default: $TOKENIZER_DIR, else part2/tokenizer/)")
    parser.add_argument("--student-id", default=None,
                        help="student ID to analyse (default: $STUDENT_ID, else student.toml, "
                             "else the marked example value)")
    parser.add_argument("--timeout", type=int, default=DEFAULT_CELL_TIMEOUT_S,
                        help=f"time limit per notebook cell (seconds, default {DEFAULT_CELL_TIMEOUT_S})")
    return parser


def kernel_environment(tokenizer_dir: Path, output_dir: Path, student_id: str | None) -> dict[str, str]:
    """Return the environment of the notebook kernel: ours plus the lab's inputs."""
    env = dict(os.environ)
    env[TOKENIZER_DIR_ENV] = str(tokenizer_dir.resolve())
    env[OUTPUT_DIR_ENV] = str(output_dir.resolve())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.pop(STUDENT_ID_OPTION_ENV, None)
    if student_id is not None:
        env[STUDENT_ID_OPTION_ENV] = student_id.strip()
    return env


def execute_notebook(env: dict[str, str], timeout: int):
    """Run the notebook top to bottom in a fresh kernel and return the executed notebook."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name=KERNEL_NAME,
                            resources={"metadata": {"path": str(REPO_ROOT)}})
    client.execute(env=env)
    return notebook


def mark_smoke(notebook) -> None:
    """Put the smoke banner at the top of the executed notebook, so its HTML shows it too."""
    import nbformat

    notebook.cells.insert(0, nbformat.v4.new_markdown_cell(f"**{SMOKE_BANNER}**"))


def save_outputs(notebook, output_dir: Path, settings: dict) -> None:
    import nbformat
    from nbconvert import HTMLExporter

    notebook.metadata["provenance"] = collect_provenance(settings)
    write_atomic(output_dir / EXECUTED_NOTEBOOK, nbformat.writes(notebook))
    html, _ = HTMLExporter().from_notebook_node(notebook)
    write_atomic(output_dir / HTML_EXPORT, html)


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        tokenizer_dir = resolve_tokenizer_dir(args.tokenizer_dir)
    except TokenizerNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.student_id is not None and not args.student_id.strip():
        print("error: --student-id is empty; pass an ID or leave the flag out", file=sys.stderr)
        return 2

    output_dir = args.output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / ID_ANALYSIS_FILE).unlink(missing_ok=True)
    settings = {"tokenizer_dir": str(tokenizer_dir), "student_id_given": args.student_id is not None,
                "profile": run_profile(), "timeout_s": args.timeout}
    print(f"executing {NOTEBOOK.relative_to(REPO_ROOT)} with tokenizer {tokenizer_dir}")

    from nbclient.exceptions import CellExecutionError

    try:
        notebook = execute_notebook(kernel_environment(tokenizer_dir, output_dir, args.student_id),
                                    args.timeout)
    except CellExecutionError as error:
        print(f"error: the notebook failed in a cell: {str(error).strip().splitlines()[-1]}",
              file=sys.stderr)
        return 1
    if is_smoke():
        mark_smoke(notebook)
    save_outputs(notebook, output_dir, settings)

    analysis_path = output_dir / ID_ANALYSIS_FILE
    if not analysis_path.is_file():
        print(f"error: the notebook ran but did not write {analysis_path}", file=sys.stderr)
        return 1
    print(f"wrote {output_dir / EXECUTED_NOTEBOOK}, {output_dir / HTML_EXPORT} and {analysis_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
