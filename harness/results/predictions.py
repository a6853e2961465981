"""Per-image test predictions: `predictions.npz` beside a run's `metrics.json`, for paired comparisons.

One row per evaluated image, in the order of the evaluated split: its index in the split, its label, the
predicted class (Dassl's `output.max(1)[1]`, as its evaluator counts), and with `TEST.PREDICTIONS_TOPK k` the k
best classes and their logits (fp16). A JSON header says which test set it is (a SHA-256 of its images' paths
relative to the data root and their labels, in order), how many images and how many were right. The file is a
compressed NumPy archive (no pickles: `numpy.load(path)` reads it without torch), written atomically before the
record; ImageNet's 50,000 test images take about 0.1 MB without the top-k columns.

A file counts only when it agrees with its run's record: the same total, correct count and test set. Otherwise
it is reported in one line and treated as missing (a comparison then falls back to the seeds alone).
"""
import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np

from harness.errors import warn
from harness.json_files import write_file_atomic

PREDICTIONS_NAME = "predictions.npz"
FORMAT = "harness-predictions-v1"


@dataclass(frozen=True)
class Predictions:
    index: np.ndarray  # position of each image in the evaluated split
    label: np.ndarray
    prediction: np.ndarray
    test_set_sha256: str
    topk_class: np.ndarray = None  # (images, k) best classes, best first; None without TEST.PREDICTIONS_TOPK
    topk_logit: np.ndarray = None

    @property
    def total(self):
        return len(self.label)

    @property
    def correct(self):
        """Whether each image was classified right (in split order)."""
        return self.label == self.prediction


def test_set_digest(items, data_root):
    """SHA-256 of the evaluated images (path relative to the data root, label), in order: equal for two runs
    exactly when they were tested on the same images with the same labels, wherever the data root lies."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(f"{os.path.relpath(os.path.abspath(item.impath), data_root)}\t{item.label}\n".encode())
    return digest.hexdigest()


def _class_dtype(largest):
    return np.uint16 if largest < 2**16 else np.uint32


def write_predictions(run_dir, predictions):
    """Write `predictions` to <run_dir>/predictions.npz atomically; returns the path."""
    largest = int(max(predictions.label.max(initial=0), predictions.prediction.max(initial=0)))
    arrays = {
        "index": predictions.index.astype(np.uint32),
        "label": predictions.label.astype(_class_dtype(largest)),
        "prediction": predictions.prediction.astype(_class_dtype(largest)),
    }
    if predictions.topk_class is not None:
        arrays["topk_class"] = predictions.topk_class.astype(_class_dtype(int(predictions.topk_class.max(initial=0))))
        arrays["topk_logit"] = predictions.topk_logit.astype(np.float16)
    header = {"format": FORMAT, "total": predictions.total, "correct": int(predictions.correct.sum()),
              "test_set_sha256": predictions.test_set_sha256}
    path = os.path.join(run_dir, PREDICTIONS_NAME)
    write_file_atomic(path, lambda file: np.savez_compressed(file, header=np.array(json.dumps(header)), **arrays))
    return path


def read_predictions(run_dir, record):
    """The run's Predictions, or None when it has none or one that disagrees with its record `record` (then a line
    says why)."""
    path = os.path.join(run_dir, PREDICTIONS_NAME)
    if not os.path.isfile(path):
        return None
    problem, predictions = _read(path)
    if problem is None:
        problem = _disagreement(predictions, record)
    if problem is not None:
        warn(f"{path}: {problem}; its per-image predictions are not used (run the evaluation again to rewrite it)")
        return None
    return predictions


def _read(path):
    try:
        with np.load(path, allow_pickle=False) as archive:
            header = json.loads(str(archive["header"]))
            arrays = {name: archive[name] for name in archive.files if name != "header"}
    except (OSError, ValueError, KeyError) as error:
        return f"unreadable ({type(error).__name__}: {error})", None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        return f"not a {FORMAT} file", None
    if not {"index", "label", "prediction"} <= arrays.keys():
        return "incomplete (index, label or prediction missing)", None
    lengths = {len(array) for array in arrays.values()}
    if len(lengths) != 1:
        return "its columns have different lengths", None
    predictions = Predictions(arrays["index"].astype(np.int64), arrays["label"].astype(np.int64),
                              arrays["prediction"].astype(np.int64), str(header.get("test_set_sha256")),
                              arrays.get("topk_class"), arrays.get("topk_logit"))
    if header.get("total") != predictions.total or header.get("correct") != int(predictions.correct.sum()):
        return "its header's counts do not match its rows", None
    return None, predictions


def _disagreement(predictions, record):
    correct = int(predictions.correct.sum())
    if (predictions.total, correct) != (record.get("total"), record.get("correct")):
        return (f"{correct}/{predictions.total} right, but the record says {record.get('correct')}/"
                f"{record.get('total')}")
    expected = record.get("test_set_sha256")
    if expected is not None and predictions.test_set_sha256 != expected:
        return "it was made on another test set than the record's"
    return None
