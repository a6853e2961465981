"""The per-run result record: `metrics.json` beside `log.txt`, written atomically and last.

A run folder counts as finished only when it holds a valid record (DomainBed's `done` file, with the results in
it): `record_is_valid` is what the protocol scripts ask before they skip a folder, and `read_record` is how the
parser and the leaderboard read one. A record that is empty, corrupt or incomplete, or whose seed, trainer,
dataset or protocol disagree with its folder, is reported in one line and counts as unfinished, never averaged.

train.py creates a `ResultRecord` once the trainer is built and calls `write()` after the final test of a
training run or after an `--eval-only` test: the trainer's test step hands each evaluation on as its
`last_evaluation` (harness.bundled.trainer.SplitEvaluation), and the record holds the last one, the final test,
with its per-image predictions beside it (harness/results/predictions.py), written just before the record.
"""
import hashlib
import json
import os
import resource
import subprocess
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import yaml

from harness.errors import warn
from harness.json_files import write_json_atomic
from harness.results.layout import parse_run_dir
from harness.run_clock import current as current_run_clock

RECORD_NAME = "metrics.json"
SCHEMA_VERSION = 1
# Keys that say where files are or what is saved, not what ran; SEED is its own field, so the seeds of one
# experiment share a hash (the leaderboard flags seeds whose configs differ).
HASH_EXCLUDED_KEYS = ("OUTPUT_DIR", "RESUME", "DATASET.ROOT", "DATASET.TEST_IMAGE_CACHE", "TEST.PREDICTIONS_TOPK",
                      "SEED")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Fields every record must hold, with their types, for the run to count as finished.
REQUIRED_FIELDS = {
    "schema_version": int, "accuracy": (int, float), "macro_f1": (int, float), "error": (int, float),
    "total": int, "correct": int, "trainer": str, "dataset": str, "seed": int,
}


@dataclass(frozen=True)
class TestResult:
    """One test as the evaluator computed it (Dassl's result block)."""

    split: str
    accuracy: float
    macro_f1: float
    error: float
    total: int
    correct: int

    @classmethod
    def from_evaluation(cls, evaluation):
        """The numbers of a SplitEvaluation; accuracy = 100 * correct / total gives back the count."""
        results, total = evaluation.results, evaluation.total
        return cls(evaluation.split, results["accuracy"], results["macro_f1"], results["error_rate"], total,
                   round(results["accuracy"] * total / 100))


class ResultRecord:
    def __init__(self, trainer, args):
        self.trainer = trainer
        self.args = args

    @property
    def final_evaluation(self):
        return getattr(self.trainer, "last_evaluation", None)

    def write(self):
        """Write the predictions and the record of the run's last test; without a test (TEST.NO_TEST) there is
        nothing to record."""
        if self.final_evaluation is None:
            print(f"No test was run: {RECORD_NAME} is not written")
            return None
        from harness.results.predictions import write_predictions  # here: numpy stays out of `train.py --help`

        write_predictions(self.trainer.cfg.OUTPUT_DIR, self.predictions())
        print(current_run_clock().summary())
        path = os.path.join(self.trainer.cfg.OUTPUT_DIR, RECORD_NAME)
        write_json_atomic(self.fields(), path, indent=2)
        print(f"Result record: {path}")
        return path

    def predictions(self):
        from harness.results.predictions import Predictions, test_set_digest

        evaluation = self.final_evaluation
        data_root = os.path.abspath(os.path.expanduser(self.trainer.cfg.DATASET.ROOT))
        return Predictions(evaluation.index, evaluation.label, evaluation.prediction,
                           test_set_digest(evaluation.items, data_root), evaluation.topk_class, evaluation.topk_logit)

    def fields(self):
        from harness.engine import ENGINE  # here: the leaderboard reads records without loading an engine

        cfg, args = self.trainer.cfg, self.args
        layout = parse_run_dir(cfg.OUTPUT_DIR)
        test = asdict(TestResult.from_evaluation(self.final_evaluation))
        del test["split"]
        return {
            "schema_version": SCHEMA_VERSION,
            **test,
            "test_set_sha256": self.predictions().test_set_sha256,
            "trainer": cfg.TRAINER.NAME,
            "dataset": cfg.DATASET.NAME,
            "protocol": layout.protocol if layout else None,
            "subsample": cfg.DATASET.SUBSAMPLE_CLASSES,
            "shots": cfg.DATASET.NUM_SHOTS,
            **({} if args.eval_only else shots_used(self.trainer.dm.dataset.train_x)),
            "seed": cfg.SEED,
            "backbone": cfg.MODEL.BACKBONE.NAME,
            "config_hash": config_hash(cfg, getattr(self.trainer, "config_node", None)),
            "engine": ENGINE,
            "commit": git_commit(),
            "eval_only": bool(args.eval_only),
            "model_dir": args.model_dir if args.eval_only else None,
            "load_epoch": args.load_epoch if args.eval_only else None,
            **run_time(),
            **peak_memory(self.trainer.device),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }


def shots_used(train_items):
    """The training images per class of the draw actually trained on (a class with fewer images than
    DATASET.NUM_SHOTS gives all it has)."""
    per_class = Counter(item.label for item in train_items)
    return {"shots_used_min": min(per_class.values()), "shots_used_max": max(per_class.values())}


def record_problem(run_dir):
    """Why the run's record cannot count (one line), or None when it is valid and agrees with its folder.

    A missing record is a problem too ("no metrics.json"): the run has not finished."""
    path = os.path.join(run_dir, RECORD_NAME)
    if not os.path.isfile(path):
        return f"{path}: no {RECORD_NAME} (the run has not finished)"
    try:
        with open(path, encoding="utf-8") as file:
            record = json.load(file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"{path}: unreadable or corrupt ({error}); the run counts as unfinished, run it again"
    if not isinstance(record, dict):
        return f"{path}: not a result record (a JSON object); the run counts as unfinished, run it again"
    wrong = [key for key, kind in REQUIRED_FIELDS.items()
             if not isinstance(record.get(key), kind) or isinstance(record.get(key), bool)]
    if wrong:
        return (f"{path}: incomplete record (missing or invalid: {', '.join(wrong)}); the run counts as unfinished, "
                "run it again")
    disagreement = _disagreement_with_folder(record, run_dir)
    if disagreement:
        return (f"{path}: {disagreement}; the record belongs to another run (a copied or moved folder?) and is not "
                "counted: move it to its own folder, or delete it and run this one")
    return None


def _disagreement_with_folder(record, run_dir):
    layout = parse_run_dir(run_dir)
    if layout is None:
        return None
    expected = {"seed": layout.seed, "trainer": layout.trainer, "protocol": layout.protocol,
                "dataset": dataset_name_of_config(layout.dataset)}
    for key, value in expected.items():
        if value is not None and record.get(key) != value:
            return f"its {key} is {record.get(key)!r} but its folder says {value!r}"
    return None


def dataset_name_of_config(config_name):
    """DATASET.NAME of configs/datasets/<config_name>.yaml, or None when there is no such config."""
    path = os.path.join(REPO_ROOT, "configs", "datasets", f"{config_name}.yaml")
    try:
        with open(path) as file:
            return ((yaml.safe_load(file) or {}).get("DATASET") or {}).get("NAME")
    except (OSError, yaml.YAMLError):
        return None


def read_record(run_dir):
    """The record of a finished run, or None when the run has none or an invalid one (then a line says why)."""
    if not os.path.isfile(os.path.join(run_dir, RECORD_NAME)):
        return None
    problem = record_problem(run_dir)
    if problem is not None:
        warn(problem)
        return None
    with open(os.path.join(run_dir, RECORD_NAME), encoding="utf-8") as file:
        return json.load(file)


def record_is_valid(run_dir):
    """Whether the run finished with a valid record (the protocol scripts' "skip this run"); an existing but
    invalid record is reported in one line."""
    return read_record(run_dir) is not None


def config_hash(cfg, trainer_node=None):
    """A short hash of the resolved config, without paths and seed, and without other trainers' nodes (so adding
    or changing another method's defaults leaves this method's hashes alone)."""
    flat = _flatten(cfg)
    for key in HASH_EXCLUDED_KEYS:
        flat.pop(key, None)
    if trainer_node is not None:
        own = ("TRAINER.NAME", f"TRAINER.{trainer_node}.")
        flat = {k: v for k, v in flat.items() if not k.startswith("TRAINER.") or k.startswith(own)}
    text = json.dumps(flat, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _flatten(node, prefix=""):
    flat = {}
    for key, value in node.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def git_commit():
    """The harness's git HEAD, or "unknown" outside a git checkout."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                                timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def run_time():
    """The run's own wall time (from its start, not its process's) and its start-up (harness/run_clock.py)."""
    clock = current_run_clock()
    startup = clock.startup_s
    return {"wall_time_s": round(clock.wall_time_s, 2), "startup_s": None if startup is None else round(startup, 2),
            "startup_phases_s": {name: round(seconds, 2) for name, seconds in clock.phases.items()}}


def reset_peak_memory(device_type):
    """Start counting the peak memory afresh, for a run that is not its process's first (a warm worker)."""
    if device_type == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()
        return
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")  # resets the peak resident set size (VmHWM) to the current one
    except OSError:
        pass  # elsewhere the peak stays the process's


def _resident_peak_bytes():
    """VmHWM (resettable, see reset_peak_memory) where Linux gives it, else getrusage's max resident set size."""
    try:
        with open("/proc/self/status") as file:
            for line in file:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max_rss * (1 if sys.platform == "darwin" else 1024)  # ru_maxrss is bytes on macOS, KiB on Linux


def peak_memory(device):
    """CUDA's max allocated memory on a GPU run, else the process's max resident set size, in MiB."""
    if device.type == "cuda":
        import torch

        return {"peak_memory_mib": round(torch.cuda.max_memory_allocated(device) / 2**20, 1),
                "peak_memory_kind": "cuda_max_allocated"}
    return {"peak_memory_mib": round(_resident_peak_bytes() / 2**20, 1), "peak_memory_kind": "max_rss"}
