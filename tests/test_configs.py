"""Every YAML in configs/ merges into the config tree, and so do the CoOp family's own trainer configs."""
import glob
import os

import pytest

from harness.config import extend_cfg
from harness.engine import get_cfg_default
from tests.trainer_helpers import REPO_ROOT

CONFIG_FILES = sorted(glob.glob(os.path.join(REPO_ROOT, "configs", "**", "*.yaml"), recursive=True))

# Trainer sections as they appear in CoOp's, MaPLe's, PromptSRC's and the official MMA's YAML files.
FAMILY_YAML = {
    "CoOp": 'TRAINER:\n  COOP:\n    N_CTX: 16\n    CTX_INIT: ""\n    PREC: "fp16"\n    CLASS_TOKEN_POSITION: "end"\n',
    "MaPLe": 'OPTIM:\n  NAME: "sgd"\n  LR: 0.0035\n  WARMUP_EPOCH: 1\n  WARMUP_TYPE: "constant"\n'
             '  WARMUP_CONS_LR: 1e-5\nTRAINER:\n  MAPLE:\n    N_CTX: 2\n    CTX_INIT: "a photo of a"\n'
             '    PREC: "fp16"\n    PROMPT_DEPTH: 9\n',
    "PromptSRC": 'TRAINER:\n  PROMPTSRC:\n    N_CTX_VISION: 4\n    N_CTX_TEXT: 4\n    TEXT_LOSS_WEIGHT: 25\n'
                 '    IMAGE_LOSS_WEIGHT: 10\n    GPA_MEAN: 15\n    GPA_STD: 1\n',
    "MultiModalAdapter": 'TRAINER:\n  MMADAPTER:\n    TEXT_CTX_INIT: "a photo of a"\n    ADAPTER_START: 5\n'
                         '    ADAPTER_END: 12\n    ADAPTER_DIM: 32\n    ADAPTER_SCALE: 0.001\n    PREC: "amp"\n',
}


def test_every_config_directory_has_files():
    names = {os.path.relpath(path, REPO_ROOT) for path in CONFIG_FILES}
    assert "configs/datasets/demo.yaml" in names
    assert {"configs/trainers/MMA/vit_b16_ep5.yaml", "configs/trainers/ZeroshotCLIP/vit_b16.yaml"} <= names


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: os.path.relpath(p, REPO_ROOT))
def test_config_file_merges(path):
    extend_cfg(get_cfg_default()).merge_from_file(path)


@pytest.mark.parametrize("name", sorted(FAMILY_YAML))
def test_family_trainer_configs_merge(name, tmp_path):
    path = tmp_path / f"{name}.yaml"
    path.write_text(FAMILY_YAML[name])
    cfg = extend_cfg(get_cfg_default())
    cfg.merge_from_file(str(path))
    assert cfg.OPTIM.WARMUP_CONS_LR == 1e-5  # YAML's "1e-5" is a string that yacs turns into a float


def test_unknown_keys_fail_like_yacs(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("TRAINER:\n  MMA:\n    ADAPTER_STRAT: 5\n")
    with pytest.raises(KeyError, match="Non-existent config key: TRAINER.MMA.ADAPTER_STRAT"):
        extend_cfg(get_cfg_default()).merge_from_file(str(path))
