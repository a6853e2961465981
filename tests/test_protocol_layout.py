"""Run folders -> protocol (harness/results/layout.py), the protocols' default configs, the scripts' usage lines."""
import os
import subprocess
import sys

import pytest

from harness.protocols import default_config
from harness.results.layout import RunLayout, parse_run_dir
from tests.trainer_helpers import REPO_ROOT

SCRIPT_TRAINERS = ("ZeroshotCLIP", "MMA", "RMAdapter", "RMMA")


@pytest.mark.parametrize("path, expected", [
    ("output/base2new/train_base/eurosat/shots_16/MMA/vit_b16_ep5/seed1",
     RunLayout("base2new", "eurosat", "MMA", "vit_b16_ep5", 16, 1, "base", "train_base")),
    ("/abs/out/base2new/test_new/imagenet/shots_16/RMAdapter/vit_b16_ep5_imnet/seed3",
     RunLayout("base2new", "imagenet", "RMAdapter", "vit_b16_ep5_imnet", 16, 3, "new", "test_new")),
    ("output/base2new/test_base/dtd/shots_16/MaPLe/vit_b16_c2_ep5_batch4_2ctx/seed2",
     RunLayout("base2new", "dtd", "MaPLe", "vit_b16_c2_ep5_batch4_2ctx", 16, 2, "base", "test_base")),
    # MMA's own scripts leave out the ${CFG} level.
    ("output/base2new/train_base/dtd/shots_16/MultiModalAdapter/seed1",
     RunLayout("base2new", "dtd", "MultiModalAdapter", "", 16, 1, "base", "train_base")),
    ("output/imagenet/MMA/vit_b16_ep1_cross_datasets_16shots/seed2",
     RunLayout("cross_dataset_source", "imagenet", "MMA", "vit_b16_ep1_cross_datasets", 16, 2, "all", "train")),
    ("output/evaluation/MMA/vit_b16_ep1_cross_datasets_16shots/caltech101/seed1",
     RunLayout("cross_dataset", "caltech101", "MMA", "vit_b16_ep1_cross_datasets", 16, 1, "all", "test")),
    ("output/evaluation/MMA/vit_b16_ep1_cross_datasets_16shots/imagenet_sketch/seed1",
     RunLayout("domain_generalization", "imagenet_sketch", "MMA", "vit_b16_ep1_cross_datasets", 16, 1, "all", "test")),
    # Few-shot ImageNet runs must not read as cross-dataset training runs.
    ("output/few_shot/imagenet/MMA/vit_b16_ep5_imnet_4shots/seed1",
     RunLayout("few_shot", "imagenet", "MMA", "vit_b16_ep5_imnet", 4, 1, "all", "train")),
])
def test_protocol_layouts_parse(path, expected):
    assert parse_run_dir(path) == expected


@pytest.mark.parametrize("path", [
    "/tmp/some_run", "output/demo/MMA/train_base/seed1", "output/base2new/train_base/eurosat/shots_16/MMA/cfg",
    "output/evaluation/MMA/cfg_16shots/imagenet/seed1", "output/evaluation/MMA/cfg_16shots/unknown/seed1",
])
def test_folders_outside_the_layouts_have_no_protocol(path):
    assert parse_run_dir(path) is None


@pytest.mark.parametrize("trainer", SCRIPT_TRAINERS)
def test_every_default_config_of_the_protocols_exists(trainer):
    for protocol, dataset in (("base2new", "eurosat"), ("base2new", "imagenet"), ("cross_dataset", "imagenet"),
                              ("domain_generalization", "imagenet"), ("few_shot", "dtd"), ("few_shot", "imagenet")):
        config = default_config(trainer, protocol, dataset)
        assert os.path.isfile(os.path.join(REPO_ROOT, "configs", "trainers", trainer, f"{config}.yaml")), \
            (protocol, dataset, config)
    assert os.path.isfile(os.path.join(REPO_ROOT, "configs", "trainers", trainer, "demo.yaml"))


@pytest.mark.parametrize("arguments", [
    "base2new_train.sh", "base2new_train.sh eurosat", "base2new_test.sh a b c d e f", "xd_train.sh",
    "xd_test.sh imagenet 1", "few_shot.sh eurosat", "run_base2new.sh a b c", "demo.sh extra",
])
def test_wrong_arguments_print_one_usage_line(arguments):
    result = subprocess.run(["bash", *f"scripts/{arguments}".split()], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("Usage: bash scripts/")


def test_the_protocols_depend_on_nothing_above_them():
    """harness.protocols is the bottom layer: the run folders' readers (results) and the launchers (sweep) build on
    it, never the other way round, and it needs neither torch nor the engine."""
    code = ("import sys, harness.protocols, harness.protocols as p; p.expand(p.Selection('base2new', ('MMA',)));"
            "print(sorted(m for m in sys.modules if m.startswith(('harness.', 'torch'))))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert eval(result.stdout) == ["harness.errors", "harness.protocols"]
