"""Build configs and trainers the way train.py does, for tests that run trainers in-process or as train.py."""
import os
import subprocess
import sys

import train
from harness.engine import build_trainer, set_random_seed

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_DATASET_CONFIG = os.path.join(REPO_ROOT, "configs", "datasets", "demo.yaml")


def trainer_config_file(trainer, name="demo"):
    return os.path.join(REPO_ROOT, "configs", "trainers", trainer, f"{name}.yaml")


def train_py_args(trainer, root, output_dir, seed=1, config=None, dataset_config=DEMO_DATASET_CONFIG, extra=(),
                  opts=()):
    """train.py's command-line arguments (after `train.py`)."""
    return [
        "--root", str(root), "--seed", str(seed), "--trainer", trainer,
        "--dataset-config-file", dataset_config,
        "--config-file", config or trainer_config_file(trainer),
        "--output-dir", str(output_dir), *extra, *[str(o) for o in opts],
    ]


def make_cfg(trainer, root, output_dir, **kwargs):
    """The frozen config train.py would build from these arguments."""
    return train.setup_cfg(train.build_parser().parse_args(train_py_args(trainer, root, output_dir, **kwargs)))


def build_test_trainer(trainer, root, output_dir, **kwargs):
    """A trainer built in this process as train.py builds it (seeded first)."""
    cfg = make_cfg(trainer, root, output_dir, **kwargs)
    set_random_seed(cfg.SEED)
    return build_trainer(cfg)


def run_train_py(args, timeout=300, env=None):
    """Run train.py as a subprocess from the repository root; returns the CompletedProcess (text output)."""
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, "train.py"), *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
