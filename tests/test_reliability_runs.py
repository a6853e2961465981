"""Run-level faults: configs, output folders, a double start, the kinds of run that would record something other
than what was asked, and degenerate configs. Each stops with one line (on stderr for train.py) or works as the
README says."""
import os
import signal
import subprocess
import sys
from types import SimpleNamespace

import pytest

import train
from harness.errors import ConfigError
from harness.results.record import RECORD_NAME, ResultRecord
from harness.run_folder import OutputDirError, lock_output_dir
from tests.trainer_helpers import REPO_ROOT, build_test_trainer, make_cfg, run_train_py, train_py_args

TRAIN_BASE = ("DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base")


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith("Error:")]


def test_a_python_config_is_refused_without_running_it(demo_root, tmp_path):
    marker = tmp_path / "ran"
    config = tmp_path / "config.py"
    config.write_text(f"import pathlib\npathlib.Path({str(marker)!r}).touch()\ncfg = None\n")
    with pytest.raises(ConfigError, match=r"--config-file .*config\.py: not a YAML file; configs are YAML only"):
        make_cfg("MMA", demo_root, tmp_path, config=str(config))
    assert not marker.exists()


def test_malformed_yaml_names_the_file_and_the_line(demo_root, tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text("OPTIM:\n  LR: 0.1\n  MAX_EPOCH: [1, 2\nTRAIN:\n  PRINT_FREQ: 5\n")
    with pytest.raises(ConfigError) as error:
        make_cfg("MMA", demo_root, tmp_path, config=str(config))
    expected = f"--config-file {config}: malformed YAML at line 4, column 6: expected ',' or ']'"
    assert str(error.value).startswith(expected)


def check_run_kind(trainer, demo_root, tmp_path, extra=(), opts=()):
    args = train.build_parser().parse_args(train_py_args(trainer, demo_root, tmp_path, extra=extra, opts=opts))
    train.check_run_kind(train.setup_cfg(args), args)


def test_eval_only_without_model_dir_needs_an_explicit_opt_in_for_adapters(demo_root, tmp_path):
    with pytest.raises(ConfigError, match=r"--eval-only without --model-dir would evaluate an untrained MMA adapter"):
        check_run_kind("MMA", demo_root, tmp_path, extra=["--eval-only"])
    check_run_kind("MMA", demo_root, tmp_path, extra=["--eval-only", "--eval-untrained"])
    check_run_kind("ZeroshotCLIP", demo_root, tmp_path, extra=["--eval-only"])


def test_a_trainer_that_trains_nothing_refuses_a_training_run(demo_root, tmp_path):
    with pytest.raises(ConfigError, match=r"ZeroshotCLIP trains nothing: run it with --eval-only"):
        check_run_kind("ZeroshotCLIP", demo_root, tmp_path)
    check_run_kind("ZeroshotCLIP", demo_root, tmp_path, extra=["--no-train"])  # builds it, trains nothing


def test_zero_epochs_is_refused_for_a_training_run(demo_root, tmp_path):
    with pytest.raises(ConfigError, match=r"OPTIM.MAX_EPOCH is 0: a training run needs at least 1 epoch"):
        check_run_kind("MMA", demo_root, tmp_path, opts=["OPTIM.MAX_EPOCH", "0"])


def test_an_output_folder_that_is_a_file_or_locked_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputDirError, match=r"--output-dir .*file: cannot create the folder"):
        lock_output_dir(str(tmp_path / "file"))
    held = lock_output_dir(str(tmp_path / "run"))
    with pytest.raises(OutputDirError, match=rf"is in use by another train.py \(pid {os.getpid()}\)"):
        lock_output_dir(str(tmp_path / "run"))
    held.close()  # the holder ends: the folder can be taken over
    lock_output_dir(str(tmp_path / "run")).close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_output_folder_that_cannot_be_written_is_one_line(tmp_path):
    (tmp_path / "read_only").mkdir(mode=0o555)
    with pytest.raises(OutputDirError, match=r"cannot write into the folder"):
        lock_output_dir(str(tmp_path / "read_only"))


def test_train_py_stops_on_a_bad_output_folder_before_any_work(demo_root, tmp_path):
    (tmp_path / "file").write_text("")
    result = run_train_py(train_py_args("MMA", demo_root, tmp_path / "file", opts=TRAIN_BASE))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(error_lines(result)) == 1 and "--output-dir" in error_lines(result)[0]
    assert result.stdout == ""  # not even the seed line: nothing started


def test_a_second_train_py_into_the_same_folder_refuses_then_takes_over_when_the_first_dies(demo_root, tmp_path):
    args = train_py_args("MMA", demo_root, tmp_path, opts=[*TRAIN_BASE, "OPTIM.MAX_EPOCH", "2"])
    first = subprocess.Popen([sys.executable, os.path.join(REPO_ROOT, "train.py"), *args], cwd=REPO_ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in first.stdout:
        if line.startswith("Setting fixed seed"):  # printed once the folder is locked
            first.send_signal(signal.SIGSTOP)  # alive, holding the lock, doing nothing
            break
    try:
        second = run_train_py(args)
        assert second.returncode == 1
        assert error_lines(second) == [f"Error: --output-dir {tmp_path} is in use by another train.py (pid "
                                       f"{first.pid}); wait for it to finish (a run started again after it died "
                                       "resumes), or choose another folder."]
    finally:
        first.kill()
        first.stdout.close()
        first.wait(timeout=60)
    third = run_train_py(args)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "Found checkpoint" not in third.stdout or "Previous epoch" in third.stdout
    assert (tmp_path / RECORD_NAME).exists()


def test_a_batch_larger_than_the_training_set_trains_one_batch_per_epoch(demo_root, tmp_path):
    result = run_train_py(train_py_args("MMA", demo_root, tmp_path, opts=[
        *TRAIN_BASE, "OPTIM.MAX_EPOCH", "1", "DATALOADER.TRAIN_X.BATCH_SIZE", "1000"]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "epoch [1/1] batch [1/1]" in result.stdout and (tmp_path / RECORD_NAME).exists()


def test_the_record_states_the_shots_used_beside_the_shots_requested(demo_root, tmp_path):
    trainer = build_test_trainer("MMA", demo_root, tmp_path, opts=["DATASET.NUM_SHOTS", "32"])  # 20 per class
    trainer.test()
    fields = ResultRecord(trainer, SimpleNamespace(eval_only=False, model_dir="", load_epoch=None)).fields()
    assert (fields["shots"], fields["shots_used_min"], fields["shots_used_max"]) == (32, 20, 20)
