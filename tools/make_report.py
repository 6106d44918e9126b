"""Generate the LaTeX inputs of latex/report.tex from the results in evaluation/.

Every number in the report comes from here: macros.tex defines one macro per number, and the
tables, figure includes and sentences that state numbers are written as separate .tex files. An
input that is missing becomes a visible "not run" marker in the PDF and is named on stderr, so a
partial run still gives a readable report.

    python -m tools.make_report [--eval-dir evaluation] [--output-dir latex/generated]

The shared LaTeX helpers are in tools/report_latex.py and the sections in tools/report_part1.py,
tools/report_part2.py and tools/report_listings.py. This module writes the front matter and runs
the sections in order.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from tools.provenance import SMOKE_BANNER, run_profile
from tools.report_latex import (NOT_RUN, REPO_ROOT, Report, ascii_text, fmt_number, fmt_percent,
                                fmt_scientific, latex_escape, macro_name)
from tools.report_listings import LISTING_WIDTH, MAX_BLOCK_LINES, write_code_excerpts
from tools.report_part1 import RUN_MACRO, RUNS, write_part1
from tools.report_part2 import parity_sentence, write_part2
from tools.student import load_student_info

# Names that tests and other modules import from here.
__all__ = ["LISTING_WIDTH", "MAX_BLOCK_LINES", "RUN_MACRO", "RUNS", "SMOKE_BANNER", "Report",
           "ascii_text", "build_report", "fmt_number", "fmt_percent", "fmt_scientific",
           "latex_escape", "macro_name", "main", "parity_sentence", "write_code_excerpts"]


# header and profile

def write_header(report: Report) -> None:
    info = load_student_info()
    report.define("StudentName", latex_escape(info.name) or NOT_RUN)
    report.define("StudentID", latex_escape(info.student_id) or NOT_RUN)
    collaborators = "; ".join(latex_escape(name) for name in info.collaborators) or "none"
    ai_tools = "; ".join(latex_escape(name) for name in info.ai_tools) or "none"
    lines = [
        "\\begin{tabular}{@{}ll@{}}",
        "\\textbf{Name} & \\StudentName{} \\\\",
        "\\textbf{Student ID} & \\StudentID{} \\\\",
        f"\\textbf{{Collaborators consulted}} & {collaborators} \\\\",
        f"\\textbf{{AI tools used}} & {ai_tools} \\\\",
        "\\end{tabular}",
    ]
    if info.is_example:
        lines.append("\n\\noindent\\textcolor{red}{\\textbf{These are the example values of "
                     "student.example.toml: copy it to student.toml and fill it in, or set "
                     "STUDENT\\_NAME and STUDENT\\_ID.}}")
    report.files["header.tex"] = "\n".join(lines) + "\n"


def write_profile(report: Report) -> None:
    smoke = run_profile() == "smoke"
    report.define("RunProfile", run_profile())
    report.define("SmokeBanner", latex_escape(SMOKE_BANNER))
    report.files["profile.tex"] = "\\smoketrue\n" if smoke else "\\smokefalse\n"


def write_missing(report: Report) -> None:
    if not report.missing:
        report.files["missing.tex"] = ""
        return
    items = "\n".join(f"\\item {latex_escape(path)}" for path in report.missing)
    report.files["missing.tex"] = (
        "\\noindent\\textcolor{red}{\\textbf{Not run: this report was built while these inputs "
        "were missing, so the places that need them say ``not run''.}}\n"
        f"\\begin{{itemize}}\n{items}\n\\end{{itemize}}\n")


def build_report(eval_dir: Path, output_dir: Path) -> Report:
    """Regenerate OUTPUT_DIR from EVAL_DIR and return the report (its .missing lists gaps)."""
    if output_dir.exists():
        shutil.rmtree(output_dir)
    output_dir.mkdir(parents=True)
    report = Report(eval_dir, output_dir)
    write_profile(report)
    write_header(report)
    write_part1(report)
    write_part2(report)
    write_code_excerpts(report)
    write_missing(report)
    report.write()
    return report


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Write latex/generated/*.tex from evaluation/.")
    parser.add_argument("--eval-dir", type=Path, default=REPO_ROOT / "evaluation",
                        help="folder with the results (default: evaluation/)")
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "latex" / "generated",
                        help="folder to (re)create with the generated .tex files and figures "
                             "(default: latex/generated/)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        report = build_report(args.eval_dir, args.output_dir)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path in report.missing:
        print(f"warning: missing input, marked 'not run' in the report: {path}", file=sys.stderr)
    print(f"wrote {len(report.macros)} macros and {len(report.files)} files to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
