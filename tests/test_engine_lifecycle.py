"""Dassl's trainer life-cycle through train.py: epochs, checkpoints, resume, and evaluation of a saved epoch."""
import os
import re
import shutil

import pytest
import torch

from tests.trainer_helpers import run_train_py, train_py_args

PROGRESS_LINE = re.compile(
    r"^epoch \[\d+/\d+\] batch \[\d+/\d+\] time \d+\.\d{3} \(\d+\.\d{3}\) data \d+\.\d{3} \(\d+\.\d{3}\) "
    r"loss \d+\.\d{4} \(\d+\.\d{4}\) acc \d+\.\d{4} \(\d+\.\d{4}\) lr \d\.\d{4}e[-+]\d{2} eta \d+:\d{2}:\d{2}$",
    re.M,
)
RESULT_BLOCK = re.compile(
    r"^=> result\n\* total: [\d,]+\n\* correct: [\d,]+\n\* accuracy: (\d+\.\d)%\n\* error: \d+\.\d%\n"
    r"\* macro_f1: \d+\.\d%$", re.M,
)
TRAIN_BASE = ("DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base")


def train(demo_root, output_dir, epochs, checkpoint_freq=0):
    result = run_train_py(train_py_args(
        "MMA", demo_root, output_dir,
        opts=[*TRAIN_BASE, "OPTIM.MAX_EPOCH", epochs, "TRAIN.CHECKPOINT_FREQ", checkpoint_freq],
    ))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def two_epoch_run(demo_root, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("two_epochs")
    return output_dir, train(demo_root, output_dir, epochs=2, checkpoint_freq=1)


def test_training_prints_dassl_lines_in_order(two_epoch_run):
    output_dir, stdout = two_epoch_run
    # 80 base images / batch 16 = 5 batches, printed every TRAIN.PRINT_FREQ = 5 batches: one line per epoch.
    assert [line.split(" time")[0] for line in PROGRESS_LINE.findall(stdout)] == [
        "epoch [1/2] batch [5/5]", "epoch [2/2] batch [5/5]"]
    tail = stdout[stdout.index("Finish training"):]
    assert re.match(r"Finish training\nDeploy the last-epoch model\nEvaluate on the \*test\* set\n", tail)
    assert RESULT_BLOCK.search(tail)
    assert re.search(r"^Elapsed: \d+:\d{2}:\d{2}$", tail, re.M)
    with open(output_dir / "log.txt") as log:
        assert log.read() == stdout[stdout.index("***************"):]


def test_checkpoints_follow_dassl_layout_and_load_without_pickled_objects(two_epoch_run):
    output_dir, _ = two_epoch_run
    folder = output_dir / "adapter_learner"
    assert sorted(os.listdir(folder)) == ["checkpoint", "model.pth.tar-1", "model.pth.tar-2"]
    assert (folder / "checkpoint").read_text() == "model.pth.tar-2\n"
    checkpoint = torch.load(folder / "model.pth.tar-2", weights_only=True)
    assert sorted(checkpoint) == ["epoch", "optimizer", "run_state", "scheduler", "state_dict", "val_result"]
    assert checkpoint["epoch"] == 2 and checkpoint["val_result"] is None
    assert sorted(checkpoint["run_state"]) == ["best_result", "rng", "scaler", "trainer"]
    assert sorted(checkpoint["run_state"]["rng"]) == ["loaders", "numpy", "python", "torch"]
    adapters = ("text_adapter", "visual_adapter", "shared_adapter")
    assert all(key.split(".")[0] in adapters for key in checkpoint["state_dict"])


def test_rerun_resumes_at_the_saved_epoch_and_sets_the_first_log_aside(demo_root, tmp_path):
    train(demo_root, tmp_path, epochs=1)
    stdout = train(demo_root, tmp_path, epochs=2)
    assert f"Found checkpoint at {tmp_path} (will resume training)" in stdout
    assert "Previous epoch: 1" in stdout
    assert "epoch [1/2]" not in stdout and "epoch [2/2]" in stdout
    with open(tmp_path / "log.txt") as log:
        assert log.read() == stdout[stdout.index("***************"):]
    earlier_log, earlier_record = sorted(os.listdir(tmp_path / "attempts"))  # the first run's, with its time
    assert re.fullmatch(r"log\.txt-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}", earlier_log)
    assert earlier_record == "metrics.json" + earlier_log[len("log.txt"):]
    assert "epoch [1/1]" in (tmp_path / "attempts" / earlier_log).read_text()


def test_only_the_two_newest_epochs_are_kept_unless_checkpoint_freq_asks(demo_root, tmp_path):
    train(demo_root, tmp_path / "plain", epochs=4)
    assert sorted(os.listdir(tmp_path / "plain" / "adapter_learner")) == [
        "checkpoint", "model.pth.tar-3", "model.pth.tar-4"]
    train(demo_root, tmp_path / "every_two", epochs=4, checkpoint_freq=2)
    assert sorted(os.listdir(tmp_path / "every_two" / "adapter_learner")) == [
        "checkpoint", "model.pth.tar-2", "model.pth.tar-3", "model.pth.tar-4"]


def test_eval_only_loads_the_requested_epoch_and_reproduces_the_final_test(demo_root, two_epoch_run, tmp_path):
    model_dir, train_stdout = two_epoch_run
    result = run_train_py(train_py_args(
        "MMA", demo_root, tmp_path, extra=["--eval-only", "--model-dir", str(model_dir), "--load-epoch", "2"],
        opts=TRAIN_BASE,
    ))
    assert result.returncode == 0, result.stdout + result.stderr
    checkpoint = f"{model_dir}/adapter_learner/model.pth.tar-2"
    assert f'Loading weights to adapter_learner from "{checkpoint}" (epoch = 2)' in result.stdout
    assert "Finish training" not in result.stdout
    evaluated = RESULT_BLOCK.search(result.stdout).group(0)
    final_test = RESULT_BLOCK.search(train_stdout[train_stdout.index("Finish training"):]).group(0)
    assert evaluated == final_test


def test_a_run_killed_while_saving_its_first_checkpoint_trains_from_scratch(demo_root, tmp_path):
    (tmp_path / "adapter_learner").mkdir()
    partial = tmp_path / "adapter_learner" / ".model.pth.tar-1.4242.tmp"  # an atomic save cut short
    partial.write_bytes(b"partial")
    stdout = train(demo_root, tmp_path, epochs=1)
    assert "No checkpoint found, train from scratch" in stdout and "epoch [1/1]" in stdout
    assert not partial.exists()


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(two_epoch_run, demo_root, tmp_path):
    model_dir, _ = two_epoch_run
    shutil.copytree(model_dir / "adapter_learner", tmp_path / "adapter_learner")
    newest = tmp_path / "adapter_learner" / "model.pth.tar-2"
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated
    result = run_train_py(train_py_args("MMA", demo_root, tmp_path,
                                        opts=[*TRAIN_BASE, "OPTIM.MAX_EPOCH", 2, "TRAIN.CHECKPOINT_FREQ", 1]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Warning: {newest}: damaged or truncated checkpoint" in result.stderr
    assert "Trying an earlier checkpoint." in result.stderr
    assert "Previous epoch: 1" in result.stdout and "epoch [2/2]" in result.stdout
    assert torch.load(newest, weights_only=True)["epoch"] == 2  # written again, whole
