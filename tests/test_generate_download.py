"""part2.download without a network: a mocked snapshot_download and a hand-made Hugging Face cache."""
from __future__ import annotations

import json

import huggingface_hub
import pytest
from huggingface_hub.errors import LocalEntryNotFoundError

from part2 import download
from part2.download import ModelFilesError, detect_layout, resolve_model_dir

REPO_ID = "Qwen/Qwen3-0.6B"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
TOKENIZER_NAMES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt")


def fill_hf_folder(folder, weights=True, tokenizer=True):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    if weights:
        (folder / "model.safetensors").write_bytes(b"weights")
    if tokenizer:
        for name in TOKENIZER_NAMES:
            (folder / name).write_text(f"content of {name}")
    return folder


def fake_cache(cache_dir, weights=True):
    """Lay out a cache as huggingface_hub does: refs/main names the snapshot folder."""
    repo_folder = cache_dir / ("models--" + REPO_ID.replace("/", "--"))
    (repo_folder / "refs").mkdir(parents=True)
    (repo_folder / "refs" / "main").write_text(COMMIT)
    return fill_hf_folder(repo_folder / "snapshots" / COMMIT, weights=weights)


@pytest.fixture
def online(monkeypatch):
    """Lift the test suite's offline switch; snapshot_download is mocked in every test using it."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def test_detect_layouts(tmp_path):
    hf = fill_hf_folder(tmp_path / "hf", tokenizer=False)
    assert detect_layout(hf) == ("hf", hf)

    sharded = tmp_path / "sharded"
    sharded.mkdir()
    (sharded / "config.json").write_text("{}")
    weight_map = {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (sharded / "model-00001-of-00002.safetensors").write_bytes(b"")
    with pytest.raises(ModelFilesError, match="model-00002-of-00002.safetensors"):
        detect_layout(sharded)
    (sharded / "model-00002-of-00002.safetensors").write_bytes(b"")
    assert detect_layout(sharded) == ("hf", sharded)

    course = tmp_path / "course"
    (course / "ckpt").mkdir(parents=True)
    (course / "ckpt" / "model_config.json").write_text("{}")
    (course / "ckpt" / "custom_model_state_dict.pth").write_bytes(b"")
    assert detect_layout(course) == ("course", course / "ckpt")
    assert detect_layout(course / "ckpt") == ("course", course / "ckpt")


def test_neither_layout_names_files(tmp_path):
    (tmp_path / "readme.txt").write_text("")
    with pytest.raises(ModelFilesError) as caught:
        detect_layout(tmp_path)
    for name in ("config.json", "model.safetensors", "model.safetensors.index.json",
                 "model_config.json", "custom_model_state_dict.pth", "readme.txt"):
        assert name in str(caught.value)
    with pytest.raises(ModelFilesError, match="does not exist"):
        detect_layout(tmp_path / "missing")


def test_offline_reads_fake_cache(tmp_path):
    snapshot = fake_cache(tmp_path / "cache")
    assert resolve_model_dir(None, offline=True, cache_dir=tmp_path / "cache") == snapshot


def test_offline_env_blocks_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def fail(*args, **kwargs):
        if not kwargs.get("local_files_only"):
            raise AssertionError("offline mode called snapshot_download without local_files_only")
        raise LocalEntryNotFoundError("not cached")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fail)
    with pytest.raises(ModelFilesError) as caught:
        resolve_model_dir(None, offline=False, cache_dir=tmp_path / "empty")
    message = str(caught.value)
    assert REPO_ID in message
    assert f"python -m part2.download --cache-dir {tmp_path / 'empty'}" in message
    assert "HF_HUB_OFFLINE=1" in message


def test_offline_partial_cache_named(tmp_path):
    fake_cache(tmp_path / "cache", weights=False)
    with pytest.raises(ModelFilesError) as caught:
        resolve_model_dir(None, offline=True, cache_dir=tmp_path / "cache")
    assert "partial copy" in str(caught.value)
    assert "model.safetensors" in str(caught.value)
    assert "python -m part2.download" in str(caught.value)


def test_download_copies_tokenizer(tmp_path, monkeypatch, online, capsys):
    calls = []

    def fake_snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(fill_hf_folder(tmp_path / "snapshot"))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    tokenizer_out = tmp_path / "part2_tokenizer"
    status = download.main(["--cache-dir", str(tmp_path / "cache"),
                            "--tokenizer-out", str(tokenizer_out), "--quiet"])
    assert status == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(tmp_path / "snapshot")

    assert len(calls) == 1
    repo_id, kwargs = calls[0]
    assert repo_id == REPO_ID
    assert kwargs["cache_dir"] == str(tmp_path / "cache")
    assert not kwargs.get("local_files_only")
    for pattern in ("config.json", "*.safetensors", "model.safetensors.index.json",
                    *TOKENIZER_NAMES):
        assert pattern in kwargs["allow_patterns"]
    for name in TOKENIZER_NAMES:
        assert (tokenizer_out / name).read_text() == f"content of {name}"


def test_download_failure_message(tmp_path, monkeypatch, online, capsys):
    def unreachable(repo_id, **kwargs):
        raise LocalEntryNotFoundError("connection refused")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    status = download.main(["--repo-id", "someone/tiny", "--tokenizer-out", str(tmp_path / "t")])
    assert status == 1
    error = capsys.readouterr().err
    assert "downloading someone/tiny failed" in error
    assert "python -m part2.download --repo-id someone/tiny" in error


def test_default_download_on_cache_miss(tmp_path, monkeypatch, online):
    """Without offline mode, a lookup looks in the cache first and downloads on a miss."""
    modes = []

    def fake_snapshot_download(repo_id, **kwargs):
        modes.append(bool(kwargs.get("local_files_only")))
        if kwargs.get("local_files_only"):
            raise LocalEntryNotFoundError("not cached")
        return str(fill_hf_folder(tmp_path / "downloaded"))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    assert resolve_model_dir(None, cache_dir=tmp_path / "cache") == tmp_path / "downloaded"
    assert modes == [True, False]
