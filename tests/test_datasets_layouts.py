"""Every CoOp dataset loads from a tiny tree in its real layout with CoOp's class names, split sizes,
base/new classes and few-shot draws."""
import json
import os
import warnings

import pytest
import yaml
from dataset_fixtures import REPO_ROOT, build_seeded, dataset_cfg, expected_fewshot, rows
from dataset_trees import TRAINABLE, TREES

from harness.data.base_new import split_base_new
from harness.engine import DATASET_REGISTRY

# DASSL_COOP.md §4.2: classes of the full datasets and their base/new halves.
REAL_BASE_NEW = {
    "ImageNet": (500, 500), "Caltech101": (50, 50), "OxfordPets": (19, 18), "StanfordCars": (98, 98),
    "OxfordFlowers": (51, 51), "Food101": (51, 50), "FGVCAircraft": (50, 50), "SUN397": (199, 198),
    "DescribableTextures": (24, 23), "EuroSAT": (5, 5), "UCF101": (51, 50),
}
COOP_CONFIGS = {
    "imagenet": "ImageNet", "caltech101": "Caltech101", "oxford_pets": "OxfordPets", "stanford_cars": "StanfordCars",
    "oxford_flowers": "OxfordFlowers", "food101": "Food101", "fgvc_aircraft": "FGVCAircraft", "sun397": "SUN397",
    "dtd": "DescribableTextures", "eurosat": "EuroSAT", "ucf101": "UCF101", "imagenetv2": "ImageNetV2",
    "imagenet_sketch": "ImageNetSketch", "imagenet_a": "ImageNetA", "imagenet_r": "ImageNetR", "demo": "Demo",
}
ZEROSHOT_TEMPLATES = {  # CoOp's CUSTOM_TEMPLATES (DASSL_COOP.md §4.5)
    "OxfordPets": "a photo of a {}, a type of pet.", "OxfordFlowers": "a photo of a {}, a type of flower.",
    "FGVCAircraft": "a photo of a {}, a type of aircraft.", "DescribableTextures": "{} texture.",
    "EuroSAT": "a centered satellite photo of {}.", "StanfordCars": "a photo of a {}.", "SUN397": "a photo of a {}.",
    "Caltech101": "a photo of a {}.", "ImageNet": "a photo of a {}.", "ImageNetSketch": "a photo of a {}.",
    "ImageNetV2": "a photo of a {}.", "ImageNetA": "a photo of a {}.", "ImageNetR": "a photo of a {}.",
    "Food101": "a photo of {}, a type of food.", "UCF101": "a photo of a person doing {}.",
}


def build_tree(tmp_path, name, **options):
    TREES[name][0](str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the rebuilt-split warning; tested elsewhere
        return build_seeded(dataset_cfg(tmp_path, name, **options))


@pytest.mark.parametrize("config_name, registry_name", sorted(COOP_CONFIGS.items()))
def test_config_files_name_registered_datasets(config_name, registry_name):
    with open(os.path.join(REPO_ROOT, "configs", "datasets", f"{config_name}.yaml")) as file:
        assert yaml.safe_load(file) == {"DATASET": {"NAME": registry_name}}
    assert DATASET_REGISTRY.get(registry_name).config_name == config_name


@pytest.mark.parametrize("registry_name, sizes", sorted(REAL_BASE_NEW.items()))
def test_base_new_sizes_of_the_real_class_counts(registry_name, sizes):
    class_count = DATASET_REGISTRY.get(registry_name).class_count
    base, new = split_base_new(range(class_count))
    assert (len(base), len(new)) == sizes
    assert base + new == list(range(class_count))


def test_zeroshot_templates_are_coops():
    from harness.data.coop_dataset import zeroshot_template

    assert {name: zeroshot_template(name) for name in ZEROSHOT_TEMPLATES} == ZEROSHOT_TEMPLATES


@pytest.mark.parametrize("name", sorted(TREES))
def test_tree_loads_with_coop_class_names_and_sizes(tmp_path, name):
    _, classnames, (n_train, n_val, n_test) = TREES[name]
    dataset = build_tree(tmp_path, name)
    assert dataset.classnames == classnames
    assert dataset.num_classes == len(classnames)
    assert len(dataset.train_x) == n_train and len(dataset.test) == n_test
    if n_val is None:  # test-only variants: train_x is the test data, no val
        assert dataset.val is None and dataset.train_x == dataset.test
    else:
        assert len(dataset.val) == n_val


@pytest.mark.parametrize("name", TRAINABLE)
def test_base_and_new_classes_are_the_halves_relabelled(tmp_path, name):
    classnames = TREES[name][1]
    cut = (len(classnames) + 1) // 2
    for subsample, expected in (("base", classnames[:cut]), ("new", classnames[cut:])):
        dataset = build_tree(tmp_path, name, num_shots=2, subsample=subsample)
        assert dataset.classnames == expected
        for split in (dataset.train_x, dataset.val, dataset.test):
            assert sorted({item.label for item in split}) == list(range(len(expected)))


def full_rows(tmp_path, name):
    """The full train/val candidate rows: from the split file where there is one (read here, independently),
    else as the dataset lists them without shots (FGVCAircraft's lists, ImageNet's folders)."""
    cls = DATASET_REGISTRY.get(COOP_CONFIGS[name])
    image_dir = os.path.join(tmp_path, cls.dataset_dir, cls.image_dir)
    if cls.split_file:
        with open(os.path.join(tmp_path, cls.dataset_dir, cls.split_file)) as file:
            return json.load(file), image_dir
    everything = build_seeded(dataset_cfg(tmp_path, name))
    return {"train": rows(everything.train_x, image_dir), "val": rows(everything.val, image_dir)}, image_dir


@pytest.mark.filterwarnings("ignore::harness.data.errors.FewShotWarning")  # val has 1 image per class here
@pytest.mark.parametrize("name", TRAINABLE)
def test_few_shot_draw_equals_dassls_algorithm(tmp_path, name):
    build_tree(tmp_path, name)  # writes the split file where the dataset has one
    split, image_dir = full_rows(tmp_path, name)
    with_val = name != "imagenet"
    for seed in (1, 7):
        dataset = build_seeded(dataset_cfg(tmp_path, name, num_shots=2, seed=seed))
        train, val = expected_fewshot(split, seed, 2, with_val=with_val)
        assert rows(dataset.train_x, image_dir) == train
        if with_val:
            assert rows(dataset.val, image_dir) == val
        else:  # ImageNet: its val folder is both val and test
            assert dataset.val == dataset.test


def test_imagenet_labels_follow_sorted_wnid_folders(tmp_path):
    dataset = build_tree(tmp_path, "imagenet")
    wnid_of_label = {item.label: os.path.basename(os.path.dirname(item.impath)) for item in dataset.test}
    assert [wnid_of_label[label] for label in sorted(wnid_of_label)] == sorted(wnid_of_label.values())
