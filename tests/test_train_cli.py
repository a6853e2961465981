"""train.py's command line: CoOp's flags and merge order, and one clear line for every kind of bad input."""
import importlib.util
import os
import subprocess
import sys

import pytest

import train
from harness.errors import BackboneError, CheckpointError, ConfigError
from tests.trainer_helpers import REPO_ROOT, build_test_trainer, make_cfg, run_train_py, train_py_args


def test_merge_order_is_dataset_yaml_then_method_yaml_then_flags_then_options(demo_root, tmp_path):
    cfg = make_cfg("MMA", demo_root, tmp_path, seed=0, extra=["--backbone", "tiny"],
                   opts=["OPTIM.MAX_EPOCH", "3", "TRAINER.MMA.ADAPTER_DIM", "8"])
    assert cfg.DATASET.NAME == "Demo"                     # dataset YAML
    assert cfg.TRAINER.MMA.ADAPTER_START == 2             # method YAML over the node's default (5)
    assert cfg.OPTIM.MAX_EPOCH == 3 and cfg.TRAINER.MMA.ADAPTER_DIM == 8  # options over the YAML
    assert cfg.SEED == 0                                   # --seed 0 is a real seed (CoOp ignores it)
    assert str(tmp_path) == cfg.OUTPUT_DIR and str(demo_root) == cfg.DATASET.ROOT
    assert cfg.is_frozen()


@pytest.mark.parametrize("opts, expected", [
    (["TRAINER.MMA.ADAPTER_SIZE", "8"], "Non-existent key: TRAINER.MMA.ADAPTER_SIZE"),
    (["OPTIM.MAX_EPOCH", "five"], "OPTIM.MAX_EPOCH"),
    (["DATASET.SUBSAMPLE_CLASSES", "novel"], "DATASET.SUBSAMPLE_CLASSES is 'novel'; choose one of all, base, new"),
    (["TRAINER.MMA.PREC", "bf16"], None),
])
def test_bad_config_values_are_config_errors_naming_the_key(demo_root, tmp_path, opts, expected):
    with pytest.raises(ConfigError) as error:
        if expected is None:  # checked when the trainer is built
            build_test_trainer("MMA", demo_root, tmp_path, opts=opts)
        else:
            make_cfg("MMA", demo_root, tmp_path, opts=opts)
    message = str(error.value)
    assert "\n" not in message
    assert (expected or "TRAINER.MMA.PREC is 'bf16'; choose one of fp16, fp32, amp") in message


@pytest.mark.parametrize("name, closest", [
    ("ZeroShotCLIP", "ZeroshotCLIP"), ("mma", "MMA"), ("RMAdaptor", "RMAdapter")])
def test_unknown_trainer_suggests_the_closest_name(demo_root, tmp_path, name, closest):
    with pytest.raises(ConfigError, match=rf"Unknown trainer '{name}' \(did you mean {closest}\?\)"):
        make_cfg(name, demo_root, tmp_path, config=os.path.join("configs", "trainers", "MMA", "demo.yaml"))


def test_a_flag_after_the_options_is_named_as_misplaced(demo_root, tmp_path):
    with pytest.raises(ConfigError, match=r"^--eval-only comes after the KEY VALUE options, where it would be read"):
        make_cfg("MMA", demo_root, tmp_path, opts=["OPTIM.MAX_EPOCH", "3", "--eval-only"])


def test_help_lists_trainers_datasets_and_backbones_without_importing_torch():
    result = subprocess.run([sys.executable, "-X", "importtime", "train.py", "--help"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert not imported & {"torch", "torchvision", "open_clip", "numpy"}
    help_text = " ".join(result.stdout.split())
    assert "trainers (--trainer): MMA, RMAdapter, RMMA, ZeroshotCLIP;" in help_text
    assert "caltech101, demo, dtd, eurosat," in help_text and "example (train MMA" in help_text
    assert f"{', '.join(train.backbone_names())}, any open_clip architecture" in help_text
    from harness.clip.backbones import COOP_BACKBONES, TINY

    assert train.backbone_names() == [*COOP_BACKBONES, TINY]


def test_unknown_dataset_and_missing_config_file_are_named(demo_root, tmp_path):
    bad_dataset = tmp_path / "bad.yaml"
    bad_dataset.write_text('DATASET:\n  NAME: "EuroSet"\n')
    with pytest.raises(ConfigError, match=r"Unknown dataset 'EuroSet' \(did you mean EuroSAT\?\)"):
        make_cfg("MMA", demo_root, tmp_path, dataset_config=str(bad_dataset))
    with pytest.raises(ConfigError, match=r"--config-file .*nope\.yaml: no such file"):
        make_cfg("MMA", demo_root, tmp_path, config=str(tmp_path / "nope.yaml"))


def test_missing_weights_and_missing_checkpoint_name_the_file(demo_root, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIP_CACHE_DIR", str(tmp_path / "empty_cache"))
    with pytest.raises(BackboneError, match="ViT-B-16.pt"):
        build_test_trainer("MMA", demo_root, tmp_path / "run", opts=["MODEL.BACKBONE.NAME", "ViT-B/16",
                                                                     "INPUT.SIZE", "(224, 224)"])
    trainer = build_test_trainer("MMA", demo_root, tmp_path / "run")
    with pytest.raises(CheckpointError, match=r"model\.pth\.tar-20.*--load-epoch"):
        trainer.load_model(str(tmp_path / "no_such_run"), epoch=20)


def test_bad_input_prints_one_line_without_traceback_and_writes_nothing(demo_root, tmp_path):
    output_dir = tmp_path / "run"
    result = run_train_py(train_py_args("MMA", demo_root, output_dir, opts=["TRAINER.MMA.ADAPTER_SIZE", "8"]))
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert "Error:" not in result.stdout
    assert [line for line in result.stderr.splitlines() if line.startswith("Error:")] == [
        "Error: Command-line options ['TRAINER.MMA.ADAPTER_SIZE', '8']: Non-existent key: "
        "TRAINER.MMA.ADAPTER_SIZE (see the defaults printed by train.py, or harness/config.py for TRAINER.* keys)"
    ]
    assert not output_dir.exists()


def test_cli_flags_match_coop_train_py():
    flags = {action.dest for action in train.build_parser()._actions}
    assert flags >= {"root", "output_dir", "resume", "seed", "source_domains", "target_domains", "transforms",
                     "config_file", "dataset_config_file", "trainer", "backbone", "head", "eval_only", "model_dir",
                     "load_epoch", "no_train", "opts"}


def test_requesting_a_missing_dassl_engine_says_how_to_install_it(tmp_path):
    if importlib.util.find_spec("dassl") is not None:
        pytest.skip("the real Dassl is installed here")
    result = run_train_py(["--trainer", "MMA"], env={"DASSL_ENGINE": "dassl"})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.lstrip().startswith("Error: DASSL_ENGINE=dassl but Dassl cannot be imported")
    assert "https://github.com/KaiyangZhou/Dassl.pytorch" in result.stderr
