"""Class-per-folder image trees (ImageNet and its variants, CoOp's folder-split builder).

Orders follow CoOp: class folders sorted, images in the file system's listing order.
"""
import os
from collections import OrderedDict

from harness.data.errors import DatasetError
from harness.data.split_entries import SplitEntry


def list_class_folders(tree_dir, ignored=()):
    """Sorted names of the sub-folders of `tree_dir` (hidden ones and `ignored` left out)."""
    if not os.path.isdir(tree_dir):
        raise DatasetError(f"image folder {tree_dir} not found")
    return sorted(
        e.name for e in os.scandir(tree_dir) if e.is_dir() and not e.name.startswith(".") and e.name not in ignored
    )


def list_images(folder):
    return [name for name in os.listdir(folder) if not name.startswith(".")]


def read_classnames_file(path, fix=""):
    """ImageNet's classnames.txt (`<wnid> <class name words>` per line) as an ordered wnid -> name dict."""
    if not os.path.isfile(path):
        raise DatasetError(f"{path} not found" + (f"; fix: {fix}" if fix else ""))
    classnames = OrderedDict()
    with open(path, encoding="utf-8") as file:
        for line_number, line in enumerate(file, start=1):
            parts = line.strip().split(" ")
            if len(parts) < 2:
                raise DatasetError(
                    f"{path}: line {line_number} should be '<wnid> <class name>', found {line.strip()!r}"
                )
            classnames[parts[0]] = " ".join(parts[1:])
    return classnames


def entries_from_folders(tree_dir, folders_by_label, classname_of, listing=None):
    """SplitEntries of images in `tree_dir/<folder>` with the folder's index as label.

    `listing` ({folder: [image names]}) replaces listing the folders again, e.g. a cached listing.
    """
    origin = f"listing of {tree_dir}"
    entries = []
    for label, folder in enumerate(folders_by_label):
        folder_dir = os.path.join(tree_dir, folder)
        names = listing[folder] if listing is not None else list_images(folder_dir)
        classname = classname_of(folder)
        entries.extend(SplitEntry(os.path.join(folder_dir, name), label, classname, origin) for name in names)
    return entries
