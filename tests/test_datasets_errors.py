"""Bad input gives one actionable line (DatasetError) or a warning; nothing is silently dropped."""
import json
import os
import warnings

import pytest
from dataset_fixtures import build_seeded, dataset_cfg, write_image
from dataset_trees import TREES

from harness.data.errors import DatasetError, FewShotWarning


def load_error(root, name, **options):
    with pytest.raises(DatasetError) as caught, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build_seeded(dataset_cfg(root, name, **options))
    message = str(caught.value)
    assert "\n" not in message
    return message


def generated_demo(root):
    build_seeded(dataset_cfg(root, "demo"))
    return root / "demo" / "split_zhou_Demo.json"


def test_missing_dataset_folder_names_it_and_the_prepare_command(tmp_path):
    message = load_error(tmp_path, "oxford_pets")
    assert str(tmp_path / "oxford_pets") in message
    assert f"python -m datasets.prepare oxford_pets --root {tmp_path}" in message


def test_missing_split_file_without_raw_annotations_names_what_is_missing(tmp_path):
    write_image(str(tmp_path / "oxford_pets" / "images" / "Bengal_1.jpg"))
    message = load_error(tmp_path, "oxford_pets")
    assert str(tmp_path / "oxford_pets" / "annotations" / "trainval.txt") in message
    assert "python -m datasets.prepare oxford_pets" in message


def test_malformed_split_json_gives_file_and_position(tmp_path):
    split_path = generated_demo(tmp_path)
    split_path.write_text('{"train": [["a.jpg", 0, "x"],,]}')
    message = load_error(tmp_path, "demo")
    assert str(split_path) in message and "line 1, column 30" in message


def test_split_entry_of_the_wrong_shape_gives_its_position(tmp_path):
    split_path = generated_demo(tmp_path)
    split = json.loads(split_path.read_text())
    split["val"][3] = ["red_circle/val_03.jpg", "0"]
    split_path.write_text(json.dumps(split))
    message = load_error(tmp_path, "demo")
    assert str(split_path) in message and "val[3]" in message


def test_missing_images_name_the_split_file_entry_and_check_command(tmp_path):
    split_path = generated_demo(tmp_path)
    os.remove(tmp_path / "demo" / "images" / "blue_square" / "test_07.jpg")
    os.remove(tmp_path / "demo" / "images" / "red_circle" / "train_02.jpg")
    message = load_error(tmp_path, "demo", num_shots=1)
    assert "2 of 340 entries point to missing images" in message
    assert "split_zhou_Demo.json train[2] ['red_circle/train_02.jpg', 0, 'red circle']" in message
    assert f"python -m datasets.check --root {tmp_path} demo" in message
    assert split_path.exists()


def test_unreadable_image_is_named_with_its_entry(tmp_path):
    generated_demo(tmp_path)
    broken = tmp_path / "demo" / "images" / "green_triangle" / "test_01.jpg"
    broken.write_bytes(b"not a jpeg")
    message = load_error(tmp_path, "demo")
    assert str(broken) in message and "unreadable" in message and "test[21]" in message
    assert f"fix: delete {tmp_path / 'demo'}; it is generated again on first use" in message


def test_a_label_with_two_class_names_is_an_error(tmp_path):
    split_path = generated_demo(tmp_path)
    split = json.loads(split_path.read_text())
    split["test"][5][2] = "crimson circle"
    split_path.write_text(json.dumps(split))
    message = load_error(tmp_path, "demo")
    assert "'red circle' and 'crimson circle'" in message and "test[5]" in message


def test_unknown_subsample_choice_is_an_error(tmp_path):
    generated_demo(tmp_path)
    assert "'novel'" in load_error(tmp_path, "demo", subsample="novel")


def test_flat_imagenet_val_folder_says_how_to_sort_it(tmp_path):
    TREES["imagenet"][0](str(tmp_path))
    val_dir = tmp_path / "imagenet" / "images" / "val"
    for folder in os.listdir(val_dir):
        for name in os.listdir(val_dir / folder):
            os.rename(val_dir / folder / name, val_dir / f"{folder}_{name}")
        os.rmdir(val_dir / folder)
    message = load_error(tmp_path, "imagenet")
    assert str(val_dir) in message and "no class folders (12 files" in message
    assert "valprep.sh" in message and "--sort-val" in message


def test_more_shots_than_a_class_has_takes_all_of_them_and_warns(tmp_path):
    split_path = generated_demo(tmp_path)
    split = json.loads(split_path.read_text())
    split["train"] = [row for row in split["train"] if row[1] != 3 or row[0].endswith(("_00.jpg", "_01.jpg"))]
    split_path.write_text(json.dumps(split))
    with pytest.warns(FewShotWarning, match=r"Demo train: 16 shots .* 'yellow diamond' \(label 3\) has 2"):
        dataset = build_seeded(dataset_cfg(tmp_path, "demo", num_shots=16))
    per_class = [sum(item.label == label for item in dataset.train_x) for label in range(10)]
    assert per_class == [16, 16, 16, 2, 16, 16, 16, 16, 16, 16]


def test_rebuilt_split_warns_that_it_is_not_the_official_one(tmp_path):
    TREES["dtd"][0](str(tmp_path))
    with pytest.warns(UserWarning, match="not CoOp's official split"):
        build_seeded(dataset_cfg(tmp_path, "dtd"))
    assert (tmp_path / "dtd" / "split_zhou_DescribableTextures.json").exists()


def test_subsampling_new_classes_of_a_one_class_dataset_is_an_error(tmp_path):
    split_path = generated_demo(tmp_path)
    split = json.loads(split_path.read_text())
    split_path.write_text(json.dumps({name: [row for row in rows if row[1] == 0] for name, rows in split.items()}))
    message = load_error(tmp_path, "demo", subsample="new")
    assert "DATASET.SUBSAMPLE_CLASSES new: the training split has 1 class(es), so there are no new classes" in message


def test_a_test_split_without_images_of_the_chosen_classes_is_an_error(tmp_path):
    split_path = generated_demo(tmp_path)
    split = json.loads(split_path.read_text())
    split["test"] = [row for row in split["test"] if row[1] >= 5]  # no base class left in test
    split_path.write_text(json.dumps(split))
    message = load_error(tmp_path, "demo", subsample="base")
    assert "Demo: the test split has no images of the base classes (DATASET.SUBSAMPLE_CLASSES base)" in message
    assert f"python -m datasets.check --root {tmp_path} demo" in message


def test_the_dataset_tells_the_shots_actually_drawn_per_class(tmp_path):
    split_path = generated_demo(tmp_path)
    split = json.loads(split_path.read_text())
    split["train"] = [row for row in split["train"] if row[1] != 3 or row[0].endswith(("_00.jpg", "_01.jpg"))]
    split_path.write_text(json.dumps(split))
    with pytest.warns(FewShotWarning):
        dataset = build_seeded(dataset_cfg(tmp_path, "demo", num_shots=16))
    assert dataset.shots_per_class == {label: 2 if label == 3 else 16 for label in range(10)}
    assert build_seeded(dataset_cfg(tmp_path, "demo")).shots_per_class is None
