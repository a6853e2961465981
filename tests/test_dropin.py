"""The drop-in of docs/DROP_IN.md, step by step, in a CoOp-shaped checkout (tests/fixtures/coop_host) and a
MaPLe-shaped one (the same with MaPLe's extra extend_cfg nodes): after `python -m harness.dropin` and the two
train.py edits, the checkout's own train.py trains and evaluates MMA, RMAdapter and RMMA on its own Demo dataset
class, its own ZeroshotCLIP still runs, and one leaderboard reads its output and ours.

On the bundled engine the checkout's `from dassl... import` lines are served by a stand-in `dassl` package that
re-exports harness.engine; where the real Dassl is installed the same steps also run on it (DASSL_ENGINE=dassl).
"""
import csv
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from harness.config import extend_cfg, extend_host_cfg
from harness.dropin import DROP_IN_TRAINERS, EXTEND_CALL, IMPORT_LINE
from harness.dropin.install import (
    DropInError,
    copy_into,
    files_to_copy,
    main,
    missing_train_py_edits,
)
from harness.engine import get_cfg_default
from tests.trainer_helpers import REPO_ROOT, run_train_py, train_py_args

FIXTURE = os.path.join(REPO_ROOT, "tests", "fixtures", "coop_host")
# MaPLe's train.py is CoOp's plus these nodes at the end of extend_cfg (and imports of its own trainers).
MAPLE_NODES = """
    cfg.TRAINER.MAPLE = CN()
    cfg.TRAINER.MAPLE.N_CTX = 2  # number of context vectors
    cfg.TRAINER.MAPLE.CTX_INIT = "a photo of a"  # initialization words
    cfg.TRAINER.MAPLE.PREC = "fp16"  # fp16, fp32, amp
    cfg.TRAINER.MAPLE.PROMPT_DEPTH = 9 # Max 12, minimum 0, for 1 it will act as shallow MaPLe (J=1)
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"  # all, base or new

    cfg.TRAINER.VPT = CN()
    cfg.TRAINER.VPT.N_CTX_VISION = 2  # number of context vectors at the vision branch
    cfg.TRAINER.VPT.CTX_INIT = "a photo of a"  # initialization words
    cfg.TRAINER.VPT.PREC = "fp16"  # fp16, fp32, amp
    cfg.TRAINER.VPT.PROMPT_DEPTH_VISION = 1  # if set to 1, will represent shallow vision prompting only"""
END_OF_EXTEND_CFG = "\n\n\ndef setup_cfg("
# What the checkout's own code imports from Dassl: the stand-in serves exactly these from harness.engine.
DASSL_NAMES_USED = {
    "config": ["get_cfg_default"],
    "engine": ["TRAINER_REGISTRY", "TrainerX", "build_trainer"],
    "utils": ["collect_env_info", "read_json", "set_random_seed", "setup_logger"],
    "data/datasets": ["DATASET_REGISTRY", "Datum", "DatasetBase"],
}
ENGINES = ["bundled", pytest.param("dassl", marks=pytest.mark.skipif(
    importlib.util.find_spec("dassl") is None, reason="the real Dassl is not installed"))]
DEMO_OPTS = ["DATASET.NUM_SHOTS", "16", "OPTIM.MAX_EPOCH", "1"]


def make_host(parent, shape="coop"):
    """A fresh copy of the fixture checkout (MaPLe-shaped: with MaPLe's extend_cfg nodes)."""
    host = os.path.join(parent, f"{shape}_checkout")
    shutil.copytree(FIXTURE, host)
    if shape == "maple":
        edit_train_py(host, lambda text: text.replace(END_OF_EXTEND_CFG, "\n" + MAPLE_NODES + END_OF_EXTEND_CFG, 1))
    return host


def edit_train_py(host, change):
    path = os.path.join(host, "train.py")
    with open(path) as file:
        text = file.read()
    changed = change(text)
    assert changed != text
    with open(path, "w") as file:
        file.write(changed)


def make_the_two_train_py_edits(host):
    """docs/DROP_IN.md step 2: the import line first, the call last in extend_cfg."""
    edit_train_py(host, lambda text: f"{IMPORT_LINE}\n{text}")
    edit_train_py(host, lambda text: text.replace(END_OF_EXTEND_CFG, f"\n    {EXTEND_CALL}{END_OF_EXTEND_CFG}", 1))


def dassl_stand_in(folder):
    for module, names in DASSL_NAMES_USED.items():
        path = os.path.join(folder, "dassl", f"{module}.py")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as file:
            file.write(f"from harness.engine import {', '.join(names)}  # noqa: F401\n")
    for package in ("dassl", os.path.join("dassl", "data")):
        open(os.path.join(folder, package, "__init__.py"), "w").close()
    return folder


def snapshot_of_this_checkout(folder):
    """What the copy step reads (harness/, trainers/, configs/), frozen: this working tree may change meanwhile."""
    for name in ("harness", "trainers", "configs"):
        shutil.copytree(os.path.join(REPO_ROOT, name), os.path.join(folder, name),
                        ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def run_dropin(harness_checkout, host):
    """Step 1, run from the root of the harness checkout."""
    return subprocess.run([sys.executable, "-m", "harness.dropin", host], cwd=harness_checkout, capture_output=True,
                          text=True, timeout=120, check=False)


def run_host_train_py(host, engine, stand_in, args):
    """The checkout's own train.py, run from its root as its scripts do."""
    env = {**os.environ, "DASSL_ENGINE": engine, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": stand_in if engine == "bundled" else ""}
    result = subprocess.run([sys.executable, "train.py", *args], cwd=host, capture_output=True, text=True,
                            timeout=300, env=env, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def b2n_dir(output, phase, trainer, seed=1):
    return os.path.join(output, "base2new", phase, "demo", "shots_16", trainer, "demo", f"seed{seed}")


def host_args(root, output, phase, trainer):
    split = "base" if phase == "train_base" else "new"
    args = ["--root", str(root), "--seed", "1", "--trainer", trainer,
            "--dataset-config-file", "configs/datasets/demo.yaml",
            "--config-file", f"configs/trainers/{trainer}/demo.yaml",
            "--output-dir", b2n_dir(output, phase, trainer)]
    if phase == "test_new" and trainer != "ZeroshotCLIP":
        args += ["--eval-only", "--model-dir", b2n_dir(output, "train_base", trainer), "--load-epoch", "1"]
    elif trainer == "ZeroshotCLIP":
        args.append("--eval-only")  # zero-shot trains nothing: both of its runs are evaluations
    return args + DEMO_OPTS + ["DATASET.SUBSAMPLE_CLASSES", split]


def tree_digest(folder):
    """Every file under the folder (bytecode and run outputs aside) with a hash of its content."""
    digest = {}
    for directory, subdirs, files in os.walk(folder):
        subdirs[:] = [name for name in subdirs if name not in ("__pycache__", "output")]
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as file:
                digest[os.path.relpath(path, folder)] = hashlib.sha256(file.read()).hexdigest()
    return digest


@pytest.fixture(scope="module", params=ENGINES)
def dropped_in(request, tmp_path_factory, demo_root):
    """A CoOp-shaped checkout after the documented steps, with base2new runs of our three trainers and of its own
    ZeroshotCLIP in its output/."""
    parent = tmp_path_factory.mktemp(f"dropin_{request.param}")
    harness_checkout = snapshot_of_this_checkout(str(parent / "harness_checkout"))
    host = make_host(str(parent))
    before = tree_digest(host)
    copied = run_dropin(harness_checkout, host)
    make_the_two_train_py_edits(host)
    after_the_steps = tree_digest(host)
    copied_again = run_dropin(harness_checkout, host)
    again_digest = tree_digest(host)
    stand_in = dassl_stand_in(str(parent / "stand_in"))
    output = os.path.join(host, "output")
    logs = {}
    for trainer in [*DROP_IN_TRAINERS.values(), "ZeroshotCLIP"]:
        for phase in ("train_base", "test_new"):
            logs[trainer, phase] = run_host_train_py(host, request.param, stand_in,
                                                     host_args(demo_root, output, phase, trainer))
    return {"host": host, "copied_files": files_to_copy(harness_checkout), "before": before, "copied": copied,
            "after_the_steps": after_the_steps,
            "copied_again": copied_again, "again_digest": again_digest, "logs": logs, "output": output,
            "parent": parent}


def test_the_copy_step_writes_the_harness_our_three_trainers_and_their_configs_and_says_so(dropped_in):
    copied = dropped_in["copied"]
    assert copied.returncode == 0, copied.stderr
    count = len(dropped_in["copied_files"])
    assert copied.stdout.startswith(f"Wrote {count} files into {dropped_in['host']}: harness/ (")
    assert "trainers/mma.py" in copied.stdout and "configs/trainers/RMMA/ (" in copied.stdout
    # ... and, run before the edits, says which train.py edits are still to be made
    assert f"add this line before its first dassl import: {IMPORT_LINE}" in copied.stdout
    assert f"add `{EXTEND_CALL}` as the last line of its extend_cfg(cfg)" in copied.stdout


def test_the_checkouts_own_files_are_untouched_and_only_our_files_are_added(dropped_in):
    after = tree_digest(dropped_in["host"])
    theirs = {path: digest for path, digest in dropped_in["before"].items() if path != "train.py"}  # edited in step 2
    assert {path: after[path] for path in theirs} == theirs
    assert set(after) - set(dropped_in["before"]) == set(dropped_in["copied_files"])
    assert not any(path.startswith("datasets") for path in dropped_in["copied_files"])
    assert os.path.join("trainers", "zsclip.py") not in dropped_in["copied_files"]


def test_the_checkouts_train_py_trains_and_evaluates_each_of_our_trainers(dropped_in):
    for trainer in DROP_IN_TRAINERS.values():
        trained = dropped_in["logs"][trainer, "train_base"]
        assert "Finish training" in trained and "* accuracy:" in trained
        assert os.path.isfile(os.path.join(b2n_dir(dropped_in["output"], "train_base", trainer), "adapter_learner",
                                           "model.pth.tar-1"))
        evaluated = dropped_in["logs"][trainer, "test_new"]
        assert "Loading weights to adapter_learner" in evaluated and "* accuracy:" in evaluated
        assert "SUBSAMPLE_CLASSES: new" in evaluated


def test_the_checkouts_own_zeroshot_clip_is_the_one_that_runs(dropped_in):
    log = dropped_in["logs"]["ZeroshotCLIP", "train_base"]
    assert "ZeroshotCLIP of this checkout: 5 classes" in log and "* accuracy:" in log


def test_running_the_copy_step_again_changes_nothing(dropped_in):
    again = dropped_in["copied_again"]
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        f"Wrote 0 files into {dropped_in['host']}",
        f"Already there and identical: {len(dropped_in['copied_files'])} files",
        "train.py already imports harness.dropin.host and calls extend_host_cfg(cfg): ready.",
    ]
    assert dropped_in["again_digest"] == dropped_in["after_the_steps"]


def test_one_leaderboard_lists_the_methods_of_both_output_trees(dropped_in, demo_root):
    ours = os.path.join(dropped_in["parent"], "our_output")
    for phase in ("train_base", "test_new"):
        extra = (["--eval-only", "--model-dir", b2n_dir(ours, "train_base", "MMA"), "--load-epoch", "1"]
                 if phase == "test_new" else [])
        split = "base" if phase == "train_base" else "new"
        result = run_train_py(train_py_args("MMA", demo_root, b2n_dir(ours, phase, "MMA"), extra=extra,
                                            opts=[*DEMO_OPTS, "DATASET.SUBSAMPLE_CLASSES", split]))
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = os.path.join(dropped_in["parent"], "board")
    board = subprocess.run([sys.executable, "-m", "harness.results.leaderboard", ours, dropped_in["output"],
                            "--seeds", "1", "--no-published", "--out", out], cwd=REPO_ROOT, capture_output=True,
                           text=True, timeout=120, check=False)
    assert board.returncode == 0, board.stdout + board.stderr
    assert board.stdout.startswith("10 runs: 10 finished (2 from metrics.json, 8 from logs), 0 unfinished.")
    with open(os.path.join(out, "base2new.csv")) as file:
        rows = {row["Method"]: row for row in csv.DictReader(file)}
    assert set(rows) == {"MMA", "RMAdapter", "RMMA", "ZeroshotCLIP"}
    assert rows["RMMA"]["Notes"] == "" and rows["ZeroshotCLIP"]["Notes"] == ""
    assert rows["MMA"]["Notes"] == "base: several runs of seed1; novel: several runs of seed1"  # in both trees


def test_a_maple_shaped_checkout_keeps_its_own_nodes_and_trains_our_trainers(tmp_path, demo_root):
    host = make_host(str(tmp_path), "maple")
    assert run_dropin(snapshot_of_this_checkout(str(tmp_path / "harness_checkout")), host).returncode == 0
    make_the_two_train_py_edits(host)
    log = run_host_train_py(host, "bundled", dassl_stand_in(str(tmp_path / "stand_in")),
                            host_args(demo_root, os.path.join(host, "output"), "train_base", "RMAdapter"))
    assert "Finish training" in log and "* accuracy:" in log
    assert "  MAPLE:\n    CTX_INIT: a photo of a\n    N_CTX: 2\n    PREC: fp16\n    PROMPT_DEPTH: 9\n" in log
    assert "  RMADAPTER:\n" in log and "  MMA:\n" in log


def test_the_copy_step_refuses_to_overwrite_and_then_copies_nothing(tmp_path):
    host = make_host(str(tmp_path))
    os.makedirs(os.path.join(host, "configs", "trainers", "MMA"))
    with open(os.path.join(host, "configs", "trainers", "MMA", "demo.yaml"), "w") as file:
        file.write("# the checkout's own MMA config\n")
    before = tree_digest(host)
    with pytest.raises(DropInError, match=r"Nothing copied: .* already has other files at configs/trainers/MMA/demo"):
        copy_into(host, snapshot_of_this_checkout(str(tmp_path / "harness_checkout")))
    assert tree_digest(host) == before


def test_the_copy_step_needs_a_coop_family_checkout(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main([str(tmp_path)])
    assert stopped.value.code == (f"Error: {tmp_path} has no train.py and trainers/: give the root folder of a "
                                  "CoOp-family checkout (CoOp, MaPLe, PromptSRC).")


def test_the_import_line_must_come_before_the_first_dassl_import():
    text = f"import argparse\nfrom dassl.engine import build_trainer\n{IMPORT_LINE}\n    {EXTEND_CALL}\n"
    assert missing_train_py_edits(text) == [
        f"move this line above line 2 (from dassl.engine import build_trainer): {IMPORT_LINE}"]


def coop_extend_cfg(cfg):
    """CoOp's extend_cfg, with a node a user customised and a key of their own."""
    from yacs.config import CfgNode as CN

    cfg.TRAINER.COOP = CN({"N_CTX": 4, "CSC": True, "MY_KEY": "mine"})
    cfg.DATASET.SUBSAMPLE_CLASSES = "base"
    return cfg


def test_extend_host_cfg_adds_our_nodes_and_keys_and_leaves_every_host_node_as_it_was():
    host = coop_extend_cfg(get_cfg_default())
    host_coop = host.TRAINER.COOP.clone()
    extend_host_cfg(host)
    assert host.TRAINER["COOP"] == host_coop and host.DATASET.SUBSAMPLE_CLASSES == "base"
    assert "COCOOP" not in host.TRAINER  # nodes of other checkouts are theirs to add
    ours = extend_cfg(get_cfg_default())
    for node in ("MMA", "RMADAPTER", "RMMA"):
        assert host.TRAINER[node] == ours.TRAINER[node]
    assert host.MODEL.BACKBONE.WEIGHTS == ours.MODEL.BACKBONE.WEIGHTS


def test_a_node_of_ours_the_host_already_defines_is_kept_and_what_it_lacks_is_named(capsys):
    from yacs.config import CfgNode as CN

    host = get_cfg_default()
    host.TRAINER.MMA = CN({"PREC": "fp16"})
    extend_host_cfg(host)
    assert host.TRAINER["MMA"] == {"PREC": "fp16"}
    assert capsys.readouterr().out.startswith(
        "Warning: TRAINER.MMA comes from this checkout's extend_cfg and lacks ADAPTER_DIM, ADAPTER_END,")
