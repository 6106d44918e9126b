"""Listings in the report: the generation samples and chat transcript as wrapped plain text, and
the RocLM definitions shown beside each formula, copied from the source that ran."""
from __future__ import annotations

import ast
import json
import re
import textwrap
from pathlib import Path

from tools.provenance import SMOKE_BANNER, run_profile, write_atomic
from tools.report_latex import REPO_ROOT, Report, ascii_text, breakable, latex_escape

ROCLM_SOURCE = REPO_ROOT / "part2" / "roclm_model.py"
# Code shown beside each formula: generated file name and the definitions, as Class.method or
# function names in part2/roclm_model.py.
CODE_EXCERPTS = {
    "code_rmsnorm.tex": ("RocLMRMSNorm.forward",),
    "code_mlp.tex": ("RocLMMLP.forward",),
    "code_attention.tex": ("RocLMAttention.forward", "RocLMAttention._explicit_attention"),
    "code_rope.tex": ("RocLMRotaryEmbedding.forward", "rotate_half", "apply_rotary_emb"),
    "code_causal_mask.tex": ("causal_mask",),
}
LISTING_WIDTH = 90  # characters per listing line in \footnotesize monospace


# Part 2: generation samples and chat transcript

# Lines of one code block shown in the PDF; a chat prompt with a long history is cut here.
MAX_BLOCK_LINES = 24


def markdown_sections(text: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Split Markdown TEXT at '## ' headings into (lines before the first, [(title, lines)])."""
    preamble: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    in_fence = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        if not in_fence and line.startswith("## "):
            sections.append((line[3:].strip(), []))
        elif sections:
            sections[-1][1].append(line)
        else:
            preamble.append(line)
    return preamble, sections


def sample_block(lines: list[str], relative: str) -> list[str]:
    """Turn one sample's Markdown lines into plain, wrapped ASCII lines: code blocks indented by
    two spaces and cut to MAX_BLOCK_LINES, blank-line runs collapsed, fences dropped."""
    output: list[str] = []
    block: list[str] | None = None
    for line in lines:
        if line.startswith("```"):
            if block is None:
                block = []
                continue
            if len(block) > MAX_BLOCK_LINES:
                block = block[:MAX_BLOCK_LINES] + [
                    f"[{len(block) - MAX_BLOCK_LINES} more lines in {relative}]"]
            output += ["  " + piece for piece in block]
            block = None
        elif block is not None:
            block += textwrap.wrap(ascii_text(line), LISTING_WIDTH - 2, break_long_words=True,
                                   drop_whitespace=False) or [""]
        else:
            output += textwrap.wrap(ascii_text(line), LISTING_WIDTH, break_long_words=True) or [""]
    compact: list[str] = []
    for line in output:
        if line.strip() or (compact and compact[-1].strip()):
            compact.append(line)
    while compact and not compact[-1].strip():
        compact.pop()
    return compact


def markdown_prose(lines: list[str]) -> str:
    """Render the bullet list and the table of a Markdown preamble; headings and the smoke
    banner are left out because the report states both itself."""
    items = [line[2:] for line in lines if line.startswith("- ")]
    table = [line for line in lines if line.startswith("|")]
    text = ""
    if items:
        text += ("\\begin{itemize}\\setlength{\\itemsep}{0pt}\\small\n"
                 + "\n".join(f"\\item {breakable(item.replace('`', ''))}" for item in items)
                 + "\n\\end{itemize}\n")
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in table
            if not re.fullmatch(r"[\s|:-]+", line)]
    if len(rows) > 1:
        width = len(rows[0])
        body = [" & ".join(latex_escape(cell) for cell in (row + [""] * width)[:width]) + " \\\\"
                for row in rows[1:]]
        header = " & ".join(latex_escape(cell) for cell in rows[0])
        text += ("\\begin{center}\\small\n\\begin{tabular}{@{}l" + "r" * (width - 1) + "@{}}\n"
                 f"\\toprule\n{header} \\\\\n\\midrule\n" + "\n".join(body)
                 + "\n\\bottomrule\n\\end{tabular}\n\\end{center}\n")
    return text


def provenance_note(sections: list[tuple[str, list[str]]], relative: str) -> str:
    """Name the commit and date of the Markdown file's provenance and where the rest is."""
    for title, lines in sections:
        if title.lower() != "provenance":
            continue
        body = "\n".join(line for line in lines if not line.startswith("```"))
        try:
            provenance = json.loads(body)
        except json.JSONDecodeError:
            provenance = {}
        commit = str(provenance.get("git_commit", ""))[:12]
        date = provenance.get("date_utc")
        generated_at = (f"They were generated at commit {latex_escape(commit)} on {latex_escape(date)}. "
                if commit and date else "")
        return (f"\\noindent\\emph{{{generated_at}The full provenance (settings, package versions, "
                f"device) is the ``Provenance'' section at the end of "
                f"\\nolinkurl{{evaluation/{relative}}}.}}\n\n")
    return (f"\\noindent\\emph{{\\nolinkurl{{evaluation/{relative}}} has no provenance "
            f"section.}}\n\n")


def write_samples(report: Report, relative: str, name: str) -> str:
    """Return the preamble and one listing per section of a Markdown file of generate."""
    source = report.eval_dir / relative
    if not source.is_file():
        report.missing.append(f"{report.eval_dir.name}/{relative}")
        return f"\\notrun{{}}: {latex_escape(relative)} is missing.\n"
    text = source.read_text(encoding="utf-8", errors="replace")
    preamble, sections = markdown_sections(text)
    output = ""
    if SMOKE_BANNER in text and run_profile() != "smoke":
        output += f"\\noindent\\textcolor{{red}}{{\\textbf{{{latex_escape(SMOKE_BANNER)}}}}}\n\n"
    output += markdown_prose(preamble)
    for number, (title, lines) in enumerate(sections, start=1):
        if title.lower() == "provenance":
            continue
        listing_name = f"{name}_{number}.txt"
        write_atomic(report.output_dir / listing_name,
                     "\n".join(sample_block(lines, relative)) + "\n")
        output += (f"\\par\\medskip\\noindent\\textbf{{{latex_escape(title)}.}}\\par\\nopagebreak\n"
                   f"\\lstinputlisting{{generated/{listing_name}}}\n")
    return output + provenance_note(sections, relative)


def find_definition(tree: ast.Module, qualified_name: str) -> ast.AST | None:
    """Return the function or method QUALIFIED_NAME ('Class.method' or 'function') in TREE."""
    scope: list[ast.stmt] = tree.body
    node = None
    for part in qualified_name.split("."):
        node = next((item for item in scope if isinstance(
            item, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and item.name == part), None)
        if node is None:
            return None
        scope = node.body
    return node


def write_code_excerpts(report: Report, source_path: Path = ROCLM_SOURCE) -> None:
    """Copy the definitions behind each formula from the RocLM source into listings, so the
    code in the PDF is the code that ran."""
    if not source_path.is_file():
        report.missing.append(str(source_path.relative_to(REPO_ROOT))
                              if source_path.is_relative_to(REPO_ROOT) else str(source_path))
        for name in CODE_EXCERPTS:
            report.files[name] = "\\notrun{}: part2/roclm\\_model.py is missing.\n"
        return
    source = source_path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    lines = source.splitlines()
    for name, definitions in CODE_EXCERPTS.items():
        blocks, absent = [], []
        for qualified_name in definitions:
            node = find_definition(tree, qualified_name)
            if node is None:
                absent.append(qualified_name)
                continue
            start = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list])
            block = lines[start - 1:node.end_lineno]
            indent = min(len(line) - len(line.lstrip()) for line in block if line.strip())
            blocks.append("\n".join(line[indent:] for line in block))
        text = ""
        if blocks:
            listing_name = "code/" + name.replace(".tex", ".py")
            write_atomic(report.output_dir / listing_name, ascii_text("\n\n".join(blocks)) + "\n")
            text += f"\\lstinputlisting[style=python]{{generated/{listing_name}}}\n"
        for qualified_name in absent:
            report.missing.append(f"{qualified_name} in part2/roclm_model.py")
            text += f"\\notrun{{}}: {latex_escape(qualified_name)} is not in part2/roclm\\_model.py.\n"
        report.files[name] = text
