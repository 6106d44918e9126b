"""Tests of the glue: run_all.sh's flags and failure path, the report generator and the package."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from _run_all_helpers import part1_benchmark, part2_inputs, write_evaluation
from conftest import REPO_ROOT
from tools import make_report
from tools.make_report import RUN_MACRO, RUNS, build_report, fmt_percent
from tools.package_submission import build_package


def read_macros(path: Path) -> dict[str, str]:
    pattern = re.compile(r"^\\newcommand\{\\([A-Za-z]+)\}\{(.*)\}$")
    return {match.group(1): match.group(2)
            for match in map(pattern.match, path.read_text().splitlines()) if match}


def copy_repository(target: Path) -> Path:
    """Copy the source tree (tracked and untracked-not-ignored files) into a fresh git repo, with
    .venv linked to this checkout's, so run_all.sh can write there without touching this one."""
    listing = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                             cwd=REPO_ROOT, capture_output=True, check=True).stdout.decode()
    for name in filter(None, listing.split("\0")):
        source = REPO_ROOT / name
        if name == ".venv" or source.is_symlink() or not source.is_file():
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name)
    (target / ".venv").symlink_to((REPO_ROOT / ".venv").resolve())
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)
    subprocess.run(git + ["add", "-A"], cwd=target, check=True)
    subprocess.run(git + ["commit", "-qm", "copy for tests"], cwd=target, check=True)
    return target


def run_all(root: Path, *args: str, timeout: float = 120, env: dict | None = None):
    environment = {**os.environ, **(env or {})}
    environment.pop("RUN_PROFILE", None)
    return subprocess.run(["bash", str(root / "run_all.sh"), *args], cwd=root, env=environment,
                          capture_output=True, text=True, timeout=timeout)


# make_report

def test_report_macros_equal_inputs(tmp_path, monkeypatch):
    monkeypatch.setenv("RUN_PROFILE", "full")
    written = write_evaluation(tmp_path / "evaluation")
    report = build_report(tmp_path / "evaluation", tmp_path / "generated")
    macros = read_macros(tmp_path / "generated" / "macros.tex")

    for run, metrics in written.items():
        prefix = RUN_MACRO[run]
        assert macros[prefix + "TopOne"] == fmt_percent(metrics["test"]["top1"])
        assert macros[prefix + "TopOne"] == f"{100 * metrics['test']['top1']:.1f}\\%"
        assert macros[prefix + "MacroFOne"] == f"{100 * metrics['test']['macro_f1']:.1f}\\%"
        assert macros[prefix + "EpochsConv"] == str(metrics["training"]["epochs_to_convergence"])
        assert macros[prefix + "SecPerEpoch"] == f"{metrics['training']['mean_epoch_seconds']:.1f}"
        assert macros[prefix + "TestImages"] == str(metrics["test"]["num_images"])
    assert macros["IdAnalysisTokenCount"] == "8"
    assert macros["BenchCpuFloatThreeTwoRoclmDecodeRatio"] == "1.25"
    assert macros["ParityCheckOneMaxDiff"] == r"$3.50\times 10^{-6}$"
    assert not [path for path in report.missing if ".json" in path or ".md" in path]


def test_report_tables_use_macros(tmp_path, monkeypatch):
    monkeypatch.setenv("RUN_PROFILE", "full")
    write_evaluation(tmp_path / "evaluation")
    build_report(tmp_path / "evaluation", tmp_path / "generated")
    table = (tmp_path / "generated" / "part1_results_table.tex").read_text()
    for run in RUNS:
        assert f"\\{RUN_MACRO[run]}TopOne{{}}" in table
    # numbers reach the table only through macros
    body = table.split("\\midrule", 1)[1].split("\\bottomrule", 1)[0]
    assert not re.search(r"\d", body.replace("ResNet-50", ""))


def test_report_sentences_state_inputs(tmp_path, monkeypatch):
    monkeypatch.setenv("RUN_PROFILE", "full")
    written = write_evaluation(tmp_path / "evaluation")
    build_report(tmp_path / "evaluation", tmp_path / "generated")
    sentences = (tmp_path / "generated" / "part1_sentences.tex").read_text()
    gain = 100 * (written["swin_t_finetune"]["test"]["top1"]
                  - written["swin_t_feature_extraction"]["test"]["top1"])
    assert f"{gain:.1f} points above" in sentences
    assert "\\SwinFTTopOne{}, reached by Swin-T, fine-tuning" in sentences


def test_parity_sentence_largest_difference():
    parity = {"checks": [
        {"max_abs_logit_diff": 2e-6, "max_abs_logit": 3.2, "passed": True},
        {"max_abs_logit_diff": 5e-7, "max_abs_logit": 9.1, "passed": True},
    ]}
    sentence = make_report.parity_sentence(parity)
    assert "2 of 2 recorded checks pass" in sentence
    assert f"difference over all checks is {make_report.fmt_number(2e-6, 2)}" in sentence
    assert make_report.fmt_number(9.1, 2) not in sentence


def test_report_marks_missing_inputs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RUN_PROFILE", "full")
    write_evaluation(tmp_path / "evaluation", runs=RUNS[:2], part2=False)
    code = make_report.main(["--eval-dir", str(tmp_path / "evaluation"),
                             "--output-dir", str(tmp_path / "generated")])
    assert code == 0
    macros = read_macros(tmp_path / "generated" / "macros.tex")
    assert macros["SwinFTTopOne"] == r"\notrun{}"
    assert macros["ResNetFTTopOne"] != r"\notrun{}"
    missing_tex = (tmp_path / "generated" / "missing.tex").read_text()
    assert "swin\\_t\\_finetune/metrics.json" in missing_tex
    assert "part2/parity.json" in missing_tex
    assert "\\notrun{}" in (tmp_path / "generated" / "part2_parity.tex").read_text()
    assert "part2/parity.json" in capsys.readouterr().err



def test_part1_benchmark_tables_equal_inputs(tmp_path, monkeypatch):
    monkeypatch.setenv("RUN_PROFILE", "full")
    write_evaluation(tmp_path / "evaluation", part2=False)
    inputs = part1_benchmark()
    build_report(tmp_path / "evaluation", tmp_path / "generated")
    macros = read_macros(tmp_path / "generated" / "macros.tex")
    tex = (tmp_path / "generated" / "part1_benchmark.tex").read_text()

    training_rows = table_rows(tex, "tab:part1-bench-training")
    assert len(training_rows) == len(inputs["training"])
    for row, line in zip(inputs["training"], training_rows):
        prefix = make_report.macro_name("PartOneBench", row["device"], row["model"], row["mode"])
        assert macros[prefix + "ImgPerSec"] == f"{row['images_per_second']:.1f}"
        assert macros[prefix + "EpochSeconds"] == f"{row['epoch_seconds_estimate']:.1f}"
        trainable, total = row["trainable_parameters"], row["total_parameters"]
        assert macros[prefix + "TrainableParams"] == f"{trainable:,}".replace(",", "{,}")
        assert macros[prefix + "TotalParams"] == f"{total:,}".replace(",", "{,}")
        assert f"\\{prefix}ImgPerSec{{}}" in line
    assert macros["PartOneBenchCpuSwinTFinetuneEpochSeconds"] == "47.3"
    assert "fine-tuning" in training_rows[1]

    loading_rows = table_rows(tex, "tab:part1-bench-loading")
    assert len(loading_rows) == 2
    assert macros["PartOneBenchLoaderZeroWorkersImgPerSec"] == "256.0"
    assert macros["PartOneBenchLoaderTwoWorkersImgPerSec"] == "128.0"
    assert "(main process)" in loading_rows[0]
    assert macros["PartOneBenchLoaderRatioMin"] == "3.7"
    assert macros["PartOneBenchLoaderRatioMax"] == "6.4"
    assert macros["PartOneBenchLoaderKeepsUp"] == "4"

    cache_rows = table_rows(tex, "tab:part1-bench-cache")
    assert len(cache_rows) == 2
    assert macros["PartOneBenchCacheCpuResnetFiveZeroSpeedup"] == "1{,}325$\\times$"
    assert macros["PartOneBenchCacheCpuResnetFiveZeroCachedSeconds"] == "0.062"
    assert macros["PartOneBenchCacheCpuResnetFiveZeroTargetMet"] == "yes"
    assert macros["PartOneBenchCacheCpuSwinTTargetMet"] == r"\textcolor{red}{no}"
    assert macros["PartOneBenchCacheCpuSwinTBuildSeconds"] == "433.0"
    assert macros["PartOneBenchSpeedupTarget"] == "100"


def test_part1_benchmark_setup_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("RUN_PROFILE", "full")
    write_evaluation(tmp_path / "evaluation", part2=False)
    build_report(tmp_path / "evaluation", tmp_path / "generated")
    macros = read_macros(tmp_path / "generated" / "macros.tex")
    tex = (tmp_path / "generated" / "part1_benchmark.tex").read_text()
    assert macros["PartOneBenchCpu"] == "Test CPU"
    assert macros["PartOneBenchTorchThreads"] == "1"
    assert macros["PartOneBenchLoadStart"] == "3.53"
    assert macros["PartOneBenchLoadEnd"] == "3.44"
    assert macros["PartOneBenchImageSize"] == "224"
    assert macros["PartOneBenchBatchSize"] == "32"
    assert macros["PartOneBenchMode"] == "full"
    assert macros["PartOneBenchWeights"] == "random init (-{}-no-pretrained)"
    assert "\\PartOneBenchTorchThreads{} PyTorch threads" in tex
    assert "Quick-mode" not in tex
    # the generic key/value dump is gone
    assert "Key & Value" not in tex
    # numbers reach the tables only through macros
    for label in ("tab:part1-bench-training", "tab:part1-bench-loading", "tab:part1-bench-cache"):
        body = " ".join(table_rows(tex, label))
        assert not re.search(r"\d", body.replace("ResNet-50", ""))


def test_part1_benchmark_missing_marked(tmp_path, monkeypatch):
    monkeypatch.setenv("RUN_PROFILE", "full")
    write_evaluation(tmp_path / "evaluation", part2=False, benchmark=False)
    report = build_report(tmp_path / "evaluation", tmp_path / "generated")
    tex = (tmp_path / "generated" / "part1_benchmark.tex").read_text()
    assert "\\notrun{}" in tex
    assert "evaluation/part1/benchmark.json" in report.missing
    assert "PartOneBenchCpu" not in read_macros(tmp_path / "generated" / "macros.tex")


def test_part1_benchmark_empty_json_no_crash(tmp_path, monkeypatch):
    monkeypatch.setenv("RUN_PROFILE", "full")
    write_evaluation(tmp_path / "evaluation", part2=False)
    (tmp_path / "evaluation" / "part1" / "benchmark.json").write_text("{}")
    report = build_report(tmp_path / "evaluation", tmp_path / "generated")
    tex = (tmp_path / "generated" / "part1_benchmark.tex").read_text()
    assert not [path for path in report.missing if "part1/benchmark.json" in path]
    assert tex.count("\\notrun{}") == 3


@pytest.mark.parametrize("profile, flag", [("smoke", "\\smoketrue"), ("full", "\\smokefalse")])
def test_report_profile_flag(tmp_path, monkeypatch, profile, flag):
    monkeypatch.setenv("RUN_PROFILE", profile)
    build_report(tmp_path / "evaluation", tmp_path / "generated")
    assert (tmp_path / "generated" / "profile.tex").read_text().strip().endswith(flag)


def test_listing_text_is_printable_ascii():
    text = make_report.ascii_text("a\x10b\u4e16\tc\nd")
    assert text == "a<U+0010>b<U+4E16>    c\nd"
    assert make_report.latex_escape("50%_\x07") == "50\\%\\_<U+0007>"


@pytest.fixture
def part2_report(tmp_path, monkeypatch):
    """Build the report from hand-made Part 2 inputs; return (inputs, macros, generated dir)."""
    monkeypatch.setenv("RUN_PROFILE", "full")
    write_evaluation(tmp_path / "evaluation")
    build_report(tmp_path / "evaluation", tmp_path / "generated")
    return part2_inputs(), read_macros(tmp_path / "generated" / "macros.tex"), tmp_path / "generated"


def table_rows(tex: str, label: str) -> list[str]:
    """Return the body rows of the table labelled LABEL in TEX."""
    table = tex[:tex.index(f"\\label{{{label}}}")].rsplit("\\begin{table}", 1)[1]
    body = table.split("\\midrule", 1)[1].split("\\bottomrule", 1)[0]
    return [row.strip() for row in body.split("\\\\") if row.strip()]


def test_parity_table_equals_inputs(part2_report):
    inputs, macros, generated = part2_report
    checks = inputs["parity.json"]["checks"]
    tex = (generated / "part2_parity.tex").read_text()
    rows = table_rows(tex, "tab:parity")
    assert len(rows) == len(checks)
    assert macros["ParityCheckOneMaxDiff"] == make_report.fmt_scientific(checks[0]["max_abs_logit_diff"])
    assert macros["ParityCheckTwoMaxDiff"] == r"$1.25\times 10^{-6}$"
    assert macros["ParityCheckThreeTolerance"] == r"$1.00\times 10^{-1}$"
    assert macros["ParityCheckOneGreedy"] == "yes (32)"
    assert macros["ParityCheckTwoGreedy"] == "--"
    assert macros["ParityCheckThreeGreedy"] == r"\textcolor{red}{no} (from 5)"
    assert macros["ParityCheckOnePassed"] == "yes"
    assert macros["ParityCheckThreePassed"] == r"\textcolor{red}{no}"
    assert macros["ParityAllPassed"] == r"\textcolor{red}{no}"
    assert "\\ParityCheckThreeMaxDiff{}" in rows[2]
    assert "2 of 3 recorded checks pass" in tex


def test_fmt_scientific_cases():
    assert make_report.fmt_scientific(0.0) == "0"
    assert make_report.fmt_scientific(9.5367431640625e-07) == r"$9.54\times 10^{-7}$"
    assert make_report.fmt_scientific(None) == "--"
    assert make_report.fmt_scientific(True) == "--"


def test_benchmark_tables_equal_inputs(part2_report):
    inputs, macros, generated = part2_report
    device = inputs["benchmark.json"]["devices"][0]
    float32 = device["dtypes"]["float32"]
    roclm = float32["implementations"]["roclm"]
    assert macros["BenchCpuFloatThreeTwoRoclmPrefill"] == f"{roclm['prefill_tokens_per_s']:.1f}"
    assert macros["BenchCpuFloatThreeTwoRoclmDecode"] == f"{roclm['decode_tokens_per_s']:.2f}"
    assert macros["BenchCpuFloatThreeTwoTransformersDecode"] == "12.20"
    assert macros["BenchCpuFloatThreeTwoRoclmPrefillRatio"] == "2.00"
    assert macros["BenchCpuFloatThreeTwoRoclmRoofline"] == "218.0"
    assert macros["BenchCpuFloatThreeTwoRoclmRooflineFraction"] == "7.0\\%"
    assert macros["BenchCpuBfloatOneSixRoclmDecode"] == "7.25"
    assert macros["BenchCpuContextOneSixMs"] == "78.5"
    assert macros["BenchCpuContextOneZeroTwoFourMs"] == "87.5"
    assert macros["BenchCpuRecomputeMs"] == "282.5"
    assert macros["BenchCpuLongOverShort"] == "1.11"
    assert macros["BenchCpuReadBandwidth"] == "36.8"
    assert macros["BenchCpuBufferMiB"] == "1{,}024"
    assert macros["BenchCpuFloatThreeTwoStepMB"] == "168.5"
    assert macros["BenchTorchThreads"] == "2"
    assert macros["BenchCpu"] == "Test CPU"
    assert macros["BenchParityMaxDiff"] == r"$2.50\times 10^{-7}$"
    tex = (generated / "part2_benchmark.tex").read_text()
    assert macros["BenchCpuFloatThreeTwoRoclmDenseDecode"] == "10.75"
    assert macros["BenchCpuFloatThreeTwoRoclmDenseRooflineFraction"] == "4.9\\%"
    assert len(table_rows(tex, "tab:bench-speed")) == 5
    assert "cpu float32: packed for oneDNN" in tex
    assert "RocLM, dense weights" in tex
    assert len(table_rows(tex, "tab:bench-context")) == 3


def test_benchmark_targets_name_measurement(part2_report):
    _, macros, generated = part2_report
    rows = table_rows((generated / "part2_benchmark.tex").read_text(), "tab:bench-targets")
    assert len(rows) == 3
    assert "at least 1.3$\\times$ that of transformers, float32" in rows[0]
    assert "\\BenchCpuFloatThreeTwoRoclmDecodeRatio{}" in rows[0]
    assert "at least 75.0\\% of the roofline" in rows[1]
    assert "\\BenchCpuLongOverShort{}" in rows[2]
    assert macros["BenchTargetLongContextWithinOneFivex"] == "yes"
    assert macros["BenchTargetDecodeRatioFloatThreeTwoAtLeastOneThree"] == r"\textcolor{red}{no}"


def test_samples_listings_without_provenance(part2_report):
    _, _, generated = part2_report
    tex = (generated / "part2_generation.tex").read_text()
    assert tex.count("\\lstinputlisting") == 3
    assert "\\textbf{Completion.}" in tex
    assert "Provenance}" not in tex.replace("``Provenance''", "")
    assert "commit 0123456789ab" in tex
    assert "\\nolinkurl{evaluation/part2/generation_samples.md}" in tex
    # the report is built under the full profile, so the file's own smoke banner is shown
    assert make_report.latex_escape(make_report.SMOKE_BANNER) in tex
    listing = (generated / "generation_samples_1.txt").read_text()
    assert "PROVENANCE-ONLY" not in listing
    assert "Settings: temperature 0.7" in listing
    assert "  The three primary colors" in listing
    assert "Hello <U+4E16><U+754C> & 100%" in listing
    assert "Speed: generated 24 tokens" in listing
    assert listing.isascii()
    assert max(len(line) for line in listing.splitlines()) <= make_report.LISTING_WIDTH
    long_block = (generated / "generation_samples_2.txt").read_text().splitlines()
    assert len(long_block) == make_report.MAX_BLOCK_LINES + 1
    assert long_block[-1] == "  [16 more lines in part2/generation_samples.md]"
    chat = (generated / "chat_transcript_1.txt").read_text()
    assert chat.splitlines()[0] == "User: What is 2 + 3?"
    assert "  5" in chat.splitlines()


def test_samples_table_from_markdown(part2_report):
    _, _, generated = part2_report
    tex = (generated / "part2_generation.tex").read_text()
    assert "Completion & completion & 10 & 111.8 \\\\" in tex
    assert "\\item Model: /\\allowbreak{}models/" in tex


def test_id_analysis_tables_equal_inputs(part2_report):
    inputs, macros, generated = part2_report
    analysis = inputs["id_analysis.json"]
    tex = (generated / "part2_tokenizer.tex").read_text()
    rows = table_rows(tex, "tab:id-tokens")
    assert len(rows) == len(analysis["ids"])
    for position, token_id in enumerate(analysis["ids"], start=1):
        name = make_report.macro_name("IdAnalysisToken", position, "Id")
        assert macros[name] == str(token_id)
    assert macros["IdAnalysisStudentId"] == analysis["student_id"]
    assert macros["IdAnalysisDigitCount"] == "8"
    assert macros["IdAnalysisOneTokenPerDigit"] == "yes"
    assert len(table_rows(tex, "tab:id-context")) == 2
    assert macros["IdAnalysisContextOneTotalTokens"] == "10"
    assert macros["IdAnalysisContextTwoSameAsAlone"] == r"\textcolor{red}{no}"
    assert "<U+0120>2" in table_rows(tex, "tab:id-context")[1]
    formats = table_rows(tex, "tab:id-formats")
    assert [row.split(" & ")[0] for row in formats] == ["plain", "dashes"]
    assert macros["IdAnalysisFormatTwoTokenCount"] == "9"
    assert macros["IdAnalysisScratchTwoTokenCount"] == "3"
    assert len(table_rows(tex, "tab:id-digits")) == 2


def test_fertility_table_pivots_texts(part2_report):
    _, macros, generated = part2_report
    rows = table_rows((generated / "part2_tokenizer.tex").read_text(), "tab:id-fertility")
    assert [row.split(" & ")[0] for row in rows] == ["BPE 1000", "BPE 8000"]
    assert macros["IdAnalysisFertilityOneTextOnePerWord"] == "3.00"
    assert macros["IdAnalysisFertilityOneTextTwoPerCharacter"] == "3.00"
    assert macros["IdAnalysisFertilityTwoTextOnePerCharacter"] == "0.46"
    # BPE 8000 has no row for the Chinese text
    assert macros["IdAnalysisFertilityTwoTextTwoPerWord"] == "--"


@pytest.mark.parametrize("name, generated_file", [
    ("parity.json", "part2_parity.tex"), ("benchmark.json", "part2_benchmark.tex"),
    ("id_analysis.json", "part2_tokenizer.tex"),
    ("generation_samples.md", "part2_generation.tex"),
    ("chat_transcript.md", "part2_generation.tex")])
def test_part2_missing_input_marked(tmp_path, monkeypatch, name, generated_file):
    monkeypatch.setenv("RUN_PROFILE", "smoke")
    write_evaluation(tmp_path / "evaluation")
    (tmp_path / "evaluation" / "part2" / name).unlink()
    report = build_report(tmp_path / "evaluation", tmp_path / "generated")
    assert f"evaluation/part2/{name}" in report.missing
    assert "\\notrun{}" in (tmp_path / "generated" / generated_file).read_text()


@pytest.mark.parametrize("name", ["parity.json", "benchmark.json", "id_analysis.json"])
def test_part2_empty_json_no_crash(tmp_path, monkeypatch, name):
    monkeypatch.setenv("RUN_PROFILE", "full")
    write_evaluation(tmp_path / "evaluation")
    (tmp_path / "evaluation" / "part2" / name).write_text("{}")
    report = build_report(tmp_path / "evaluation", tmp_path / "generated")
    assert not [path for path in report.missing if name in path]


def test_code_excerpts_from_source(tmp_path, monkeypatch):
    monkeypatch.setenv("RUN_PROFILE", "full")
    source = tmp_path / "model.py"
    source.write_text("class RocLMMLP:\n    def forward(self, x):\n        return x * 2\n\n"
                      "def causal_mask(T):\n    return T\n")
    report = make_report.Report(tmp_path / "evaluation", tmp_path / "generated")
    make_report.write_code_excerpts(report, source)
    assert (tmp_path / "generated" / "code" / "code_mlp.py").read_text() == \
        "def forward(self, x):\n    return x * 2\n"
    assert "lstinputlisting" in report.files["code_causal_mask.tex"]
    assert "\\notrun{}" in report.files["code_rmsnorm.tex"]
    assert "RocLMRMSNorm.forward in part2/roclm_model.py" in report.missing


# run_all.sh flags and failures

@pytest.mark.parametrize("args, message", [
    (["--bogus"], "unknown option '--bogus'"),
    (["--only", "part3"], "--only 'part3' is invalid"),
    (["--data-dir"], "--data-dir needs a value"),
    (["--download-only", "--offline"], "contradict"),
    (["--download-only", "--smoke"], "--smoke needs no downloads"),
])
def test_run_all_rejects_invalid_flags(args, message):
    result = run_all(REPO_ROOT, *args, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr
    assert "--help" in result.stderr


def test_run_all_help():
    result = run_all(REPO_ROOT, "--help", timeout=30)
    assert result.returncode == 0
    assert "--smoke" in result.stdout
    assert "--tokenizer-dir" in result.stdout


def test_run_all_failing_step_names_it(tmp_path):
    root = copy_repository(tmp_path / "repo")
    missing = tmp_path / "no-such-dir"
    result = run_all(root, "--smoke", "--quiet", "--data-dir", str(missing))
    assert result.returncode != 0
    assert "step part1_data failed" in result.stderr
    assert str(missing) in (root / "evaluation" / "logs" / "part1_data.log").read_text()
    assert not (root / "evaluation" / "logs" / "part1_data.done").exists()
    assert not (root / "evaluation" / "part1").exists()


def test_offline_without_dataset_fails(tmp_path):
    root = copy_repository(tmp_path / "repo")
    empty = tmp_path / "empty-data"
    empty.mkdir()
    result = run_all(root, "--offline", "--only", "part1", "--quiet", "--data-dir", str(empty))
    assert result.returncode != 0
    assert "step part1_data failed" in result.stderr
    log = (root / "evaluation" / "logs" / "part1_data.log").read_text()
    assert "Oxford-IIIT Pet is incomplete" in log
    assert "--download-only" in log


def test_smoke_refuses_to_replace_full_results(tmp_path):
    root = copy_repository(tmp_path / "repo")
    (root / "evaluation" / "logs").mkdir(parents=True)
    (root / "evaluation" / "logs" / "profile").write_text("full\n")
    (root / "evaluation" / "part1").mkdir()
    result = run_all(root, "--smoke", "--quiet", timeout=30)
    assert result.returncode == 1
    assert "contains results of the full profile" in result.stderr
    assert (root / "evaluation" / "part1").is_dir()


# package

def test_package_has_three_folders_without_data(tmp_path):
    root = copy_repository(tmp_path / "repo")
    for name in ("data/oxford-iiit-pet/images/a.jpg", "checkpoints/smoke/model.safetensors",
                 "runs/full/part1/best.pth", "evaluation/part1/summary.md",
                 "latex/report.pdf", "latex/build/report.aux", "part2/tokenizer/vocab.json"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x")
    output = tmp_path / "submission.zip"
    counts = build_package(root, output)

    names = zipfile.ZipFile(output).namelist()
    assert {name.split("/", 1)[0] for name in names} == {"latex", "evaluation", "Code"}
    assert sorted(name for name in names if name.startswith("evaluation/")) == [
        "evaluation/README.md", "evaluation/part1/summary.md"]
    assert counts["evaluation"] == 2
    assert "latex/report.pdf" in names
    assert "latex/report.tex" in names
    assert "Code/run_all.sh" in names
    assert "Code/tools/make_report.py" in names
    for name in names:
        parts = name.split("/")
        assert not {"data", "checkpoints", "runs", ".venv", ".git", "build"} & set(parts), name
        assert not name.startswith(("Code/evaluation/", "Code/part2/tokenizer/")), name
        assert not name.endswith((".pth", ".safetensors", ".aux")), name


# the smoke profile end to end

SMOKE_TIMEOUT_S = 900


def pdf_text_streams(path: Path) -> bytes:
    """Return the decompressed content streams of a PDF, where its words appear as (text) TJ."""
    import zlib

    data = path.read_bytes()
    streams = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            streams.append(zlib.decompress(match.group(1)))
        except zlib.error:
            continue
    return b"\n".join(streams)


def json_profiles(data) -> list[str]:
    """Collect every "profile" value in a JSON document."""
    if isinstance(data, dict):
        found = [data["profile"]] if isinstance(data.get("profile"), str) else []
        return found + [value for item in data.values() for value in json_profiles(item)]
    if isinstance(data, list):
        return [value for item in data for value in json_profiles(item)]
    return []


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """Run `run_all.sh --smoke` once in a copy of the repository; with PETS_SAMPLE_ROOT and
    QWEN_TOKENIZER_DIR set, on the real sample images and the real Qwen3 tokenizer."""
    root = copy_repository(tmp_path_factory.mktemp("smoke") / "repo")
    args = ["--smoke", "--quiet"]
    for variable, flag in (("PETS_SAMPLE_ROOT", "--data-dir"), ("QWEN_TOKENIZER_DIR", "--tokenizer-dir")):
        if os.environ.get(variable):
            args += [flag, os.environ[variable]]
    result = run_all(root, *args, timeout=SMOKE_TIMEOUT_S, env={"STUDENT_ID": "20230042"})
    return root, result


@pytest.mark.slow
def test_smoke_run_succeeds(smoke_run):
    root, result = smoke_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "summary (profile smoke)" in result.stdout
    assert "FAILED" not in result.stdout


@pytest.mark.slow
def test_smoke_run_artifact_tree(smoke_run):
    root, _ = smoke_run
    evaluation = root / "evaluation"
    expected = ["part1/summary.csv", "part1/summary.md", "part2/parity.json",
                "part2/generation_samples.md", "part2/chat_transcript.md", "part2/benchmark.json",
                "part2/id_analysis.json", "logs/summary.tsv", "logs/part1_compare.log",
                "logs/part2_tokenizer_lab.log"]
    for run in RUNS:
        expected += [f"part1/{run}/{name}" for name in
                     ("metrics.json", "classification_report.csv", "confusion_matrix.png",
                      "training_curves.png", "per_class_f1.png", "misclassified.png")]
    for name in expected:
        assert (evaluation / name).is_file(), name
    assert (root / "latex" / "generated" / "macros.tex").is_file()
    assert "Not run" not in (root / "latex" / "generated" / "missing.tex").read_text()


@pytest.mark.slow
def test_smoke_artifacts_say_smoke(smoke_run):
    from tools.provenance import SMOKE_BANNER

    root, _ = smoke_run
    evaluation = root / "evaluation"
    for path in evaluation.rglob("*.json"):
        profiles = json_profiles(json.loads(path.read_text()))
        assert profiles, f"{path} has no profile"
        assert set(profiles) == {"smoke"}, path
    for path in evaluation.rglob("*.md"):
        if path.name == "README.md":
            continue
        assert path.read_text().startswith(SMOKE_BANNER), path
    if shutil.which("pdflatex") and shutil.which("latexmk"):
        pdf = root / "latex" / "report.pdf"
        assert pdf.is_file()
        assert b"(SMOKE" in pdf_text_streams(pdf)
    else:
        assert (root / "latex" / "generated" / "profile.tex").read_text().strip().endswith("\\smoketrue")


@pytest.mark.slow
def test_smoke_rerun_skips_complete_steps(smoke_run):
    root, first = smoke_run
    assert first.returncode == 0
    result = run_all(root, "--smoke", "--quiet", *first.args[4:], timeout=300,
                     env={"STUDENT_ID": "20230042"})
    assert result.returncode == 0, result.stderr[-3000:]
    ran = [line for line in result.stdout.splitlines() if line.startswith("step ")
           and ": running" in line and not line.startswith("step setup")]
    assert ran == []
    # the first run lists its results as written; the rerun lists them as kept
    benchmark = "evaluation/part2/benchmark.json"
    first_written = first.stdout.split("written by this run:", 1)[1]
    assert benchmark in first_written
    assert "kept from earlier runs" not in first_written
    rerun_written, rerun_kept = result.stdout.split("written by this run:", 1)[1].split(
        "kept from earlier runs", 1)
    assert benchmark not in rerun_written
    assert benchmark in rerun_kept


@pytest.mark.slow
def test_smoke_package(smoke_run, tmp_path):
    root, first = smoke_run
    assert first.returncode == 0
    result = run_all(root, "--package", timeout=120)
    assert result.returncode == 0, result.stderr
    names = zipfile.ZipFile(root / "submission.zip").namelist()
    assert {name.split("/", 1)[0] for name in names} == {"latex", "evaluation", "Code"}
    assert "evaluation/part2/parity.json" in names
    assert not [name for name in names if name.endswith((".pth", ".safetensors"))
                or name.startswith(("Code/data/", "Code/checkpoints/", "Code/runs/", "Code/.venv"))]
