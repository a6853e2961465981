"""Exact resume: a train.py run killed with SIGKILL at any point and started again with the same command ends
with the metrics and the adapter tensors of an uninterrupted run, bit for bit (CPU).

The runs use the engine DASSL_ENGINE selects: run this file with the real Dassl's Python and DASSL_ENGINE=dassl
to check that engine."""
import json
import os
import re
import signal
import subprocess
import sys

import pytest
import torch

from harness.results.logs import ATTEMPTS_DIR
from harness.results.record import RECORD_NAME
from tests.trainer_helpers import REPO_ROOT, run_train_py, train_py_args

EPOCHS = 3
# One progress line per batch, so that a kill can land in the middle of an epoch.
OPTS = ("DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base", "OPTIM.MAX_EPOCH", str(EPOCHS),
        "TRAIN.PRINT_FREQ", "1")
MID_EPOCH_1 = r"^epoch \[1/3\] batch \[2/5\]"
BETWEEN_EPOCHS = r"^Checkpoint saved to .*model\.pth\.tar-2$"
FINAL_TEST = r"^Evaluate on the \*test\* set$"
TEST_FIELDS = ("accuracy", "macro_f1", "error", "total", "correct", "shots_used_min", "shots_used_max")


def command(trainer, root, output_dir):
    return [sys.executable, os.path.join(REPO_ROOT, "train.py"), *train_py_args(trainer, root, output_dir, opts=OPTS)]


def run_until(trainer, root, output_dir, line_pattern):
    """Start the run, SIGKILL it as soon as it prints a line matching `line_pattern`; the lines it printed."""
    process = subprocess.Popen(command(trainer, root, output_dir), cwd=REPO_ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    printed = []
    for line in process.stdout:
        printed.append(line.rstrip("\n"))
        if re.search(line_pattern, printed[-1]):
            process.send_signal(signal.SIGKILL)
            break
    process.stdout.close()
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, f"ended before {line_pattern!r}:\n" + "\n".join(printed)
    return printed


def without_timings(progress_line):
    return re.sub(r" (time|data) \S+ \(\S+\)| eta \S+", "", progress_line)


def finish(trainer, root, output_dir):
    result = run_train_py(train_py_args(trainer, root, output_dir, opts=OPTS))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def final_checkpoint(output_dir):
    return torch.load(os.path.join(output_dir, "adapter_learner", f"model.pth.tar-{EPOCHS}"), weights_only=True)


def record_test_fields(output_dir):
    with open(os.path.join(output_dir, RECORD_NAME)) as file:
        record = json.load(file)
    return {key: record[key] for key in TEST_FIELDS}


def assert_same_run(output_dir, reference_dir):
    assert record_test_fields(output_dir) == record_test_fields(reference_dir)
    resumed, reference = final_checkpoint(output_dir), final_checkpoint(reference_dir)
    assert resumed["state_dict"].keys() == reference["state_dict"].keys()
    for key, tensor in reference["state_dict"].items():
        assert torch.equal(resumed["state_dict"][key], tensor), key
    momentum = [state["momentum_buffer"] for state in resumed["optimizer"]["state"].values()]
    assert all(torch.equal(a, b["momentum_buffer"]) for a, b in zip(momentum, reference["optimizer"]["state"].values()))


@pytest.fixture(scope="module")
def uninterrupted(demo_root, tmp_path_factory):
    runs = {}

    def run(trainer):
        if trainer not in runs:
            runs[trainer] = tmp_path_factory.mktemp(f"uninterrupted_{trainer}")
            finish(trainer, demo_root, runs[trainer])
        return runs[trainer]

    return run


@pytest.mark.parametrize("trainer, kill_points", [
    ("MMA", (MID_EPOCH_1, BETWEEN_EPOCHS, FINAL_TEST)),
    ("RMAdapter", (BETWEEN_EPOCHS, FINAL_TEST)),
])
def test_a_run_killed_and_started_again_ends_as_an_uninterrupted_run(demo_root, tmp_path, uninterrupted, trainer,
                                                                     kill_points):
    output_dir = tmp_path / "run"
    for line_pattern in kill_points:
        run_until(trainer, demo_root, output_dir, line_pattern)
        assert not (output_dir / RECORD_NAME).exists() or line_pattern == FINAL_TEST
    stdout = finish(trainer, demo_root, output_dir)
    assert f"Found checkpoint at {output_dir} (will resume training)" in stdout
    assert f"Previous epoch: {EPOCHS}" in stdout and "epoch [" not in stdout  # only the final test was left
    assert_same_run(output_dir, uninterrupted(trainer))
    # The folder is what a clean run leaves, plus the killed attempts' logs set aside.
    assert sorted(os.listdir(output_dir / "adapter_learner")) == ["checkpoint", "model.pth.tar-2", "model.pth.tar-3"]
    assert len(os.listdir(output_dir / ATTEMPTS_DIR)) == len(kill_points)
    with open(output_dir / "log.txt") as log:
        assert "Previous epoch: 3" in log.read()


def test_resuming_from_each_epoch_draws_the_same_batches(demo_root, tmp_path, uninterrupted):
    """The checkpoint of epoch 1 alone (epoch 2's removed) resumes into the same epochs 2 and 3."""
    reference_dir = uninterrupted("MMA")
    output_dir = tmp_path / "run"
    run_until("MMA", demo_root, output_dir, BETWEEN_EPOCHS)
    os.remove(output_dir / "adapter_learner" / "model.pth.tar-2")
    stdout = finish("MMA", demo_root, output_dir)
    assert "Previous epoch: 1" in stdout
    with open(reference_dir / "log.txt") as log:
        reference_lines = [without_timings(line) for line in log.read().splitlines()
                           if line.startswith(("epoch [2/3]", "epoch [3/3]"))]
    resumed_lines = [without_timings(line) for line in stdout.splitlines() if line.startswith("epoch [")]
    assert resumed_lines == reference_lines  # same losses, accuracies and learning rates, batch by batch
    assert_same_run(output_dir, reference_dir)
