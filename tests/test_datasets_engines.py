"""The datasets behave the same on both engines, and importing them stays cheap (train.py imports them all)."""
import json
import os
import subprocess
import sys

import pytest
from dataset_fixtures import REPO_ROOT, build_seeded, dataset_cfg, rows

BUNDLED_RUN = """
import json, sys
import harness.engine
before = set(sys.modules)
from harness.registration import import_submodules
import_submodules("datasets")
newly_imported = sorted(name for name in ("scipy", "gdown", "tqdm") if name in sys.modules and name not in before)
from dataset_fixtures import build_seeded, dataset_cfg, rows
dataset = build_seeded(dataset_cfg(sys.argv[1], "demo", num_shots=16, seed=4, subsample="new"))
image_dir = sys.argv[1] + "/demo/images"
print(json.dumps({"engine": harness.engine.ENGINE, "newly_imported": newly_imported,
                  "train": rows(dataset.train_x, image_dir), "val": rows(dataset.val, image_dir)}))
"""


@pytest.fixture(scope="module")
def bundled_run(tmp_path_factory):
    """Import the datasets and draw Demo's 16-shot new classes in a fresh process on the bundled engine."""
    root = tmp_path_factory.mktemp("bundled")
    environment = {**os.environ, "DASSL_ENGINE": "bundled",
                   "PYTHONPATH": os.pathsep.join([REPO_ROOT, os.path.join(REPO_ROOT, "tests")])}
    done = subprocess.run([sys.executable, "-c", BUNDLED_RUN, str(root)], cwd=REPO_ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_same_seed_draws_the_same_images_on_this_engine_and_the_bundled_one(tmp_path, bundled_run):
    dataset = build_seeded(dataset_cfg(tmp_path, "demo", num_shots=16, seed=4, subsample="new"))
    image_dir = str(tmp_path / "demo" / "images")
    assert bundled_run["engine"] == "bundled"
    assert rows(dataset.train_x, image_dir) == bundled_run["train"]
    assert rows(dataset.val, image_dir) == bundled_run["val"]


def test_importing_the_datasets_loads_no_scipy_gdown_or_tqdm(bundled_run):
    assert bundled_run["newly_imported"] == []
