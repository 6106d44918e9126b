"""LaTeX helpers shared by the report sections: escaping, number formatting, macro names,
generic tables and the Report that collects macros and generated files."""
from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

from tools.provenance import write_atomic

REPO_ROOT = Path(__file__).resolve().parents[1]

DIGIT_WORDS = ("Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine")
NOT_RUN = r"\notrun{}"


MAX_TABLE_ROWS = 60
MAX_RECORD_COLUMNS = 7


# formatting

def latex_escape(text: Any) -> str:
    """Escape LaTeX's special characters and write control and non-ASCII characters as <U+XXXX>."""
    replacements = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                    "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                    "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}"}
    escaped = "".join(replacements.get(char, char) for char in str(text))
    return "".join(char if 0x20 <= ord(char) < 0x7F else f"<U+{ord(char):04X}>" for char in escaped)


def ascii_text(text: str) -> str:
    """Return TEXT with every control and non-ASCII character but newline written as <U+XXXX>,
    which pdflatex's listings package can typeset without a Unicode font."""
    text = text.replace("\t", "    ")
    return "".join(char if 0x20 <= ord(char) < 0x7F or char == "\n" else f"<U+{ord(char):04X}>"
                   for char in text)


def macro_name(*parts: Any) -> str:
    """Build a LaTeX macro name (letters only) from key parts: ('top1', 'f1') -> 'TopOneFOne'."""
    words = []
    for part in parts:
        for token in re.split(r"[^A-Za-z0-9]+", str(part)):
            if token:
                token = re.sub(r"\d", lambda match: DIGIT_WORDS[int(match.group())], token)
                words.append(token[0].upper() + token[1:])
    return "".join(words)


def fmt_percent(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        return NOT_RUN
    return f"{100 * value:.1f}\\%"


def fmt_number(value: Any, digits: int = 1) -> str:
    if value is None:
        return "--"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}".replace(",", "{,}")
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return latex_escape(str(value))
        if value != 0 and abs(value) < 10 ** -digits:
            mantissa, exponent = f"{value:.2e}".split("e")
            return f"${mantissa}\\times 10^{{{int(exponent)}}}$"
        return f"{value:,.{digits}f}".replace(",", "{,}")
    return latex_escape(value)


def fmt_general(value: Any) -> str:
    """Format a JSON scalar of unknown meaning: floats with 4 significant digits."""
    if isinstance(value, float) and not (math.isnan(value) or math.isinf(value)):
        if value != 0 and abs(value) < 1e-3:
            return fmt_number(value, 3)
        return latex_escape(f"{value:.4g}")
    return fmt_number(value)


def fmt_millions(value: Any) -> str:
    return f"{value / 1e6:.2f}\\,M" if isinstance(value, (int, float)) else NOT_RUN


# report state

class Report:
    """Collects macros, generated files and missing inputs, then writes them out."""

    def __init__(self, eval_dir: Path, output_dir: Path):
        self.eval_dir = eval_dir
        self.output_dir = output_dir
        self.macros: dict[str, str] = {}
        self.missing: list[str] = []
        self.files: dict[str, str] = {}

    def define(self, name: str, value: str) -> str:
        """Define macro NAME (a unique suffix is added on a clash) and return its use, '\\NAME{}'."""
        unique, counter = name, 1
        while unique in self.macros:
            counter += 1
            unique = name + "X" * counter
        self.macros[unique] = value
        return f"\\{unique}{{}}"

    def load_json(self, relative: str) -> dict[str, Any] | None:
        path = self.eval_dir / relative
        if not path.is_file():
            self.missing.append(f"{self.eval_dir.name}/{relative}")
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            self.missing.append(f"{self.eval_dir.name}/{relative} (invalid JSON: {error})")
            return None

    def copy_figure(self, relative: str, name: str) -> str | None:
        """Copy evaluation/RELATIVE into figures/NAME and return its path for \\includegraphics."""
        source = self.eval_dir / relative
        if not source.is_file():
            self.missing.append(f"{self.eval_dir.name}/{relative}")
            return None
        target = self.output_dir / "figures" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return f"generated/figures/{name}"

    def write(self) -> None:
        lines = ["% Generated by tools/make_report.py from evaluation/; do not edit."]
        lines += [f"\\newcommand{{\\{name}}}{{{value}}}" for name, value in self.macros.items()]
        write_atomic(self.output_dir / "macros.tex", "\n".join(lines) + "\n")
        for name, text in self.files.items():
            write_atomic(self.output_dir / name, "% Generated by tools/make_report.py.\n" + text)


def figure(path: str | None, caption: str, width: str = "0.9\\linewidth") -> str:
    if path is None:
        return (f"\\begin{{center}}\\notrun{{}}: figure ``{caption}''"
                f" (its image is missing)\\end{{center}}\n")
    return (f"\\begin{{figure}}[H]\\centering\n\\includegraphics[width={width}]{{{path}}}\n"
            f"\\caption{{{caption}}}\n\\end{{figure}}\n")


# JSON flattening and generic tables

def is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def flatten(data: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Flatten nested JSON into (key path, scalar) pairs, leaving out provenance blocks; a list of
    scalars becomes one comma-separated string."""
    if isinstance(data, dict):
        pairs = []
        for key, value in data.items():
            if key != "provenance":
                pairs.extend(flatten(value, prefix + (str(key),)))
        return pairs
    if isinstance(data, list):
        if all(is_scalar(item) for item in data):
            return [(prefix, ", ".join(str(item) for item in data))]
        pairs = []
        for index, value in enumerate(data):
            pairs.extend(flatten(value, prefix + (str(index),)))
        return pairs
    return [(prefix, data)]


def records_table(report: Report, key: str, records: list[dict[str, Any]], macro_prefix: str,
                  caption: str) -> str:
    """Define a macro per cell of a list of JSON objects and return a table with one row each."""
    columns: list[str] = []
    for record in records:
        columns += [name for name, value in record.items()
                    if name not in columns and name != "provenance" and is_scalar(value)]
    columns = columns[:MAX_RECORD_COLUMNS]
    rows = []
    for index, record in enumerate(records[:MAX_TABLE_ROWS]):
        cells = [report.define(macro_prefix + macro_name(key, index, column),
                               fmt_general(record[column])) if column in record else "--"
                 for column in columns]
        rows.append(" & ".join(cells) + " \\\\")
    header = " & ".join(f"\\textbf{{{latex_escape(column)}}}" for column in columns)
    spec = "".join(f">{{\\raggedright\\arraybackslash}}p{{{0.85 / len(columns):.3f}\\linewidth}}"
                   for column in columns)
    note = ""
    if len(records) > MAX_TABLE_ROWS:
        note = f"\\noindent The table shows the first {MAX_TABLE_ROWS} of {len(records)} rows.\n"
    return (note + f"\\begin{{longtable}}{{@{{}}{spec}@{{}}}}\n\\toprule\n{header} \\\\\n"
            "\\midrule\n\\endhead\n" + "\n".join(rows) + "\n\\bottomrule\n"
            f"\\caption{{{caption} (\\texttt{{{latex_escape(key)}}})}}\n\\end{{longtable}}\n"
            "{\\scriptsize\\ }\n")


def json_table(report: Report, data: dict[str, Any], macro_prefix: str, caption: str) -> str:
    """Define a macro for every scalar in DATA and return tables that use them: one table per
    top-level list of objects, and a key/value table for the rest."""
    tables = []
    rest = {}
    for key, value in data.items():
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            tables.append(records_table(report, key, value, macro_prefix, caption))
        else:
            rest[key] = value
    rows = []
    for path, value in flatten(rest):
        use = report.define(macro_prefix + macro_name(*path), fmt_general(value))
        rows.append(f"\\texttt{{{latex_escape('.'.join(path))}}} & {use} \\\\")
    note = ""
    if len(rows) > MAX_TABLE_ROWS:
        note = (f"\\noindent The table shows the first {MAX_TABLE_ROWS} of {len(rows)} values.\n")
        rows = rows[:MAX_TABLE_ROWS]
    if rows:
        tables.insert(0, note + "\\begin{longtable}{@{}>{\\raggedright\\arraybackslash}p{0.45\\linewidth}"
                      ">{\\raggedright\\arraybackslash}p{0.5\\linewidth}@{}}\n\\toprule\n"
                      "Key & Value \\\\\n\\midrule\n\\endhead\n" + "\n".join(rows)
                      + f"\n\\bottomrule\n\\caption{{{caption}}}\n\\end{{longtable}}\n")
    return "".join(tables)


def find_values(data: Any, pattern: str) -> list[tuple[tuple[str, ...], Any]]:
    """Return the scalars whose key path matches the regular expression PATTERN."""
    regex = re.compile(pattern, re.IGNORECASE)
    return [(path, value) for path, value in flatten(data) if path and regex.search(path[-1])]


# table cells

def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fmt_scientific(value: Any) -> str:
    """Format VALUE as $m \\times 10^{e}$ with three significant digits; zero stays 0."""
    if not is_number(value) or math.isnan(value) or math.isinf(value):
        return "--"
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"${mantissa}\\times 10^{{{int(exponent)}}}$"


def fmt_yes_no(value: Any) -> str:
    """Format True as yes and False as a red no; anything else means not recorded (--)."""
    if value is True:
        return "yes"
    if value is False:
        return "\\textcolor{red}{no}"
    return "--"


def breakable(text: Any) -> str:
    """Escape TEXT and allow line breaks after slashes and underscores (paths, config names)."""
    return latex_escape(text).replace("/", "/\\allowbreak{}").replace("\\_", "\\_\\allowbreak{}")


def token_text(tokens: Any) -> str:
    """Show a list of token strings in monospace, separated by a thin vertical bar."""
    if not isinstance(tokens, list):
        return "--"
    cells = [f"\\texttt{{{latex_escape(token)}}}" for token in tokens]
    return "\\,\\textbar\\,\\allowbreak{}".join(cells) or "--"


def tabularx_table(spec: str, header: str, rows: list[str], caption: str, label: str,
                   total: int | None = None) -> str:
    """Return a small-font tabularx table, noting when only the first rows are shown."""
    note = ""
    if total is not None and total > len(rows):
        note = f" The table shows the first {len(rows)} of {total} rows."
    return ("\\begin{table}[H]\\centering\\small\n"
            f"\\begin{{tabularx}}{{\\linewidth}}{{@{{}}{spec}@{{}}}}\n\\toprule\n{header} \\\\\n"
            "\\midrule\n" + "\n".join(rows) + "\n\\bottomrule\n\\end{tabularx}\n"
            f"\\caption{{{caption}{note}}}\n\\label{{{label}}}\n\\end{{table}}\n")
