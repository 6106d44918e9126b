"""run_all.sh keeps one profile's results in evaluation/ and never loses them; packaging."""
from __future__ import annotations

from test_run_all import copy_repository, run_all


def _fake_smoke_results(root):
    (root / "evaluation" / "logs").mkdir(parents=True)
    (root / "evaluation" / "logs" / "profile").write_text("smoke\n")
    (root / "evaluation" / "logs" / "old_step.log").write_text("from the smoke run\n")
    result_file = root / "evaluation" / "part1" / "summary.md"
    result_file.parent.mkdir()
    result_file.write_text("SMOKE RUN\n")
    return result_file


def test_failed_full_run_keeps_smoke_results(tmp_path):
    root = copy_repository(tmp_path / "repo")
    result_file = _fake_smoke_results(root)
    empty = tmp_path / "empty-data"
    empty.mkdir()
    result = run_all(root, "--offline", "--only", "part1", "--quiet", "--data-dir", str(empty))
    assert result.returncode != 0
    assert "step part1_data failed" in result.stderr
    assert result_file.exists()
    assert (root / "evaluation" / "logs" / "profile").read_text().strip() == "smoke"


def test_report_only_needs_matching_profile(tmp_path):
    root = copy_repository(tmp_path / "repo")
    result_file = _fake_smoke_results(root)
    result = run_all(root, "--only", "report", "--quiet", timeout=30)
    assert result.returncode == 1
    assert "bash run_all.sh --smoke --only report" in result.stderr
    assert result_file.exists()
    assert "estimated time" not in result.stderr


def test_package_readable_by_others(tmp_path):
    import stat

    from tools.package_submission import build_package
    from tools.provenance import default_file_mode

    root = copy_repository(tmp_path / "repo")
    output = tmp_path / "submission.zip"
    build_package(root, output)
    assert stat.S_IMODE(output.stat().st_mode) == default_file_mode()
