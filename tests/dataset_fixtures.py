"""Helpers shared by the dataset tests: configs, building a dataset as train.py does, tiny images, and an
independent re-implementation of Dassl's few-shot draw (DASSL_COOP.md §1.4) to compare against."""
import json
import os
import random

from PIL import Image

from harness.config import extend_cfg
from harness.engine import build_dataset, get_cfg_default
from harness.registration import register_all

register_all()

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def dataset_cfg(root, config_name, num_shots=-1, seed=1, subsample="all"):
    """A frozen config as train.py builds it: defaults, extend_cfg, the dataset YAML, then options."""
    cfg = get_cfg_default()
    extend_cfg(cfg)
    cfg.merge_from_file(os.path.join(REPO_ROOT, "configs", "datasets", f"{config_name}.yaml"))
    cfg.merge_from_list(["DATASET.ROOT", str(root), "DATASET.NUM_SHOTS", num_shots, "SEED", seed,
                         "DATASET.SUBSAMPLE_CLASSES", subsample])
    cfg.freeze()
    return cfg


def build_seeded(cfg):
    """Seed the stdlib RNG as train.py's set_random_seed does, then build the dataset."""
    random.seed(cfg.SEED)
    return build_dataset(cfg)


def write_image(path, colour=(128, 64, 32), size=(8, 8)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def write_json(obj, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        json.dump(obj, file)


def reference_fewshot(items, num_shots):
    """Dassl's generate_fewshot_dataset for one source, re-implemented from its description."""
    groups = {}
    for item in items:
        groups.setdefault(item[1], []).append(item)
    chosen = []
    for group in groups.values():
        chosen.extend(random.sample(group, num_shots) if len(group) >= num_shots else group)
    return chosen


def expected_fewshot(split_rows, seed, num_shots, with_val=True):
    """The (train, val) rows CoOp would draw from the full split rows under `seed`."""
    random.seed(seed)
    train = reference_fewshot(split_rows["train"], num_shots)
    val = reference_fewshot(split_rows["val"], min(num_shots, 4)) if with_val else None
    return train, val


def rows(datums, image_dir):
    """Datums as split-file rows [path relative to image_dir, label, classname]."""
    return [[os.path.relpath(d.impath, image_dir), d.label, d.classname] for d in datums]
