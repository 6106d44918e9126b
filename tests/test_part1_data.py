"""Oxford-IIIT Pet parsing, image loading and splitting on a generated dataset."""
import logging
import shutil
from unittest import mock

import pytest
from PIL import Image
from torchvision.datasets import OxfordIIITPet

from part1 import dataset as data
from part1 import models
from tests._part1_helpers import few_threads, synthetic_root  # noqa: F401  (fixtures)


@pytest.mark.parametrize("split", data.SPLITS)
def test_parsing_matches_torchvision(synthetic_root, split):
    ours = data.parse_split(synthetic_root, split)
    reference = OxfordIIITPet(synthetic_root, split=split, target_types=["category", "binary-category"])
    assert [s.path for s in ours] == list(reference._images)
    assert [s.label for s in ours] == list(reference._labels)
    assert [s.species for s in ours] == list(reference._bin_labels)


def test_class_names_in_official_order(synthetic_root):
    names = data.class_names(synthetic_root)
    assert names == list(data.PET_BREEDS)
    assert names != sorted(names)  # case-sensitive sorting would remap labels
    assert names[0] == "Abyssinian"
    assert names[1] == "american_bulldog"
    for sample in data.parse_split(synthetic_root, "trainval"):
        assert data.breed_of(sample.image_id) == names[sample.label]


def test_species_per_class(synthetic_root):
    species = data.species_of_classes(data.parse_split(synthetic_root, "trainval"))
    assert species.count("cat") == 12
    assert species.count("dog") == 25
    assert species[data.PET_BREEDS.index("Sphynx")] == "cat"


def test_unlisted_and_stray_files_ignored(synthetic_root):
    ids = {s.image_id for s in data.parse_split(synthetic_root, "trainval")}
    ids |= {s.image_id for s in data.parse_split(synthetic_root, "test")}
    assert len(ids) == 37 * 6
    assert "Abyssinian_999" not in ids
    assert not any("checkpoint" in image_id or "100" in image_id for image_id in ids)


@pytest.mark.parametrize("image_id, original_mode", [
    ("Abyssinian_1", "RGBA"), ("Egyptian_Mau_1", "P"), ("Egyptian_Mau_2", "L"),
    ("British_Shorthair_1", "CMYK"), ("Abyssinian_2", "RGB"),
])
def test_quirky_images_load_as_rgb(synthetic_root, image_id, original_mode):
    path = data.dataset_base(synthetic_root) / "images" / f"{image_id}.jpg"
    with Image.open(path) as raw:
        assert raw.mode == original_mode
    image = data.load_rgb(path)
    assert image.mode == "RGB"
    assert min(image.size) >= 40


def test_truncated_image_skipped_by_name(synthetic_root, caplog):
    samples = data.parse_split(synthetic_root, "trainval")
    with caplog.at_level(logging.WARNING, logger="part1.dataset"):
        kept = data.drop_undecodable(samples, "trainval")
    assert [s.image_id for s in samples if s not in kept] == ["beagle_2"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "beagle_2" in warnings[0]


def test_truncated_image_strict_raises(synthetic_root):
    samples = data.parse_split(synthetic_root, "trainval")
    with pytest.raises(data.UndecodableImagesError, match="beagle_2"):
        data.drop_undecodable(samples, "trainval", strict=True)


def test_missing_listed_image_named(synthetic_root, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(synthetic_root, copy)
    (data.dataset_base(copy) / "images" / "pug_5.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="pug_5"):
        data.parse_split(copy, "test")


def test_missing_dataset_explains_download(tmp_path):
    with pytest.raises(data.DatasetNotFoundError) as error:
        data.check_dataset(tmp_path)
    message = str(error.value)
    assert "--download" in message
    assert "images.tar.gz" in message
    assert "trainval.txt" in message


def test_download_calls_torchvision(tmp_path):
    def fake_download(root, split, download):
        assert download is True
        annotations = data.dataset_base(root) / "annotations"
        annotations.mkdir(parents=True)
        (data.dataset_base(root) / "images").mkdir()
        for name in ("trainval.txt", "test.txt"):
            (annotations / name).write_text("")

    with mock.patch("torchvision.datasets.OxfordIIITPet", side_effect=fake_download) as fake:
        base = data.download_dataset(tmp_path)
    assert fake.call_count == 1
    assert base == data.dataset_base(tmp_path)


def test_stratified_split_is_fixed_and_disjoint(synthetic_root):
    samples = data.parse_split(synthetic_root, "trainval")
    train, val = data.stratified_split(samples, 0.34, seed=3)
    again_train, again_val = data.stratified_split(list(reversed(samples)), 0.34, seed=3)
    assert [s.image_id for s in val] == [s.image_id for s in again_val]
    assert [s.image_id for s in train] == [s.image_id for s in again_train]
    assert not {s.image_id for s in train} & {s.image_id for s in val}
    assert len(train) + len(val) == len(samples)
    assert sorted({s.label for s in val}) == list(range(37))
    assert sorted({s.label for s in train}) == list(range(37))


@pytest.mark.parametrize("model_name, crop_pct", [("resnet50", 0.95), ("swin_t", 0.9)])
def test_preprocessing_from_timm_config(model_name, crop_pct):
    model = models.build_model(model_name, 37, pretrained=False, image_size=224)
    prep = data.preprocessing_from_model(model, 224)
    assert prep.interpolation == "bicubic"
    assert prep.crop_pct == crop_pct
    assert prep.mean == pytest.approx((0.485, 0.456, 0.406))
    assert prep.std == pytest.approx((0.229, 0.224, 0.225))
