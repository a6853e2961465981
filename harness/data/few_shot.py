"""Few-shot subsets drawn by the engine's `generate_fewshot_dataset` (Dassl's algorithm), cached as JSON.

CoOp draws train with N shots, then val with min(N, 4), from the stdlib `random` state that train.py's
`set_random_seed` left. The cache lives where CoOp keeps its pickles (`<dataset>/split_fewshot/`), stores
paths relative to the data root, and is used only when its key matches: the dataset, the shot count,
the candidate images (so an edited split file invalidates it) and the random state before the draw (so a
hit returns exactly what drawing again would).
"""
import hashlib
import json
import os
import random
import warnings
from collections import Counter

from harness.data.errors import DatasetError, FewShotWarning
from harness.engine import Datum
from harness.json_files import read_json_file, write_json_atomic

CACHE_FORMAT = "coop-fewshot-v1"
VAL_SHOTS_CAP = 4  # CoOp: val = generate_fewshot_dataset(val, num_shots=min(num_shots, 4))


def few_shot_cache_path(dataset_dir, num_shots, seed):
    return os.path.join(dataset_dir, "split_fewshot", f"shot_{num_shots}-seed_{seed}.json")


def draw_few_shot(dataset, train, val, num_shots, cache_path, root):
    """(train, val) reduced to `num_shots` per class (val to min(num_shots, 4)); `val` may be None."""
    if num_shots < 1:
        return train, val
    name = type(dataset).__name__
    key = _cache_key(name, num_shots, train, val, root)
    cached = _read_cache(cache_path, key, root)
    if cached is not None:
        print(f"Loading preprocessed few-shot data from {cache_path}")
        return cached
    warn_short_classes(name, "train", train, num_shots)
    train = dataset.generate_fewshot_dataset(train, num_shots=num_shots)
    if val is not None:
        val_shots = min(num_shots, VAL_SHOTS_CAP)
        warn_short_classes(name, "val", val, val_shots)
        val = dataset.generate_fewshot_dataset(val, num_shots=val_shots)
    _write_cache(cache_path, key, train, val, root)
    return train, val


def warn_short_classes(dataset_name, split, items, num_shots):
    """Warn, naming each class that has fewer than `num_shots` images (Dassl then takes all of them)."""
    counts = Counter(item.label for item in items)
    names = {item.label: item.classname for item in items}
    short = [(label, count) for label, count in counts.items() if count < num_shots]
    if short:
        listed = ", ".join(f"'{names[label]}' (label {label}) has {count}" for label, count in short)
        warnings.warn(
            f"{dataset_name} {split}: {num_shots} shots requested but {len(short)} class(es) have fewer images, "
            f"so all of their images are used (Dassl's behaviour): {listed}",
            FewShotWarning,
            stacklevel=3,
        )


def _rows(items, root):
    return [[os.path.relpath(item.impath, root), item.label, item.classname] for item in items]


def _digest(obj):
    return hashlib.sha256(json.dumps(obj, separators=(",", ":")).encode()).hexdigest()


def _cache_key(name, num_shots, train, val, root):
    candidates = {"train": _rows(train, root), "val": None if val is None else _rows(val, root)}
    return {
        "dataset": name,
        "num_shots": num_shots,
        "candidates_sha256": _digest(candidates),
        "random_state_sha256": hashlib.sha256(repr(random.getstate()).encode()).hexdigest(),
    }


def _read_cache(cache_path, key, root):
    if not os.path.isfile(cache_path):
        return None
    try:
        content = read_json_file(cache_path, error_type=DatasetError)
        if content.get("format") != CACHE_FORMAT or content.get("key") != key:
            print(f"Ignoring few-shot cache {cache_path}: it was drawn from other data or another random state")
            return None
        train = [_datum(row, root) for row in content["train"]]
        val = None if content["val"] is None else [_datum(row, root) for row in content["val"]]
    except Exception as error:  # a damaged cache is only a lost shortcut: draw again
        warnings.warn(f"Ignoring unreadable few-shot cache {cache_path} ({error}); drawing again")
        return None
    return train, val


def _datum(row, root):
    relative_path, label, classname = row
    return Datum(impath=os.path.join(root, relative_path), label=label, classname=classname)


def _write_cache(cache_path, key, train, val, root):
    content = {
        "format": CACHE_FORMAT,
        "key": key,
        "train": _rows(train, root),
        "val": None if val is None else _rows(val, root),
    }
    try:
        write_json_atomic(content, cache_path)
    except OSError as error:  # e.g. a read-only shared data folder: the draw stands, only the cache is lost
        warnings.warn(f"Could not save the few-shot cache {cache_path} ({error}); continuing without it")
        return
    print(f"Saving preprocessed few-shot data to {cache_path}")
