"""The student's details for the write-up and the tokenizer lab, from student.toml or the environment."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 has no tomllib; requirements.txt installs tomli there.
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parents[1]
STUDENT_FILE = REPO_ROOT / "student.toml"
EXAMPLE_FILE = REPO_ROOT / "student.example.toml"


@dataclass
class StudentInfo:
    name: str
    student_id: str
    collaborators: list[str] = field(default_factory=list)
    ai_tools: list[str] = field(default_factory=list)
    is_example: bool = False  # True when nothing personal was configured and the template was used
    source: str = ""


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(";") if item.strip()]


def load_student_info(path: str | os.PathLike | None = None) -> StudentInfo:
    """Load student.toml (or the committed example when absent); environment variables win."""
    if path is not None:
        config_path = Path(path)
    elif STUDENT_FILE.exists():
        config_path = STUDENT_FILE
    else:
        config_path = EXAMPLE_FILE
    if not config_path.exists():
        raise FileNotFoundError(f"student config {config_path} not found; copy "
                                f"{EXAMPLE_FILE.name} to {STUDENT_FILE.name} and fill it in")
    with open(config_path, "rb") as handle:
        try:
            data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{config_path} is not valid TOML: {error}") from None

    info = StudentInfo(
        name=str(data.get("name", "")),
        student_id=str(data.get("student_id", "")),
        collaborators=[str(item) for item in data.get("collaborators", [])],
        ai_tools=[str(item) for item in data.get("ai_tools", [])],
        is_example=config_path.resolve() == EXAMPLE_FILE.resolve(),
        source=str(config_path),
    )
    overrides = {"STUDENT_NAME": "name", "STUDENT_ID": "student_id"}
    for variable, attribute in overrides.items():
        if os.environ.get(variable):
            setattr(info, attribute, os.environ[variable].strip())
            info.is_example = False
            info.source = "environment"
    if os.environ.get("COLLABORATORS") is not None:
        info.collaborators = _split_list(os.environ["COLLABORATORS"])
    if os.environ.get("AI_TOOLS") is not None:
        info.ai_tools = _split_list(os.environ["AI_TOOLS"])
    return info
