"""Which protocol a run belongs to, read back from its output folder: the inverse of the folder rules of
harness/protocols.py (CoOp's layouts with the ${CFG} level), plus the layouts of other CoOp-family code.

    <out>/base2new/train_base/<dataset>/shots_<K>/<TRAINER>/<CFG>/seed<S>   base2new, base classes (final test
                                                                          of the training run)
    <out>/base2new/test_new/<dataset>/shots_<K>/<TRAINER>/<CFG>/seed<S>     base2new, new classes (--eval-only)
    <out>/base2new/test_base/...                                          base2new, base classes (--eval-only of
                                                                          given weights, MaPLe's reproduce scripts)
    <out>/imagenet/<TRAINER>/<CFG>_<K>shots/seed<S>                        cross_dataset_source: the ImageNet
                                                                          training run of the cross-dataset and
                                                                          domain-generalization protocols
    <out>/evaluation/<TRAINER>/<CFG>_<K>shots/<dataset>/seed<S>            cross_dataset (10 targets) or
                                                                          domain_generalization (ImageNet variants)
    <out>/few_shot/<dataset>/<TRAINER>/<CFG>_<K>shots/seed<S>              few_shot, all classes

The base2new folders of MMA's own scripts have no <CFG> level; they parse with config "". The record writer,
parse_test_res.py and the leaderboard all call `parse_run_dir`, so they agree on what a folder holds.
"""
import os
import re
from dataclasses import dataclass

from harness.protocols import (
    BASE2NEW,
    CROSS_DATASET,
    CROSS_DATASET_SOURCE,
    CROSS_DATASET_TARGETS,
    DOMAIN_GENERALIZATION,
    DOMAIN_GENERALIZATION_TARGETS,
    FEW_SHOT,
    SOURCE_DATASET,
)

_SEED = re.compile(r"seed(\d+)")
_SHOTS_DIR = re.compile(r"shots_(\d+)")
_CFG_SHOTS = re.compile(r"(.+)_(\d+)shots")
_BASE2NEW_PHASES = {"train_base": "base", "test_base": "base", "test_new": "new"}


@dataclass(frozen=True)
class RunLayout:
    protocol: str
    dataset: str  # CoOp's config name: the dataset trained on, or evaluated on for evaluation folders
    trainer: str
    config: str  # the ${CFG} level ("" for MMA's base2new layout)
    shots: int
    seed: int
    split: str  # classes evaluated: "base", "new" or "all"
    phase: str  # the folder's phase: "train_base", "test_new", "test_base", "train" or "test"


def parse_run_dir(path):
    """The RunLayout of a run folder, or None when the folder is not in one of the protocol layouts."""
    parts = os.path.normpath(os.path.abspath(path)).split(os.sep)
    seed = _SEED.fullmatch(parts[-1])
    if seed is None:
        return None
    seed = int(seed.group(1))
    return (_base2new(parts, seed) or _few_shot(parts, seed) or _evaluation(parts, seed)
            or _source_training(parts, seed))


def _base2new(parts, seed):
    # .../base2new/<phase>/<dataset>/shots_<K>/<TRAINER>[/<CFG>]/seed<S>
    for config_levels in (1, 0):
        head = len(parts) - 6 - config_levels
        if head < 0 or parts[head] != BASE2NEW or parts[head + 1] not in _BASE2NEW_PHASES:
            continue
        shots = _SHOTS_DIR.fullmatch(parts[head + 3])
        if shots is None:
            continue
        return RunLayout(BASE2NEW, parts[head + 2], parts[head + 4], parts[-2] if config_levels else "",
                         int(shots.group(1)), seed, _BASE2NEW_PHASES[parts[head + 1]], parts[head + 1])
    return None


def _few_shot(parts, seed):
    # .../few_shot/<dataset>/<TRAINER>/<CFG>_<K>shots/seed<S>
    config = _CFG_SHOTS.fullmatch(parts[-2])
    if len(parts) < 5 or parts[-5] != FEW_SHOT or config is None:
        return None
    return RunLayout(FEW_SHOT, parts[-4], parts[-3], config.group(1), int(config.group(2)), seed, "all", "train")


def _evaluation(parts, seed):
    # .../evaluation/<TRAINER>/<CFG>_<K>shots/<dataset>/seed<S>
    config = _CFG_SHOTS.fullmatch(parts[-3])
    if len(parts) < 5 or parts[-5] != "evaluation" or config is None:
        return None
    dataset = parts[-2]
    if dataset in DOMAIN_GENERALIZATION_TARGETS:
        protocol = DOMAIN_GENERALIZATION
    elif dataset in CROSS_DATASET_TARGETS:
        protocol = CROSS_DATASET
    else:
        return None
    return RunLayout(protocol, dataset, parts[-4], config.group(1), int(config.group(2)), seed, "all", "test")


def _source_training(parts, seed):
    # .../imagenet/<TRAINER>/<CFG>_<K>shots/seed<S>
    config = _CFG_SHOTS.fullmatch(parts[-2])
    if len(parts) < 4 or parts[-4] != SOURCE_DATASET or config is None:
        return None
    return RunLayout(CROSS_DATASET_SOURCE, SOURCE_DATASET, parts[-3], config.group(1), int(config.group(2)), seed,
                     "all", "train")
