"""CoOp's ways of building a split from raw annotations, used only when a split file is missing.

They draw from the stdlib `random` state in CoOp's order, so a rebuilt split depends on the seed and, like
CoOp's, on the file system's listing order. The official `split_zhou_*.json` files avoid both.
"""
import os
import random
from collections import defaultdict

from harness.data.class_folders import list_class_folders, list_images
from harness.data.errors import DatasetError
from harness.data.split_entries import SplitEntry

RAW_ORIGIN = "raw annotations"


def entry(impath, label, classname):
    return SplitEntry(impath, label, classname, RAW_ORIGIN)


def split_trainval(trainval, p_val=0.2):
    """Per class (first-appearance order): shuffle, round(n * p_val) to val, the rest to train."""
    print(f"Splitting trainval into {1 - p_val:.0%} train and {p_val:.0%} val")
    indices_by_label = defaultdict(list)
    for index, item in enumerate(trainval):
        indices_by_label[item.label].append(index)
    train, val = [], []
    for indices in indices_by_label.values():
        n_val = round(len(indices) * p_val)
        if n_val == 0:
            classname = trainval[indices[0]].classname
            raise DatasetError(f"class {classname!r} has too few images ({len(indices)}) for a val split")
        random.shuffle(indices)
        val.extend(trainval[index] for index in indices[:n_val])
        train.extend(trainval[index] for index in indices[n_val:])
    return train, val


def split_groups(groups, p_train=0.5, p_val=0.2):
    """groups: (label, classname, [image paths]) in order; each shuffled and cut round(n*p_train), round(n*p_val)."""
    print(f"Splitting into {p_train:.0%} train, {p_val:.0%} val, and {1 - p_train - p_val:.0%} test")
    train, val, test = [], [], []
    for label, classname, impaths in groups:
        random.shuffle(impaths)
        n_train, n_val = round(len(impaths) * p_train), round(len(impaths) * p_val)
        if n_train == 0 or n_val == 0 or n_train + n_val >= len(impaths):
            raise DatasetError(f"class {classname!r} has too few images ({len(impaths)}) for a train/val/test split")
        train.extend(entry(path, label, classname) for path in impaths[:n_train])
        val.extend(entry(path, label, classname) for path in impaths[n_train : n_train + n_val])
        test.extend(entry(path, label, classname) for path in impaths[n_train + n_val :])
    return {"train": train, "val": val, "test": test}


def split_class_folders(image_dir, ignored=(), renames=None):
    """CoOp's DTD builder: label = index of the sorted class folder, 50/20/30 per class, optional renames."""
    renames = renames or {}
    groups = []
    for label, folder in enumerate(list_class_folders(image_dir, ignored)):
        folder_dir = os.path.join(image_dir, folder)
        impaths = [os.path.join(folder_dir, name) for name in list_images(folder_dir)]
        groups.append((label, renames.get(folder, folder), impaths))
    return split_groups(groups)
