"""The per-run result record: `metrics.json` beside `log.txt`, written atomically and last.

A run folder counts as finished only when its record exists (DomainBed's `done` file, with the results in
it); the protocol scripts skip finished folders and resume or re-run all others. train.py creates a
`ResultRecord` once the trainer is built (it keeps the numbers of every test the trainer runs; the last one
is the final test) and calls `write()` after the final test of a training run or after an `--eval-only` test.
"""
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone

from harness.json_files import write_json_atomic
from harness.results.layout import parse_run_dir

RECORD_NAME = "metrics.json"
SCHEMA_VERSION = 1
# Keys that say where files are, not what ran; SEED is its own field, so the seeds of one experiment share
# a hash (the leaderboard flags seeds whose configs differ).
HASH_EXCLUDED_KEYS = ("OUTPUT_DIR", "RESUME", "DATASET.ROOT", "SEED")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_IMPORTED = time.time()  # the start of wall time where /proc cannot tell when the process started


class ResultRecord:
    def __init__(self, trainer, args):
        self.trainer = trainer
        self.args = args
        self.final_test = None
        evaluator = trainer.evaluator
        evaluate = evaluator.evaluate

        def evaluate_and_keep():
            results = evaluate()
            self.final_test = {
                "accuracy": results["accuracy"],
                "macro_f1": results["macro_f1"],
                "error": results["error_rate"],
                "total": evaluator._total,
                "correct": evaluator._correct,
            }
            return results

        evaluator.evaluate = evaluate_and_keep

    def write(self):
        """Write the record of the run's last test; without a test (TEST.NO_TEST) there is nothing to record."""
        if self.final_test is None:
            print(f"No test was run: {RECORD_NAME} is not written")
            return None
        path = os.path.join(self.trainer.cfg.OUTPUT_DIR, RECORD_NAME)
        write_json_atomic(self.fields(), path, indent=2)
        print(f"Result record: {path}")
        return path

    def fields(self):
        from harness.engine import ENGINE  # here: the leaderboard reads records without loading an engine

        cfg, args = self.trainer.cfg, self.args
        layout = parse_run_dir(cfg.OUTPUT_DIR)
        return {
            "schema_version": SCHEMA_VERSION,
            **self.final_test,
            "trainer": cfg.TRAINER.NAME,
            "dataset": cfg.DATASET.NAME,
            "protocol": layout.protocol if layout else None,
            "subsample": cfg.DATASET.SUBSAMPLE_CLASSES,
            "shots": cfg.DATASET.NUM_SHOTS,
            "seed": cfg.SEED,
            "backbone": cfg.MODEL.BACKBONE.NAME,
            "config_hash": config_hash(cfg, getattr(self.trainer, "config_node", None)),
            "engine": ENGINE,
            "commit": git_commit(),
            "eval_only": bool(args.eval_only),
            "model_dir": args.model_dir if args.eval_only else None,
            "load_epoch": args.load_epoch if args.eval_only else None,
            "wall_time_s": round(time.time() - process_start_time(), 2),
            **peak_memory(self.trainer.device),
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }


def read_record(run_dir):
    """The record of a finished run, or None when the run has none (unfinished)."""
    path = os.path.join(run_dir, RECORD_NAME)
    if not os.path.isfile(path):
        return None
    with open(path) as file:
        return json.load(file)


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


def process_start_time():
    """When this process started (epoch seconds, from Linux's /proc), else when this module was imported."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            # Field 22 (starttime, clock ticks after boot); fields are counted after the ")" closing the name.
            ticks_after_boot = int(stat.read().rsplit(")", 1)[1].split()[19])
            seconds_since_boot = float(uptime.read().split()[0])
    except (OSError, ValueError, IndexError):
        return _IMPORTED
    return time.time() - seconds_since_boot + ticks_after_boot / os.sysconf("SC_CLK_TCK")


def peak_memory(device):
    """CUDA's max allocated memory on a GPU run, else the process's max resident set size, in MiB."""
    if device.type == "cuda":
        import torch

        return {"peak_memory_mib": round(torch.cuda.max_memory_allocated(device) / 2**20, 1),
                "peak_memory_kind": "cuda_max_allocated"}
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    bytes_per_unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return {"peak_memory_mib": round(max_rss * bytes_per_unit / 2**20, 1), "peak_memory_kind": "max_rss"}
