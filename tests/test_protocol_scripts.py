"""The protocol scripts end to end on the demo data: the base-to-novel loop, finished runs never redone, unfinished
runs resumed or re-run, a run killed mid-training finishing with the metrics of an uninterrupted run, and the
parser and leaderboard on what the loop wrote. Seeds 1-2 of zero-shot CLIP and MMA (the serial_sweep fixture of
conftest.py, shared with the sweep tests) keep it to about a minute."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import torch

from harness.protocols import CROSS_DATASET_TARGETS, DOMAIN_GENERALIZATION_TARGETS
from harness.results.collect import collect_runs
from harness.results.layout import parse_run_dir
from tests.sweep_helpers import METRICS, SWEEP_SEEDS, install_fake_python
from tests.trainer_helpers import REPO_ROOT

SEEDS = SWEEP_SEEDS


def run_script(env, *arguments, **kwargs):
    result = subprocess.run(["bash", *arguments], cwd=REPO_ROOT, env=env, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def run_dir(output, phase, trainer, seed):
    return os.path.join(output, "base2new", phase, "demo", "shots_16", trainer, "demo", f"seed{seed}")


def read_json(path):
    with open(path) as file:
        return json.load(file)


def read_text(path):
    with open(path) as file:
        return file.read()


def folder_state(output):
    """Every file under output with its modification time."""
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns for d, _, fs in os.walk(output) for f in fs}


@pytest.fixture(scope="module")
def loop_output(serial_sweep):
    return serial_sweep


def test_the_loop_writes_a_record_for_every_run_in_coops_layout(loop_output):
    output, _ = loop_output
    for trainer in ("ZeroshotCLIP", "MMA"):
        for seed in SEEDS:
            for phase, subsample in (("train_base", "base"), ("test_new", "new")):
                folder = run_dir(output, phase, trainer, seed)
                record = read_json(os.path.join(folder, "metrics.json"))
                assert (record["trainer"], record["protocol"], record["subsample"], record["seed"]) == \
                    (trainer, "base2new", subsample, seed)
                assert parse_run_dir(folder).split == subsample
                assert record["total"] == 50 and record["accuracy"] == 100 * record["correct"] / 50
                assert record["eval_only"] == (trainer == "ZeroshotCLIP" or phase == "test_new")
    tested = read_json(os.path.join(run_dir(output, "test_new", "MMA", 1), "metrics.json"))
    assert tested["model_dir"] == run_dir(output, "train_base", "MMA", 1) and tested["load_epoch"] == 20
    # The demo's learning check: MMA raises the base accuracy of zero-shot CLIP.
    base_accuracy = {trainer: read_json(os.path.join(run_dir(output, "train_base", trainer, 1), "metrics.json"))
                     ["accuracy"] for trainer in ("ZeroshotCLIP", "MMA")}
    assert base_accuracy["MMA"] > base_accuracy["ZeroshotCLIP"]


def test_running_the_loop_again_redoes_nothing(loop_output):
    output, env = loop_output
    before = folder_state(output)
    stdout = run_script(env, "scripts/run_base2new.sh", "MMA", "demo")
    assert stdout.splitlines() == [f"Finished, skipping: {run_dir(output, phase, 'MMA', seed)}"
                                   for seed in SEEDS for phase in ("train_base", "test_new")]
    assert folder_state(output) == before


def test_an_evaluation_without_its_record_is_run_again_and_nothing_else(loop_output):
    output, env = loop_output
    folder = run_dir(output, "test_new", "MMA", 2)
    record = read_json(os.path.join(folder, "metrics.json"))
    os.remove(os.path.join(folder, "metrics.json"))
    stdout = run_script(env, "scripts/run_base2new.sh", "MMA", "demo")
    assert stdout.count("Finished, skipping: ") == 3
    assert f"Unfinished (no metrics.json), running again: {folder}" in stdout
    rerun = read_json(os.path.join(folder, "metrics.json"))
    assert {k: rerun[k] for k in METRICS} == {k: record[k] for k in METRICS}
    # The earlier attempt's log is moved aside: the folder ends as a clean run leaves it.
    assert [name for name in os.listdir(folder) if name.startswith("log.txt")] == ["log.txt"]
    assert [name for name in os.listdir(os.path.join(folder, "attempts")) if name.startswith("log.txt")] != []


def test_a_run_killed_mid_training_finishes_with_the_metrics_of_an_uninterrupted_run(loop_output, tmp_path):
    reference_output, env = loop_output
    env = {**env, "OUTPUT": str(tmp_path)}
    folder = run_dir(tmp_path, "train_base", "MMA", 1)
    command = ["bash", "scripts/base2new_train.sh", "demo", "1", "MMA", "demo"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    log = os.path.join(folder, "log.txt")
    # The run ends by itself after its 20 epochs, so the wait is bounded without a clock.
    while not (os.path.exists(log) and "epoch [3/20]" in read_text(log)):
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert "Finish training" not in read_text(log)
    assert not os.path.exists(os.path.join(folder, "metrics.json"))

    stdout = run_script(env, "scripts/base2new_train.sh", "demo", "1", "MMA", "demo")
    assert stdout.startswith(f"Unfinished (no metrics.json), running again: {folder}")
    reference = run_dir(reference_output, "train_base", "MMA", 1)
    resumed = read_json(os.path.join(folder, "metrics.json"))
    uninterrupted = read_json(os.path.join(reference, "metrics.json"))
    assert {k: resumed[k] for k in METRICS} == {k: uninterrupted[k] for k in METRICS}
    assert resumed["config_hash"] == uninterrupted["config_hash"]
    checkpoint = os.path.join("adapter_learner", "model.pth.tar-20")
    weights = torch.load(os.path.join(folder, checkpoint), weights_only=True)["state_dict"]
    reference_weights = torch.load(os.path.join(reference, checkpoint), weights_only=True)["state_dict"]
    assert all(torch.equal(weights[key], reference_weights[key]) for key in reference_weights)


def test_a_run_killed_after_its_last_checkpoint_resumes_there_and_only_tests(loop_output, tmp_path):
    reference_output, env = loop_output
    env = {**env, "OUTPUT": str(tmp_path)}
    reference = run_dir(reference_output, "train_base", "MMA", 2)
    folder = run_dir(tmp_path, "train_base", "MMA", 2)
    shutil.copytree(reference, folder)
    os.remove(os.path.join(folder, "metrics.json"))  # the state of a run killed during its final test

    stdout = run_script(env, "scripts/base2new_train.sh", "demo", "2", "MMA", "demo")
    assert "Previous epoch: 20" in stdout and not re.search(r"^epoch \[", stdout, re.M)
    resumed = read_json(os.path.join(folder, "metrics.json"))
    uninterrupted = read_json(os.path.join(reference, "metrics.json"))
    assert {k: resumed[k] for k in METRICS} == {k: uninterrupted[k] for k in METRICS}


def test_the_parser_and_the_leaderboard_read_the_loops_output(loop_output):
    output, env = loop_output
    records = {phase: [read_json(os.path.join(run_dir(output, phase, "MMA", seed), "metrics.json"))["accuracy"]
                       for seed in SEEDS] for phase in ("train_base", "test_new")}
    experiment = os.path.dirname(run_dir(output, "train_base", "MMA", 1))
    parsed = subprocess.run([sys.executable, "parse_test_res.py", experiment], cwd=REPO_ROOT, capture_output=True,
                            text=True, check=True).stdout
    mean = sum(records["train_base"]) / len(SEEDS)
    assert re.search(rf"^\* accuracy: {mean:.2f}% \+- \d+\.\d\d%$", parsed, re.M)

    board = subprocess.run([sys.executable, "-m", "harness.results.leaderboard", str(output)], cwd=REPO_ROOT,
                           capture_output=True, text=True, check=True).stdout
    mma = next(line for line in board.splitlines() if line.startswith("| demo | MMA | demo | ours |"))
    assert mma.endswith("| 1,2 / 1,2 | base: seed3 missing; novel: seed3 missing |")  # the loop ran seeds 1-2
    assert f"{mean:.2f}" in mma
    assert os.path.isfile(os.path.join(output, "leaderboard", "leaderboard.png"))


def test_cross_dataset_generalization_and_few_shot_loops_call_train_py_in_coops_layout(tmp_path):
    fake_python = install_fake_python(tmp_path)
    output, calls = tmp_path / "output", tmp_path / "calls"
    env = {**os.environ, "PYTHON": fake_python, "CALLS": str(calls),
           "OUTPUT": str(output), "SEEDS": "1", "ISOLATE": "1"}  # the fake python stands in for train.py processes
    run_script(env, "scripts/run_cross_dataset.sh", "MMA")
    stdout = run_script(env, "scripts/run_domain_generalization.sh", "MMA")
    run_script({**env, "DATASETS": "dtd", "SHOTS_LIST": "1 2"}, "scripts/run_few_shot.sh", "MMA")

    source = f"{output}/imagenet/MMA/vit_b16_ep1_cross_datasets_16shots/seed1"
    lines = calls.read_text().splitlines()
    common = "--seed 1 --trainer MMA --dataset-config-file configs/datasets/{}.yaml --config-file " \
             "configs/trainers/MMA/{}.yaml --output-dir {}"
    assert lines[0] == (f"--root data/ {common.format('imagenet', 'vit_b16_ep1_cross_datasets', source)} "
                        "DATASET.NUM_SHOTS 16")
    evaluated = [line.split("--output-dir ")[1] for line in lines[1:15]]
    assert evaluated == [f"{output}/evaluation/MMA/vit_b16_ep1_cross_datasets_16shots/{dataset}/seed1 --eval-only "
                         f"--model-dir {source} --load-epoch 1"
                         for dataset in CROSS_DATASET_TARGETS + DOMAIN_GENERALIZATION_TARGETS]
    assert stdout.startswith(f"Finished, skipping: {source}\n")  # the ImageNet run is shared, not redone
    assert [line.split("--output-dir ")[1] for line in lines[15:]] == [
        f"{output}/few_shot/dtd/MMA/vit_b16_ep5_{k}shots/seed1 DATASET.NUM_SHOTS {k}"
        for k in (1, 2)]
    runs, unrecognised = collect_runs(output)
    assert unrecognised == [] and len(runs) == 17
    assert Counter(run.layout.protocol for run in runs) == {
        "cross_dataset_source": 1, "cross_dataset": 10, "domain_generalization": 4, "few_shot": 2}
