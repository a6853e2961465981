"""What the sweep and protocol-script tests share: the demo selection, the serial reference, reading records."""
import json
import os
import subprocess
import sys

from tests.trainer_helpers import REPO_ROOT

SWEEP_SEEDS = (1, 2)
SWEEP_TRAINERS = ("ZeroshotCLIP", "MMA")
METRICS = ("accuracy", "macro_f1", "error", "total", "correct")


def script_environment(demo_root, output, **extra):
    # One thread per run: the tiny model's operations are too small for intra-op threads.
    return {**os.environ, "PYTHON": sys.executable, "DATA": str(demo_root), "OUTPUT": str(output),
            "DATASETS": "demo", "SEEDS": " ".join(map(str, SWEEP_SEEDS)), "OMP_NUM_THREADS": "1", **extra}


def run_serial_reference(demo_root, output):
    env = script_environment(demo_root, output)
    for trainer in SWEEP_TRAINERS:
        result = subprocess.run(["bash", "scripts/run_base2new.sh", trainer, "demo"], cwd=REPO_ROOT, env=env,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return output, env


def demo_run_dirs(output, trainers=SWEEP_TRAINERS, seeds=SWEEP_SEEDS):
    """Every run folder of the demo base-to-novel selection."""
    return [os.path.join(str(output), "base2new", phase, "demo", "shots_16", trainer, "demo", f"seed{seed}")
            for trainer in trainers for seed in seeds for phase in ("train_base", "test_new")]


def metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.json")) as file:
        record = json.load(file)
    return {key: record[key] for key in METRICS}


def same_metrics(output, reference, trainers=SWEEP_TRAINERS, seeds=SWEEP_SEEDS):
    """{run folder (relative): (metrics, reference metrics)} for every run whose metrics differ."""
    differing = {}
    pairs = zip(demo_run_dirs(output, trainers, seeds), demo_run_dirs(reference, trainers, seeds))
    for run_dir, reference_dir in pairs:
        found, expected = metrics(run_dir), metrics(reference_dir)
        if found != expected:
            differing[os.path.relpath(run_dir, str(output))] = (found, expected)
    return differing


FAKE_PYTHON = """#!{python}
# Stands in for python: records each train.py call and finishes it with a valid record; runs anything else.
import json, os, sys
sys.path.insert(0, {repo!r})
if sys.argv[1:2] != ["train.py"]:
    os.execv({python!r}, [{python!r}, *sys.argv[1:]])
arguments = sys.argv[2:]
with open(os.environ["CALLS"], "a") as calls:
    calls.write(" ".join(arguments) + "\\n")
from harness.results.layout import parse_run_dir
from harness.results.record import dataset_name_of_config
output_dir = arguments[arguments.index("--output-dir") + 1]
layout = parse_run_dir(output_dir)
os.makedirs(output_dir, exist_ok=True)
record = {{"schema_version": 1, "accuracy": 50.0, "macro_f1": 50.0, "error": 50.0, "total": 2, "correct": 1,
          "trainer": layout.trainer, "dataset": dataset_name_of_config(layout.dataset), "seed": layout.seed,
          "protocol": layout.protocol}}
with open(os.path.join(output_dir, "metrics.json"), "w") as file:
    json.dump(record, file)
"""


def install_fake_python(folder):
    """A `python` in `folder` that records train.py calls in $CALLS instead of training (see FAKE_PYTHON)."""
    path = os.path.join(str(folder), "python")
    with open(path, "w") as file:
        file.write(FAKE_PYTHON.format(python=sys.executable, repo=REPO_ROOT))
    os.chmod(path, 0o755)
    return path


def sweep(*arguments, env=None, check=True, timeout=900):
    result = subprocess.run([sys.executable, "-m", "harness.sweep", *arguments], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result
