"""Part 2 sections of the report: RocLM parity checks, generation speed, the generation samples
and the tokenizer analysis of the student ID."""
from __future__ import annotations

import re
from typing import Any

from tools.report_latex import (MAX_TABLE_ROWS, Report, breakable, dict_rows, find_values,
                                fmt_number, fmt_percent, fmt_scientific, fmt_yes_no, is_number,
                                latex_escape, macro_name, tabularx_table, token_text)
from tools.report_listings import MAX_BLOCK_LINES, write_samples

# Part 2: parity

def parity_sentence(parity: dict[str, Any]) -> str:
    # Match difference keys only, because parity.json also records max_abs_logit, the largest logit.
    diffs = [value for _, value in find_values(parity, r"diff")
             if isinstance(value, (int, float)) and not isinstance(value, bool)]
    verdicts = [value for _, value in find_values(parity, r"^(passed|pass|ok|match|equal)")
                if isinstance(value, bool)]
    parts = []
    if verdicts:
        parts.append(f"{sum(verdicts)} of {len(verdicts)} recorded checks pass")
    if diffs:
        parts.append(f"the largest absolute difference over all checks is {fmt_number(max(diffs), 2)}")
    if not parts:
        return ""
    sentence = " and ".join(parts)
    return sentence[0].upper() + sentence[1:] + ".\n\n"


def greedy_cell(check: dict[str, Any]) -> str:
    if "greedy_tokens_equal" not in check:
        return "--"
    count = check.get("greedy_tokens")
    if check["greedy_tokens_equal"]:
        return f"yes ({count})" if is_number(count) else "yes"
    first = check.get("first_differing_token")
    return "\\textcolor{red}{no}" + (f" (from {first})" if is_number(first) else "")


def parity_table(report: Report, parity: dict[str, Any]) -> str:
    """Return one table row per check of parity.json; every value goes through a macro."""
    checks = dict_rows(parity, "checks")
    if not checks:
        return "\\notrun{}: parity.json records no checks.\n"
    rows = []
    for number, check in enumerate(checks[:MAX_TABLE_ROWS], start=1):
        prefix = "ParityCheck" + macro_name(number)
        cells = [breakable(check.get("check", "--")), breakable(check.get("config", "--")),
                 report.define(prefix + "MaxDiff", fmt_scientific(check.get("max_abs_logit_diff"))),
                 report.define(prefix + "Tolerance", fmt_scientific(check.get("tolerance"))),
                 report.define(prefix + "Greedy", greedy_cell(check)),
                 report.define(prefix + "Passed", fmt_yes_no(check.get("passed")))]
        rows.append(" & ".join(cells) + " \\\\")
    header = "Check & Configuration & Max $|\\Delta|$ & Tol. & Greedy eq. & Pass"
    caption = ("RocLM against transformers' \\texttt{Qwen3ForCausalLM} with the same weights. "
               "Max $|\\Delta|$: maximum absolute difference of the logits over all positions "
               "and the vocabulary. Tol.: the tolerance on it. Greedy eq.: whether greedy "
               "decoding chose the same tokens (in brackets the number of tokens compared, or "
               "the first position that differs); -- where the check compares logits only. "
               "Pass: the difference is within the tolerance and, where compared, the greedy "
               "tokens are equal.")
    ragged = ">{\\raggedright\\arraybackslash}X"
    return tabularx_table(ragged * 2 + "rrll", header, rows, caption, "tab:parity", len(checks))


def write_parity(report: Report, parity: dict[str, Any]) -> str:
    text = parity_sentence(parity)
    all_passed = parity.get("all_passed")
    if isinstance(all_passed, bool):
        text += f"All checks passed: {report.define('ParityAllPassed', fmt_yes_no(all_passed))}."
    if is_number(parity.get("seconds")):
        text += (f" The check took {report.define('ParitySeconds', fmt_number(parity['seconds']))}"
                 " s.")
    return text + "\n\n" + parity_table(report, parity)


# Part 2: generation speed

IMPLEMENTATION_LABEL = {"roclm": "RocLM", "transformers": "transformers",
                        "roclm_dense": "RocLM, dense weights"}
TARGET_PATTERNS = (
    (re.compile(r"^decode_ratio_(\w+?)_at_least_([\d.]+)$"),
     "RocLM decode speed at least {1}$\\times$ that of transformers, {0}"),
    (re.compile(r"^roofline_fraction_(\w+?)_at_least_([\d.]+)$"),
     "RocLM decode speed at least {1} of the roofline, {0}"),
    (re.compile(r"^long_context_within_([\d.]+)x$"),
     "Per-token decode time at the longest context within {0}$\\times$ that at the shortest"),
)


def benchmark_speed_table(report: Report, devices: list[dict[str, Any]]) -> str:
    rows = []
    for device in devices:
        for dtype_name, entry in (device.get("dtypes") or {}).items():
            roofline = entry.get("roofline") or {}
            for implementation, numbers in (entry.get("implementations") or {}).items():
                prefix = "Bench" + macro_name(device.get("device"), dtype_name, implementation)
                is_roclm = implementation == "roclm"
                cells = [latex_escape(device.get("device", "--")), latex_escape(dtype_name),
                         latex_escape(IMPLEMENTATION_LABEL.get(implementation, implementation)),
                         report.define(prefix + "Prefill",
                                       fmt_number(numbers.get("prefill_tokens_per_s"))),
                         report.define(prefix + "Decode",
                                       fmt_number(numbers.get("decode_tokens_per_s"), 2)),
                         report.define(prefix + "DecodeRatio",
                                       fmt_number(entry.get("decode_ratio"), 2)) if is_roclm else "",
                         report.define(prefix + "PrefillRatio",
                                       fmt_number(entry.get("prefill_ratio"), 2)) if is_roclm else "",
                         report.define(prefix + "Roofline",
                                       fmt_number(roofline.get("roofline_tokens_per_s"))),
                         report.define(prefix + "RooflineFraction",
                                       fmt_percent(roofline.get(f"{implementation}_fraction")))]
                rows.append(" & ".join(cells) + " \\\\")
    if not rows:
        return "\\notrun{}: benchmark.json records no speed measurements.\n"
    header = ("& & & \\multicolumn{2}{c}{tokens/s} & \\multicolumn{2}{c}{ratio} & "
              "\\multicolumn{2}{c}{roofline} \\\\\n"
              "\\cmidrule(lr){4-5}\\cmidrule(lr){6-7}\\cmidrule(lr){8-9}\n"
              "Device & dtype & Implementation & prefill & decode & decode & prefill & tokens/s "
              "& fraction")
    caption = ("Greedy generation at batch size 1, median over the repeats. Ratios are RocLM "
               "over transformers. " + _weights_sentence(devices) + "The roofline is the "
               "measured read bandwidth divided by the bytes one decode step reads "
               "(Table~\\ref{tab:bench-roofline}); ``of roofline'' is the decode speed as a "
               "fraction of it.")
    return tabularx_table("ll>{\\raggedright\\arraybackslash}Xrrrrrr", header, rows, caption,
                          "tab:bench-speed")


def _weights_sentence(devices: list[dict[str, Any]]) -> str:
    """Say how RocLM stored its weights in each measured device and dtype."""
    parts, dense_row = [], False
    for device in devices:
        for dtype_name, entry in (device.get("dtypes") or {}).items():
            weights = entry.get("roclm_weights")
            if isinstance(weights, str):
                parts.append(f"{device.get('device', '--')} {dtype_name}: {weights}")
            dense_row = dense_row or "roclm_dense" in (entry.get("implementations") or {})
    if not parts:
        return ""
    text = "RocLM's weights (" + "; ".join(latex_escape(part) for part in parts) + "). "
    if dense_row:
        text += "``RocLM, dense weights'' is the same model without the oneDNN packing. "
    return text


def benchmark_context_table(report: Report, devices: list[dict[str, Any]]) -> str:
    rows, ratios = [], []
    for device in devices:
        name = device.get("device", "--")
        entry = (device.get("dtypes") or {}).get("float32") or {}
        scaling = entry.get("context_scaling") or {}
        for row in scaling.get("rows") or []:
            seconds = row.get("seconds_per_token")
            milliseconds = 1000 * seconds if is_number(seconds) else None
            prefix = "Bench" + macro_name(name, "context", row.get("context"))
            rows.append(f"{latex_escape(name)} & KV cache & "
                        f"{report.define(prefix + 'Tokens', fmt_number(row.get('context')))} & "
                        f"{report.define(prefix + 'Ms', fmt_number(milliseconds))} \\\\")
        recompute = entry.get("recompute") or {}
        if recompute:
            seconds = recompute.get("seconds_per_token")
            milliseconds = 1000 * seconds if is_number(seconds) else None
            prefix = "Bench" + macro_name(name, "recompute")
            context = report.define(prefix + "Context", fmt_number(recompute.get("context")))
            rows.append(f"{latex_escape(name)} & no cache, full recompute & {context} & "
                        f"{report.define(prefix + 'Ms', fmt_number(milliseconds))} \\\\")
        if "long_over_short" in scaling:
            ratios.append(report.define("Bench" + macro_name(name, "long over short"),
                                        fmt_number(scaling["long_over_short"], 2)))
    if not rows:
        return ""
    ratio_text = ""
    if ratios:
        ratio_text = (" The longest context costs " + ", ".join(ratios)
                      + " times the per-token time of the shortest.")
    caption = ("RocLM's float32 decode time per token after a prompt of the given length (median "
               "over the decoded tokens), and the same greedy decoding without a KV cache, which "
               "runs the whole sequence again for every token." + ratio_text)
    return tabularx_table("lXrr", "Device & Decoding & Context tokens & ms per token", rows,
                          caption, "tab:bench-context")


def benchmark_roofline_table(report: Report, devices: list[dict[str, Any]]) -> str:
    rows = []
    for device in devices:
        name = device.get("device", "--")
        bandwidth = device.get("bandwidth") or {}
        prefix = "Bench" + macro_name(name)
        buffer_bytes = bandwidth.get("buffer_bytes")
        read = report.define(prefix + "ReadBandwidth", fmt_number(bandwidth.get("read_gb_per_s")))
        copy = report.define(prefix + "CopyBandwidth", fmt_number(bandwidth.get("copy_gb_per_s")))
        buffer = report.define(prefix + "BufferMiB", fmt_number(
            buffer_bytes // 2**20 if isinstance(buffer_bytes, int) else None))
        for dtype_name, entry in (device.get("dtypes") or {}).items():
            roofline = entry.get("roofline") or {}
            dtype_prefix = prefix + macro_name(dtype_name)
            step_bytes = roofline.get("bytes_per_token")
            cells = [latex_escape(name), buffer, read, copy, latex_escape(dtype_name),
                     report.define(dtype_prefix + "StepMB", fmt_number(
                         step_bytes / 1e6 if is_number(step_bytes) else None)),
                     report.define(dtype_prefix + "AverageContext",
                                   fmt_number(roofline.get("average_context")))]
            rows.append(" & ".join(cells) + " \\\\")
    if not rows:
        return ""
    caption = ("Roofline inputs. Read and copy bandwidth are the best of several sums and "
               "copies of a buffer of the given size in MiB (copy counts the bytes read and "
               "written). A decode step reads every weight once plus the cached keys and values "
               "at the average context of the run; MB per step is that byte count in $10^6$ "
               "bytes.")
    return tabularx_table("Xrrrlrr", "Device & Buffer MiB & Read GB/s & Copy GB/s & dtype & "
                          "MB per step & Avg. context", rows, caption, "tab:bench-roofline")


def target_measurement(report: Report, key: str) -> str:
    """Return the macro of the measured value that the target KEY was judged on, or --."""
    decode = re.match(r"^decode_ratio_(\w+?)_at_least_", key)
    if decode:
        return f"\\{'Bench' + macro_name('cpu', decode.group(1), 'roclm', 'DecodeRatio')}{{}}"
    fraction = re.match(r"^roofline_fraction_(\w+?)_at_least_", key)
    if fraction:
        return f"\\{'Bench' + macro_name('cpu', fraction.group(1), 'roclm', 'RooflineFraction')}{{}}"
    if key.startswith("long_context_within_"):
        return f"\\{'Bench' + macro_name('cpu', 'long over short')}{{}}"
    return "--"


def benchmark_targets_table(report: Report, targets: dict[str, Any]) -> str:
    if not targets:
        return "\\noindent No targets were evaluated (the benchmark checks them on the CPU only).\n"
    rows = []
    for key, met in targets.items():
        description = latex_escape(key)
        for pattern, template in TARGET_PATTERNS:
            match = pattern.match(key)
            if match:
                groups = [latex_escape(group) for group in match.groups()]
                if "roofline" in key:
                    groups[1] = fmt_percent(float(match.group(2)))
                description = template.format(*groups)
                break
        measured = target_measurement(report, key)
        if measured != "--" and measured[1:-2] not in report.macros:
            measured = "--"
        met_cell = report.define("Bench" + macro_name("target", key), fmt_yes_no(met))
        rows.append(f"{description} & {measured} & {met_cell} \\\\")
    caption = "Speed targets, judged on the CPU results of Table~\\ref{tab:bench-speed}."
    return tabularx_table("Xrl", "Target & Measured & Met", rows, caption, "tab:bench-targets")


def benchmark_setup_sentence(report: Report, benchmark: dict[str, Any]) -> str:
    machine = benchmark.get("machine") or {}
    settings = (benchmark.get("provenance") or {}).get("settings") or {}

    def value(name: str, raw: Any, digits: int = 1) -> str:
        return report.define("Bench" + name, fmt_number(raw, digits) if raw is not None else "--")

    text = (f"Hardware: {value('Cpu', machine.get('cpu'))} with "
            f"{value('LogicalCores', machine.get('logical_cores'))} logical cores, "
            f"{value('TorchThreads', machine.get('torch_threads'))} PyTorch threads")
    if machine.get("cuda_device"):
        text += f" and the GPU {value('CudaDevice', machine['cuda_device'])}"
    text += (f"; the one-minute load average was {value('LoadStart', machine.get('load_average_1min_at_start'))}"
             f" at the start and {value('LoadEnd', machine.get('load_average_1min_at_end'))} at "
             f"the end. Mode {value('Mode', benchmark.get('mode'))}: model shape "
             f"{value('ShapeName', settings.get('shape_name'))}, "
             f"{value('PromptTokens', settings.get('prompt_tokens'))}-token prompt, "
             f"{value('NewTokens', settings.get('new_tokens'))} new tokens, "
             f"{value('Repeats', settings.get('repeats'))} repeat(s), weights "
             f"{value('Weights', settings.get('weights'))}. The whole benchmark took "
             f"{value('Seconds', benchmark.get('seconds'))} s.")
    parity = next((entry["parity"] for device in benchmark.get("devices") or []
                   for entry in (device.get("dtypes") or {}).values() if entry.get("parity")), None)
    if parity:
        text += (f" Before timing, the two implementations' float32 logits on a "
                 f"{value('ParityPromptTokens', parity.get('prompt_tokens'))}-token prompt "
                 f"differ by at most "
                 f"{report.define('BenchParityMaxDiff', fmt_scientific(parity.get('max_abs_logit_diff')))}.")
    return text + "\n\n"


def write_benchmark(report: Report, benchmark: dict[str, Any]) -> str:
    devices = dict_rows(benchmark, "devices")
    return (benchmark_setup_sentence(report, benchmark)
            + benchmark_speed_table(report, devices)
            + benchmark_roofline_table(report, devices)
            + benchmark_context_table(report, devices)
            + benchmark_targets_table(report, benchmark.get("targets") or {}))


# Part 2: tokenizer analysis of the student ID

def id_sentence(report: Report, analysis: dict[str, Any]) -> str:
    tokenizer = analysis.get("tokenizer") or {}

    def value(name: str, raw: Any) -> str:
        return report.define("IdAnalysis" + name, fmt_number(raw) if raw is not None else "--")

    student_id = analysis.get("student_id")
    student_id = report.define("IdAnalysisStudentId",
                               latex_escape(student_id) if student_id is not None else "--")
    text = (f"The ID {student_id} "
            f"(from {value('StudentIdSource', analysis.get('student_id_source'))}) is encoded by "
            f"the tokenizer ``{value('TokenizerKind', tokenizer.get('kind'))}'' "
            f"({value('BaseVocabSize', tokenizer.get('base_vocab_size'))} base tokens, "
            f"{value('TotalTokens', tokenizer.get('total_tokens'))} with the added special "
            f"tokens) into {value('TokenCount', analysis.get('token_count'))} tokens for its "
            f"{value('DigitCount', analysis.get('digit_count'))} digits. One token per digit: "
            f"{report.define('IdAnalysisOneTokenPerDigit', fmt_yes_no(analysis.get('one_token_per_digit')))}.")
    if analysis.get("student_id_is_example"):
        text += (" \\textcolor{red}{This is the example ID, not a student's: set STUDENT\\_ID or "
                 "fill in student.toml.}")
    return text + "\n\n"


def id_tokens_table(report: Report, analysis: dict[str, Any]) -> str:
    ids, tokens = analysis.get("ids") or [], analysis.get("tokens") or []
    pieces = analysis.get("pieces") or []
    if not ids and not tokens:
        return ""
    rows = []
    for index in range(max(len(ids), len(tokens))):
        prefix = "IdAnalysisToken" + macro_name(index + 1)
        cells = [report.define(prefix + "Position", fmt_number(index + 1)),
                 report.define(prefix + "Id", fmt_number(ids[index]) if index < len(ids) else "--"),
                 f"\\texttt{{{latex_escape(tokens[index])}}}" if index < len(tokens) else "--",
                 f"\\texttt{{{latex_escape(repr(pieces[index]))}}}" if index < len(pieces) else "--"]
        rows.append(" & ".join(cells) + " \\\\")
    caption = ("The ID's tokens: position, token id, token string in the vocabulary (byte-level "
               "BPE writes a leading space as \\texttt{<U+0120>}, and other non-ASCII "
               "characters are shown as code points) and the text it decodes to.")
    return tabularx_table("rrXX", "Position & Token id & Token & Decodes to",
                          rows[:MAX_TABLE_ROWS], caption,
                          "tab:id-tokens", len(rows))


def id_context_table(report: Report, analysis: dict[str, Any]) -> str:
    contexts = dict_rows(analysis, "contexts")
    if not contexts:
        return ""
    rows = []
    for number, row in enumerate(contexts[:MAX_TABLE_ROWS], start=1):
        prefix = "IdAnalysisContext" + macro_name(number)
        cells = [f"\\texttt{{{latex_escape(row.get('text', '--'))}}}",
                 report.define(prefix + "TotalTokens", fmt_number(row.get("total_tokens"))),
                 report.define(prefix + "IdTokenCount", fmt_number(row.get("id_token_count"))),
                 token_text(row.get("id_tokens")),
                 report.define(prefix + "SameAsAlone", fmt_yes_no(row.get("same_as_alone")))]
        rows.append(" & ".join(cells) + " \\\\")
    caption = ("Context effect: the ID inside short texts. Total: tokens of the whole text. "
               "ID tokens: the tokens that overlap the ID's characters (from the tokenizer's "
               "offset mapping). Same: whether they equal the tokens of the ID encoded alone.")
    return tabularx_table(">{\\raggedright\\arraybackslash}p{0.28\\linewidth}rr"
                          ">{\\raggedright\\arraybackslash}Xl",
                          "Text & Total & ID tokens & Tokens overlapping the ID & Same", rows,
                          caption, "tab:id-context", len(contexts))


def id_formats_table(report: Report, analysis: dict[str, Any]) -> str:
    formats = dict_rows(analysis, "formats")
    if not formats:
        return ""
    rows = []
    for number, row in enumerate(formats[:MAX_TABLE_ROWS], start=1):
        count = report.define("IdAnalysisFormat" + macro_name(number) + "TokenCount",
                              fmt_number(row.get("token_count")))
        rows.append(f"{latex_escape(row.get('format', '--'))} & "
                    f"\\texttt{{{latex_escape(row.get('text', '--'))}}} & {count} & "
                    f"{token_text(row.get('tokens'))} \\\\")
    caption = "The ID written in other formats: its text, token count and tokens."
    return tabularx_table(">{\\raggedright\\arraybackslash}p{0.16\\linewidth}"
                          ">{\\raggedright\\arraybackslash}p{0.24\\linewidth}r"
                          ">{\\raggedright\\arraybackslash}X",
                          "Format & Text & Tokens & Token strings", rows, caption,
                          "tab:id-formats", len(formats))


def id_digit_split_table(report: Report, scratch: dict[str, Any]) -> str:
    tokenizers = scratch.get("tokenizers") or {}
    if not tokenizers:
        return ""
    rows = []
    for number, (name, row) in enumerate(tokenizers.items(), start=1):
        count = report.define("IdAnalysisScratch" + macro_name(number) + "TokenCount",
                              fmt_number((row or {}).get("token_count")))
        rows.append(f"{latex_escape(name)} & {count} & {token_text((row or {}).get('tokens'))} \\\\")
    caption = ("Digit split: the ID under byte-level BPE tokenizers trained from scratch on "
               + latex_escape(scratch.get("corpus", "a local corpus"))
               + ", named by vocabulary size. They split digits as Qwen3's pre-tokenizer does, "
               "except the one marked ``digits kept together'', which uses GPT-2's.")
    return tabularx_table(">{\\raggedright\\arraybackslash}p{0.3\\linewidth}r"
                          ">{\\raggedright\\arraybackslash}X",
                          "Tokenizer & Tokens & Token strings", rows, caption, "tab:id-digits")


def id_fertility_table(report: Report, scratch: dict[str, Any]) -> str:
    """Return tokens per word and per character, one row per tokenizer, a column pair per text."""
    records = dict_rows(scratch, "fertility")
    if not records:
        return ""
    tokenizers = list(dict.fromkeys(row.get("tokenizer", "--") for row in records))
    texts = list(dict.fromkeys(row.get("text", "--") for row in records))
    cells = {(row.get("tokenizer", "--"), row.get("text", "--")): row for row in records}
    rows = []
    for tokenizer_number, tokenizer in enumerate(tokenizers, start=1):
        row_cells = [latex_escape(tokenizer)]
        for text_number, text in enumerate(texts, start=1):
            record = cells.get((tokenizer, text), {})
            prefix = "IdAnalysisFertility" + macro_name(tokenizer_number, "text", text_number)
            row_cells.append(report.define(prefix + "PerWord",
                                           fmt_number(record.get("tokens_per_word"), 2)))
            row_cells.append(report.define(prefix + "PerCharacter",
                                           fmt_number(record.get("tokens_per_character"), 2)))
        rows.append(" & ".join(row_cells) + " \\\\")
    groups = " & ".join(f"\\multicolumn{{2}}{{c}}{{{latex_escape(text)}}}" for text in texts)
    rules = "".join(f"\\cmidrule(lr){{{2 + 2 * index}-{3 + 2 * index}}}"
                    for index in range(len(texts)))
    header = (f"& {groups} \\\\\n{rules}\nTokenizer" + " & /word & /char" * len(texts))
    caption = ("Fertility: tokens per whitespace-separated word (/word) and per character "
               "(/char) on texts outside the BPE training split. Chinese has no spaces, so its "
               "words are undercounted and its tokens per word overstated.")
    return tabularx_table(">{\\raggedright\\arraybackslash}X" + "rr" * len(texts), header, rows,
                          caption, "tab:id-fertility")


def write_id_analysis(report: Report, analysis: dict[str, Any]) -> str:
    scratch = analysis.get("scratch_bpe") or {}
    return (id_sentence(report, analysis) + id_tokens_table(report, analysis)
            + id_context_table(report, analysis) + id_formats_table(report, analysis)
            + id_digit_split_table(report, scratch) + id_fertility_table(report, scratch))


def write_part2(report: Report) -> None:
    parity = report.load_json("part2/parity.json")
    report.files["part2_parity.tex"] = (
        write_parity(report, parity) if parity is not None
        else "\\notrun{}: evaluation/part2/parity.json is missing.\n")

    benchmark = report.load_json("part2/benchmark.json")
    report.files["part2_benchmark.tex"] = (
        write_benchmark(report, benchmark) if benchmark is not None
        else "\\notrun{}: evaluation/part2/benchmark.json is missing.\n")

    report.define("SampleMaxBlockLines", str(MAX_BLOCK_LINES))
    report.files["part2_generation.tex"] = (
        "\\subsection*{Generation samples}\n"
        + write_samples(report, "part2/generation_samples.md", "generation_samples")
        + "\\subsection*{Chat transcript}\n"
        + write_samples(report, "part2/chat_transcript.md", "chat_transcript"))

    analysis = report.load_json("part2/id_analysis.json")
    report.files["part2_tokenizer.tex"] = (
        write_id_analysis(report, analysis) if analysis is not None
        else "\\notrun{}: evaluation/part2/id\\_analysis.json is missing.\n")
