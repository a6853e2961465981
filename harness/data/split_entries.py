"""CoOp's split files, `split_zhou_<Name>.json`: {"train"|"val"|"test": [[image path, label, class name], ...]}.

Image paths in the file are relative to the dataset's image folder. Every entry remembers where it came
from (`origin`), so an error can name the file and the entry.
"""
import os
from typing import NamedTuple

from harness.data.errors import DatasetError
from harness.engine import Datum
from harness.json_files import read_json_file, write_json_atomic
from harness.process_cache import KeyedCache, file_identity

SPLIT_NAMES = ("train", "val", "test")


class SplitEntry(NamedTuple):
    impath: str  # absolute image path
    label: int
    classname: str
    origin: str  # where the entry was read, e.g. 'split_zhou_OxfordPets.json train[12] ["a.jpg", 0, "x"]'


def describe_row(source, split, index, row):
    return f"{source} {split}[{index}] {list(row)!r}"


# A warm worker's split files read before, by file identity (harness/process_cache.py).
SPLIT_FILES = KeyedCache(capacity=16)


def read_split_file(split_path, image_dir, fix=""):
    """{split name: [SplitEntry]} in file order; structural problems raise DatasetError at their position."""
    print(f"Reading split from {split_path}")
    identity = file_identity(split_path)
    if identity is None:
        return _parse_split_file(split_path, image_dir, fix)  # says what is missing
    splits = SPLIT_FILES.get((identity, image_dir, fix), lambda: _parse_split_file(split_path, image_dir, fix))
    return {split: list(entries) for split, entries in splits.items()}


def _parse_split_file(split_path, image_dir, fix):
    content = read_json_file(split_path, fix=fix, error_type=DatasetError)
    suffix = f"; fix: {fix}" if fix else ""
    if not isinstance(content, dict) or any(split not in content for split in SPLIT_NAMES):
        found = sorted(content) if isinstance(content, dict) else type(content).__name__
        raise DatasetError(f"{split_path}: expected an object with keys {list(SPLIT_NAMES)}, found {found}{suffix}")
    source = os.path.basename(split_path)
    splits = {}
    for split in SPLIT_NAMES:
        rows = content[split]
        if not isinstance(rows, list):
            found = type(rows).__name__
            raise DatasetError(f"{split_path}: '{split}' should be a list of entries, found {found}{suffix}")
        entries = []
        for index, row in enumerate(rows):
            if not _is_split_row(row):
                raise DatasetError(
                    f"{split_path}: {split}[{index}] should be [image path, label, class name], found {row!r}{suffix}"
                )
            relative_path, label, classname = row
            origin = describe_row(source, split, index, row)
            entries.append(SplitEntry(os.path.join(image_dir, relative_path), label, classname, origin))
        splits[split] = entries
    return splits


def write_split_file(splits, split_path, image_dir):
    """Save {split name: [SplitEntry]} in CoOp's format, with paths relative to `image_dir`."""
    content = {
        split: [[os.path.relpath(entry.impath, image_dir), entry.label, entry.classname] for entry in splits[split]]
        for split in SPLIT_NAMES
    }
    write_json_atomic(content, split_path, indent=4)
    print(f"Saved split to {split_path}")


def missing_images(entries):
    return [entry for entry in entries if not os.path.isfile(entry.impath)]


def to_datums(entries):
    """Dassl Datums for entries whose images are known to exist."""
    return [Datum(impath=entry.impath, label=entry.label, classname=entry.classname) for entry in entries]


def _is_split_row(row):
    return (
        isinstance(row, list)
        and len(row) == 3
        and isinstance(row[0], str)
        and isinstance(row[1], int)
        and not isinstance(row[1], bool)
        and row[1] >= 0
        and isinstance(row[2], str)
    )
