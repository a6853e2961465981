"""Few-shot subsets drawn by the engine's `generate_fewshot_dataset` (Dassl's algorithm), cached as JSON.

CoOp draws train with N shots, then val with min(N, 4), from the stdlib `random` state that train.py's
`set_random_seed` left. The cache lives where CoOp keeps its pickles (`<dataset>/split_fewshot/`) and stores
paths relative to the data root. It is never trusted: the draw is made every time (milliseconds, and it leaves
the random state as an uncached run does) and compared with the file; a file that differs (edited by hand, drawn
from another split or random state, damaged) is rewritten from the draw with a line saying what was wrong. So a
run always trains on exactly the draw its seed gives.
"""
import hashlib
import json
import os
import random
import warnings
from collections import Counter

from harness.data.errors import DatasetError, FewShotWarning
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
    candidates = train + (val or [])
    warn_short_classes(name, "train", train, num_shots)
    train = dataset.generate_fewshot_dataset(train, num_shots=num_shots)
    if val is not None:
        val_shots = min(num_shots, VAL_SHOTS_CAP)
        warn_short_classes(name, "val", val, val_shots)
        val = dataset.generate_fewshot_dataset(val, num_shots=val_shots)
    content = {"format": CACHE_FORMAT, "key": key, "train": _rows(train, root),
               "val": None if val is None else _rows(val, root)}
    if not os.path.exists(cache_path):
        _write_cache(cache_path, content, f"Saving preprocessed few-shot data to {cache_path}")
        return train, val
    problem = _cache_problem(cache_path, content, _rows(candidates, root), root)
    if problem is None:
        print(f"Few-shot cache {cache_path} matches this seed's draw")
    else:
        _write_cache(cache_path, content, f"Few-shot cache {cache_path} was not this seed's draw ({problem}); "
                                          "rebuilt it from the split")
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


def _cache_problem(cache_path, expected, candidate_rows, root):
    """None if the cache file holds exactly `expected`, else what is wrong with it (the first difference)."""
    try:
        content = read_json_file(cache_path, error_type=DatasetError)
    except (OSError, DatasetError) as error:
        return f"unreadable: {error}"
    if content == expected:
        return None
    if not isinstance(content, dict) or content.get("format") != CACHE_FORMAT:
        return f"not a {CACHE_FORMAT} file"
    if content.get("key") != expected["key"]:
        return "drawn from other data, shots or random state"
    in_split = {row[0]: row for row in candidate_rows}
    for split in ("train", "val"):
        rows, drawn = content.get(split), expected[split]
        if rows == drawn:
            continue
        if not isinstance(rows, list) or not isinstance(drawn, list) or len(rows) != len(drawn):
            return f"its {split} entries are not the {len(drawn or [])} drawn"
        for index, (row, drawn_row) in enumerate(zip(rows, drawn, strict=True)):
            if row != drawn_row:
                return f"{split}[{index}] {row!r} {_row_problem(row, in_split, root)}"
    return "its content differs from the draw"


def _row_problem(row, in_split, root):
    if not (isinstance(row, list) and len(row) == 3 and isinstance(row[0], str)):
        return "is not [image path, label, class name]"
    relative_path, label, classname = row
    if relative_path not in in_split:
        missing = "" if os.path.isfile(os.path.join(root, relative_path)) else ", and points at a missing file"
        return f"is not in the split{missing}"
    _, split_label, split_classname = in_split[relative_path]
    if (label, classname) != (split_label, split_classname):
        return f"has label {label} {classname!r}, the split {split_label} {split_classname!r}"
    return "is in the split but not this seed's draw"


def _write_cache(cache_path, content, line):
    try:
        write_json_atomic(content, cache_path)
    except OSError as error:  # e.g. a read-only shared data folder: the draw stands, only the cache is lost
        warnings.warn(f"Could not save the few-shot cache {cache_path} ({error}); continuing without it", stacklevel=3)
        return
    print(line)
