"""Unit tests of part2.tokenizer_lab against the real Qwen3 tokenizer and tokenizers' ByteLevel."""
import unicodedata

import pytest
from tokenizers import pre_tokenizers

from part2 import tokenizer_lab as lab
from part2.local_bpe import local_corpus

QWEN3_IDS = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645,
             "<think>": 151667, "</think>": 151668}


@pytest.fixture(scope="module")
def qwen(qwen_tokenizer_dir):
    return lab.load_tokenizer(qwen_tokenizer_dir)


@pytest.fixture(scope="module")
def qwen_stats(qwen):
    return lab.vocab_statistics(qwen)


def test_load_from_env(qwen_tokenizer_dir, monkeypatch):
    monkeypatch.setenv(lab.TOKENIZER_DIR_ENV, str(qwen_tokenizer_dir))
    assert lab.resolve_tokenizer_dir() == qwen_tokenizer_dir


def test_missing_dir_names_download(tmp_path, monkeypatch):
    monkeypatch.delenv(lab.TOKENIZER_DIR_ENV, raising=False)
    with pytest.raises(lab.TokenizerNotFoundError, match="python -m part2.download"):
        lab.resolve_tokenizer_dir(tmp_path / "absent")


def test_dir_without_tokenizer_json(tmp_path):
    with pytest.raises(lab.TokenizerNotFoundError, match="has no tokenizer.json"):
        lab.resolve_tokenizer_dir(tmp_path)


def test_env_dir_missing_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(lab.TOKENIZER_DIR_ENV, str(tmp_path / "elsewhere"))
    with pytest.raises(lab.TokenizerNotFoundError, match=r"\$TOKENIZER_DIR"):
        lab.resolve_tokenizer_dir()


def test_vocab_sizes(qwen_stats):
    assert qwen_stats["base_vocab_size"] == 151643
    assert qwen_stats["added_tokens"] == 26
    assert qwen_stats["total_tokens"] == 151669


def test_embedding_padding(qwen_stats):
    assert qwen_stats["embedding_rows"] == 151936
    assert qwen_stats["padding_rows"] == 151936 - 151669
    assert qwen_stats["embedding_rows_multiple_of_128"] is True
    assert qwen_stats["smallest_multiple_of_128"] == 151680


def test_only_single_digit_tokens(qwen_stats):
    assert qwen_stats["digit_only_tokens"] == list("0123456789")


def test_describe_qwen(qwen, qwen_tokenizer_dir):
    assert lab.describe_tokenizer(qwen, qwen_tokenizer_dir)["kind"] == "Qwen3"


@pytest.mark.parametrize("token, expected_id", sorted(QWEN3_IDS.items()))
def test_special_token_ids(qwen, token, expected_id):
    assert qwen.convert_tokens_to_ids(token) == expected_id
    assert lab.encode_ids(qwen, token) == [expected_id]


def test_special_token_table(qwen):
    table = lab.special_token_table(qwen)
    assert [row["id"] for row in table] == list(range(151643, 151669))
    by_token = {row["token"]: row for row in table}
    for token, expected_id in QWEN3_IDS.items():
        assert by_token[token]["id"] == expected_id
    assert by_token["<|im_end|>"]["special"] is True
    assert by_token["<think>"]["special"] is False


@pytest.mark.parametrize("name", [name for name in lab.SAMPLE_TEXTS if name != "decomposed_accent"])
def test_round_trip_identical(qwen, name):
    result = lab.round_trip(qwen, lab.SAMPLE_TEXTS[name])
    assert result["identical"], result["decoded"]
    assert result["token_count"] == len(result["ids"])


def test_round_trip_applies_nfc(qwen):
    text = lab.SAMPLE_TEXTS["decomposed_accent"]
    result = lab.round_trip(qwen, text)
    assert result["identical"] is False
    assert result["identical_after_nfc"] is True
    assert result["decoded"] == unicodedata.normalize("NFC", text)


@pytest.mark.parametrize("number", ["0", "7", "20231234", "000123", "98765432109876543210"])
def test_digits_split_one_per_token(qwen, number):
    analysis = lab.analyze_id(qwen, number)
    assert analysis["token_count"] == len(number)
    assert analysis["tokens"] == list(number)
    assert analysis["one_token_per_digit"] is True


def test_id_with_letters(qwen):
    analysis = lab.analyze_id(qwen, "A12B")
    assert analysis["digit_count"] == 2
    assert analysis["token_count"] == len(qwen.encode("A12B", add_special_tokens=False))


def test_id_in_context_keeps_digits(qwen):
    for row in lab.id_in_context(qwen, "20231234"):
        assert row["id_tokens"] == list("20231234"), row["text"]
        assert row["same_as_alone"] is True


def test_pre_tokenizer_isolates_digits(qwen):
    pieces = lab.pre_tokenize(qwen, "it's 2024 now")
    assert pieces == [("it", "it"), ("'s", "'s"), ("Ġ", " "), ("2", "2"), ("0", "0"),
                      ("2", "2"), ("4", "4"), ("Ġnow", " now")]


def test_byte_mapping_is_bijection():
    mapping = lab.byte_to_unicode()
    assert sorted(mapping) == list(range(256))
    assert len(set(mapping.values())) == 256
    assert mapping[0x20] == "Ġ"
    assert mapping[0x0A] == "Ċ"
    assert mapping[ord("A")] == "A"


def test_byte_mapping_matches_library():
    assert lab.byte_level_alphabet_matches_library()
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    mapping = lab.byte_to_unicode()
    # characters of 1 to 4 UTF-8 bytes, including the lowest and highest byte of each range
    for char in ["\x00", "\t", " ", "~", "\x7f", "\u0080", "\u00bf", "\u00ff", "\u07ff", "€", "😀"]:
        [(mapped, _)] = byte_level.pre_tokenize_str(char)
        assert mapped == "".join(mapping[byte] for byte in char.encode("utf-8")), repr(char)


def test_token_to_bytes(qwen):
    assert lab.token_to_bytes("Ġthe") == b" the"
    [token] = lab.ids_to_tokens(qwen, lab.encode_ids(qwen, "学"))
    assert lab.token_to_bytes(token) == "学".encode("utf-8")


def test_chat_template_thinking_switch(qwen):
    messages = [{"role": "user", "content": "Hi"}]
    examples = lab.chat_template_examples(qwen, messages)
    on, off = examples["thinking_on"]["ids"], examples["thinking_off"]["ids"]
    assert on[0] == QWEN3_IDS["<|im_start|>"]
    assert QWEN3_IDS["<think>"] not in on
    assert off[:len(on)] == on
    assert off[len(on)] == QWEN3_IDS["<think>"]
    assert off[-2] == QWEN3_IDS["</think>"]


def test_id_formats():
    formats = lab.id_formats("20231234")
    assert formats["plain"] == "20231234"
    assert formats["dashes"] == "2023-1234"
    assert formats["spaces"] == "2023 1234"
    assert formats["spelled out"] == "two zero two three one two three four"
    assert formats["thousands separators"] == "20,231,234"


def test_id_formats_letters():
    formats = lab.id_formats("A1-2")
    assert formats["plain"] == "A12"
    assert formats["spelled out"] == "A one two"
    assert "thousands separators" not in formats


def test_format_counts(qwen):
    rows = {row["format"]: row for row in lab.compare_id_formats(qwen, "20231234")}
    assert rows["plain"]["token_count"] == 8
    assert rows["dashes"]["token_count"] == 9
    assert rows["thousands separators"]["token_count"] == 10


def test_student_id_option_env_wins(monkeypatch):
    monkeypatch.setenv("STUDENT_ID", "111")
    monkeypatch.setenv(lab.STUDENT_ID_OPTION_ENV, "222")
    choice = lab.resolve_student_id()
    assert choice.student_id == "222"
    assert choice.is_example is False


def test_student_id_from_env(monkeypatch):
    monkeypatch.delenv(lab.STUDENT_ID_OPTION_ENV, raising=False)
    monkeypatch.setenv("STUDENT_ID", " 12345 ")
    choice = lab.resolve_student_id()
    assert choice.student_id == "12345"
    assert choice.source == "environment"


def test_student_id_example_marked(monkeypatch, tmp_path):
    monkeypatch.delenv(lab.STUDENT_ID_OPTION_ENV, raising=False)
    monkeypatch.delenv("STUDENT_ID", raising=False)
    if lab.REPO_ROOT.joinpath("student.toml").exists():
        pytest.skip("student.toml exists in this checkout, so the example value is not used")
    choice = lab.resolve_student_id()
    assert choice.is_example is True
    assert "example" in choice.source


def test_scratch_bpe_digit_rule():
    split = lab.train_scratch_bpe(4000)
    merged = lab.train_scratch_bpe(4000, split_digits=False)
    text = "values 20231234 and 1999"
    assert lab.decode_ids(split, lab.encode_ids(split, text)) == text
    assert lab.decode_ids(merged, lab.encode_ids(merged, text)) == text
    split_tokens = lab.ids_to_tokens(split, lab.encode_ids(split, "20231234"))
    merged_tokens = lab.ids_to_tokens(merged, lab.encode_ids(merged, "20231234"))
    assert split_tokens == list("20231234")
    assert len(merged_tokens) < 8


def test_fertility_counts(qwen):
    row = lab.fertility(qwen, "hello world hello")
    assert row["words"] == 3
    assert row["characters"] == 17
    assert row["tokens"] == len(qwen.encode("hello world hello", add_special_tokens=False))
    assert row["tokens_per_word"] == pytest.approx(row["tokens"] / 3)


def test_fertility_falls_with_vocab_size():
    text = lab.evaluation_texts()["Python docs (held out)"]
    small = lab.fertility(lab.train_scratch_bpe(500), text)
    large = lab.fertility(lab.train_scratch_bpe(4000), text)
    assert large["tokens_per_character"] < small["tokens_per_character"]


def test_held_out_split_disjoint():
    train = set(local_corpus("train"))
    held_out = set(local_corpus("held_out"))
    assert train.isdisjoint(held_out)
    assert len(train) + len(held_out) == len(local_corpus("all"))
    with pytest.raises(ValueError, match="invalid"):
        local_corpus("test")
