"""CoOp's base-to-new protocol: the first ceil(n/2) labels of the training set are the base classes, the
rest the new classes; the chosen classes are relabelled from 0 in label order."""
import math

from harness.config import SUBSAMPLE_CHOICES
from harness.data.errors import DatasetError
from harness.engine import Datum


def split_base_new(labels):
    """(base labels, new labels), each sorted."""
    ordered = sorted(set(labels))
    cut = math.ceil(len(ordered) / 2)
    return ordered[:cut], ordered[cut:]


def subsample_classes(*splits, subsample="all"):
    """Keep the base or new classes of every split (the class set comes from the first, the train split)."""
    if subsample not in SUBSAMPLE_CHOICES:
        raise DatasetError(f"DATASET.SUBSAMPLE_CLASSES must be one of {list(SUBSAMPLE_CHOICES)}, got {subsample!r}")
    if subsample == "all":
        return splits
    base, new = split_base_new(item.label for item in splits[0])
    selected = base if subsample == "base" else new
    if not selected:
        raise DatasetError(f"DATASET.SUBSAMPLE_CLASSES {subsample}: the training split has {len(base)} class(es), so "
                           f"there are no {subsample} classes; use 'all', or a dataset with at least two classes")
    print(f"SUBSAMPLE {subsample.upper()} CLASSES!")
    relabel = {label: index for index, label in enumerate(selected)}
    return [
        [Datum(impath=item.impath, label=relabel[item.label], classname=item.classname)
         for item in split if item.label in relabel]
        for split in splits
    ]
