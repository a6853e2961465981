"""The Demo dataset: generated on first use, in CoOp's format, through the same pipeline as real datasets."""
import hashlib
import json
import os
import random

import pytest
from dataset_fixtures import build_seeded, dataset_cfg, expected_fewshot, rows
from PIL import Image

from harness.data.errors import DatasetError
from harness.data.synthetic_shapes import SHAPE_CLASSES, create_shapes_dataset

CLASSNAMES = [name for name, _, _ in SHAPE_CLASSES]


def tree_digest(folder):
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(folder)):
        dirnames.sort()
        for name in sorted(filenames):
            digest.update(os.path.relpath(os.path.join(dirpath, name), folder).encode())
            with open(os.path.join(dirpath, name), "rb") as file:
                digest.update(file.read())
    return digest.hexdigest()


def test_demo_is_generated_on_first_use_in_coop_format(tmp_path):
    dataset = build_seeded(dataset_cfg(tmp_path, "demo"))

    split = json.loads((tmp_path / "demo" / "split_zhou_Demo.json").read_text())
    assert {k: len(v) for k, v in split.items()} == {"train": 200, "val": 40, "test": 100}
    relative_path, label, classname = split["train"][0]
    assert (relative_path, label, classname) == ("red_circle/train_00.jpg", 0, "red circle")
    with Image.open(tmp_path / "demo" / "images" / relative_path) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (32, 32))

    assert dataset.classnames == CLASSNAMES
    assert len(set(CLASSNAMES)) == 10 and len({colour for _, colour, _ in SHAPE_CLASSES}) == 10
    assert len({shape for _, _, shape in SHAPE_CLASSES}) == 10
    assert (len(dataset.train_x), len(dataset.val), len(dataset.test)) == (200, 40, 100)


@pytest.mark.parametrize("umask", [0o002, 0o022, 0o077])
def test_demo_folder_and_split_file_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        create_shapes_dataset(str(tmp_path / "demo"), "images", "split_zhou_Demo.json")
    finally:
        os.umask(previous)
    assert os.stat(tmp_path / "demo").st_mode & 0o777 == 0o777 & ~umask
    assert os.stat(tmp_path / "demo" / "images").st_mode & 0o777 == 0o777 & ~umask
    assert os.stat(tmp_path / "demo" / "split_zhou_Demo.json").st_mode & 0o777 == 0o666 & ~umask


def test_demo_generation_is_deterministic_and_leaves_no_staging_folder(tmp_path):
    for name in ("a", "b"):
        create_shapes_dataset(str(tmp_path / name / "demo"), "images", "split_zhou_Demo.json")
        assert os.listdir(tmp_path / name) == ["demo"]
    assert tree_digest(tmp_path / "a" / "demo") == tree_digest(tmp_path / "b" / "demo")


def test_demo_generation_does_not_touch_the_global_random_state(tmp_path):
    random.seed(5)
    state = random.getstate()
    create_shapes_dataset(str(tmp_path / "demo"), "images", "split_zhou_Demo.json")
    assert random.getstate() == state


def test_demo_16_shot_base_and_new(tmp_path):
    base = build_seeded(dataset_cfg(tmp_path, "demo", num_shots=16, seed=3, subsample="base"))
    new = build_seeded(dataset_cfg(tmp_path, "demo", num_shots=16, seed=3, subsample="new"))
    assert base.classnames == CLASSNAMES[:5] and new.classnames == CLASSNAMES[5:]
    assert (len(base.train_x), len(base.val), len(base.test)) == (80, 20, 50)
    assert (len(new.train_x), len(new.val), len(new.test)) == (80, 20, 50)
    assert sorted({d.label for d in new.test}) == [0, 1, 2, 3, 4]


def test_demo_few_shot_draw_matches_dassl_algorithm(tmp_path):
    everything = build_seeded(dataset_cfg(tmp_path, "demo"))
    image_dir = str(tmp_path / "demo" / "images")
    full = {"train": rows(everything.train_x, image_dir), "val": rows(everything.val, image_dir)}
    for seed in (1, 2, 3):
        dataset = build_seeded(dataset_cfg(tmp_path, "demo", num_shots=4, seed=seed))
        train, val = expected_fewshot(full, seed, 4)
        assert rows(dataset.train_x, image_dir) == train
        assert rows(dataset.val, image_dir) == val


def test_demo_folder_without_split_file_is_an_error(tmp_path):
    (tmp_path / "demo" / "images").mkdir(parents=True)
    with pytest.raises(DatasetError, match="delete the folder"):
        build_seeded(dataset_cfg(tmp_path, "demo"))
