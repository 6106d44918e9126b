"""Student details: the committed template, a personal file and environment overrides."""
import pytest

from tools.student import load_student_info

_DETAIL_VARIABLES = ("STUDENT_ID", "STUDENT_NAME", "COLLABORATORS", "AI_TOOLS")


@pytest.fixture(autouse=True)
def _clear_student_environment(monkeypatch):
    for variable in _DETAIL_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def test_template_is_marked_example():
    from tools.student import EXAMPLE_FILE

    info = load_student_info(EXAMPLE_FILE)
    assert info.is_example
    assert info.student_id


def test_personal_file_and_overrides(tmp_path, monkeypatch):
    path = tmp_path / "student.toml"
    path.write_text('name = "Ada"\nstudent_id = "42"\ncollaborators = ["Bob"]\nai_tools = []\n')
    info = load_student_info(path)
    assert (info.name, info.student_id, info.collaborators) == ("Ada", "42", ["Bob"])
    assert not info.is_example

    monkeypatch.setenv("STUDENT_ID", "20249999")
    monkeypatch.setenv("AI_TOOLS", "Tool A; Tool B")
    info = load_student_info(path)
    assert info.student_id == "20249999"
    assert info.ai_tools == ["Tool A", "Tool B"]
    assert info.source == "environment"


def test_invalid_toml_names_file(tmp_path):
    path = tmp_path / "student.toml"
    path.write_text("name = \n")
    with pytest.raises(ValueError, match="student.toml is not valid TOML"):
        load_student_info(path)


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="copy student.example.toml"):
        load_student_info(tmp_path / "absent.toml")
