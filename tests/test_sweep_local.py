"""`python -m harness.sweep` on this machine: the local launcher gives the serial loop's results, --dry-run lists the
protocol scripts' commands, a failed job stops nothing else and status names it, bad input stops before anything
is written."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from harness.protocols import Selection, expand
from harness.results.record import RECORD_NAME
from harness.sweep.chain import FAILED_NAME, RUNNING_NAME
from harness.sweep.status import FAILED, FINISHED, NOT_STARTED, RUNNING, selection_states
from tests.sweep_helpers import SWEEP_SEEDS, SWEEP_TRAINERS, demo_run_dirs, install_fake_python, same_metrics, sweep
from tests.trainer_helpers import REPO_ROOT

DEMO_SELECTION = ["--protocol", "base2new", "--datasets", "demo", "--cfg", "demo", "--seeds",
                  *map(str, SWEEP_SEEDS), "--trainers", *SWEEP_TRAINERS]


def test_local_workers_give_the_serial_results_in_the_same_folders(serial_sweep, demo_root, tmp_path):
    reference, env = serial_sweep
    output = tmp_path / "output"
    result = sweep("launch", *DEMO_SELECTION, "--launcher", "local", "--workers", "2", "--root", str(demo_root),
                   "--output", str(output), env=env)
    assert f"{len(demo_run_dirs(output))}/{len(demo_run_dirs(output))} finished, 0 running, 0 failed" in result.stdout
    assert same_metrics(output, reference) == {}
    assert "Leaderboard: python -m harness.results.leaderboard" in result.stdout

    again = sweep("launch", *DEMO_SELECTION, "--launcher", "local", "--workers", "2", "--root", str(demo_root),
                  "--output", str(output), env=env)
    assert "start" not in again.stdout  # everything was finished: nothing ran again


@pytest.mark.parametrize("script, protocol, extra", [
    ("run_base2new.sh", "base2new", {"DATASETS": "eurosat dtd"}),
    ("run_cross_dataset.sh", "cross_dataset", {}),
    ("run_domain_generalization.sh", "domain_generalization", {}),
    ("run_few_shot.sh", "few_shot", {"DATASETS": "dtd", "SHOTS_LIST": "1 2"}),
])
def test_dry_run_lists_the_commands_the_protocol_scripts_run(tmp_path, script, protocol, extra):
    fake_python = install_fake_python(tmp_path)
    output, calls = tmp_path / "output", tmp_path / "calls"
    env = {**os.environ, "PYTHON": fake_python, "CALLS": str(calls),
           "OUTPUT": str(output), "SEEDS": "1 2", "ISOLATE": "1", **extra}
    subprocess.run(["bash", f"scripts/{script}", "MMA"], cwd=REPO_ROOT, env=env, check=True, capture_output=True)
    selection = ["--protocol", protocol, "--trainers", "MMA", "--seeds", "1", "2", "--output", str(output)]
    if "DATASETS" in extra:
        selection += ["--datasets", *extra["DATASETS"].split()]
    if "SHOTS_LIST" in extra:
        selection += ["--shots", *extra["SHOTS_LIST"].split()]
    shutil.rmtree(output)  # a dry run lists every command, finished or not
    listed = sweep("launch", *selection, "--launcher", "serial", "--dry-run", env=env).stdout.splitlines()
    prefix = f"{fake_python} train.py "
    assert all(line.startswith(prefix) for line in listed)
    assert sorted(line[len(prefix):] for line in listed) == sorted(calls.read_text().splitlines())
    assert not output.exists()


def broken_config_dir(tmp_path):
    """A user config folder whose MMA config fails at train time (a precision that does not exist)."""
    folder = tmp_path / "my_configs" / "trainers" / "MMA"
    folder.mkdir(parents=True)
    with open(os.path.join(REPO_ROOT, "configs", "trainers", "MMA", "demo.yaml")) as file:
        content = file.read()
    (folder / "demo.yaml").write_text(content + "\nTRAINER:\n  MMA:\n    PREC: fp8\n")
    return tmp_path / "my_configs"


def test_a_failed_job_stops_nothing_else_and_status_names_its_log_and_error(serial_sweep, demo_root, tmp_path):
    _, env = serial_sweep
    output = tmp_path / "output"
    selection = ["--protocol", "base2new", "--datasets", "demo", "--cfg", "demo", "--seeds", "1", "--trainers",
                 *SWEEP_TRAINERS, "--config-dir", str(broken_config_dir(tmp_path)), "--output", str(output)]
    result = sweep("launch", *selection, "--launcher", "local", "--workers", "2", "--root", str(demo_root),
                   env=env, check=False)
    assert result.returncode == 1
    mma_train, mma_test = demo_run_dirs(output, ("MMA",), (1,))
    assert "FAILED" in result.stderr and mma_train in result.stderr and "PREC" in result.stderr
    assert all(os.path.isfile(os.path.join(run, "metrics.json")) for run in demo_run_dirs(output, ("ZeroshotCLIP",),
                                                                                          (1,)))
    status = sweep("status", *selection, env=env, check=False)
    assert status.returncode == 1
    lines = status.stdout.splitlines()
    failed = next(index for index, line in enumerate(lines) if line.startswith("failed") and mma_train in line)
    assert "Error:" in lines[failed] and "PREC" in lines[failed]
    assert lines[failed + 1].split("log: ")[1] in (os.path.join(mma_train, "log.txt"),
                                                    os.path.join(mma_train, "sweep.out"))
    assert any(line.startswith("not started") and mma_test in line for line in lines)
    assert "2 finished, 0 running, 0 queued, 1 failed, 1 not started" in status.stdout
    assert "Relaunch what is left: python -m harness.sweep launch" in status.stdout


def test_status_reads_each_state_from_the_output_tree(serial_sweep, tmp_path):
    reference, _ = serial_sweep
    output = tmp_path / "output"
    shutil.copytree(reference, output)
    jobs = expand(Selection("base2new", ("MMA",), ("demo",), (1, 2), config="demo", output=str(output)))
    (train1, test1), (train2, test2) = (job.runs for job in jobs)
    os.remove(os.path.join(test1.output_dir, RECORD_NAME))  # killed: a log and no record
    os.remove(os.path.join(train2.output_dir, RECORD_NAME))
    with open(os.path.join(train2.output_dir, RUNNING_NAME), "w") as marker:  # this process is "running" it
        marker.write(f'{{"host": "{os.uname().nodename}", "pid": {os.getpid()}}}')
    shutil.rmtree(test2.output_dir)
    states = {state.run.output_dir: state for state in selection_states(jobs, str(output))}
    assert states[train1.output_dir].state == FINISHED
    assert states[test1.output_dir].state == FAILED and "interrupted" in states[test1.output_dir].detail
    assert states[test1.output_dir].log == os.path.join(test1.output_dir, "log.txt")
    assert states[train2.output_dir].state == RUNNING
    assert states[test2.output_dir].state == NOT_STARTED

    os.remove(os.path.join(train2.output_dir, RUNNING_NAME))
    with open(os.path.join(train2.output_dir, FAILED_NAME), "w") as marker:
        marker.write('{"error": "Error: something named", "log": "/some/log.txt"}')
    failed = next(state for state in selection_states(jobs, str(output)) if state.run == train2)
    assert (failed.state, failed.detail, failed.log) == (FAILED, "Error: something named", "/some/log.txt")


@pytest.mark.parametrize("arguments, message", [
    (["--protocol", "base2novel"], "Unknown protocol 'base2novel'"),
    (["--protocol", "base2new", "--trainers", "mma"], "Unknown trainer 'mma' (did you mean MMA?)"),
    (["--protocol", "base2new", "--datasets", "eurosatt"], "--datasets eurosatt: not in the base2new protocol"),
    (["--protocol", "base2new", "--cfg", "vit_b32"], "No config configs/trainers/MMA/vit_b32.yaml"),
    (["--protocol", "base2new", "--shots", "4"], "--shots is for the few_shot protocol"),
    (["--protocol", "base2new", "--launcher", "local", "--workers", "0"], "--workers must be at least 1"),
    (["--protocol", "base2new", "--launcher", "slurm", "--time", "soon"], "time 'soon'"),
    (["--protocol", "base2new", "--launcher", "slurm", "--sbatch", "exclusive"], "--sbatch 'exclusive': use KEY=VALUE"),
])
def test_bad_input_stops_with_one_line_before_anything_is_written(tmp_path, arguments, message):
    if "--launcher" not in arguments:
        arguments = [*arguments, "--launcher", "serial"]
    result = sweep("launch", *arguments, "--output", str(tmp_path / "output"), check=False)
    assert result.returncode != 0
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "output").exists()


def test_the_slurm_launcher_without_slurm_names_what_to_install(tmp_path):
    env = {**os.environ, "PATH": os.path.dirname(sys.executable)}
    result = sweep("launch", "--protocol", "base2new", "--datasets", "demo", "--cfg", "demo", "--trainers", "MMA",
                   "--launcher", "slurm", "--output", str(tmp_path / "output"), env=env, check=False)
    assert result.returncode == 1
    assert "sbatch" in result.stderr and "apt-get install slurm-client" in result.stderr
    assert not (tmp_path / "output").exists()


def test_status_takes_a_launch_line_with_the_verb_changed(tmp_path):
    selection = ["--protocol", "base2new", "--datasets", "demo", "--cfg", "demo", "--trainers", "MMA", "--seeds", "1",
                 "--output", str(tmp_path / "output")]
    launch_flags = ["--launcher", "slurm", "--root", str(tmp_path / "data"), "--partition", "gpu", "--gpus-per-job",
                    "1", "--cpus-per-job", "8", "--mem", "32G", "--time", "2:00:00", "--sbatch", "exclusive=true",
                    "--parallelism", "4", "--resources", str(tmp_path / "absent.yaml"), "--verbose", "--dry-run"]
    plain = sweep("status", *selection)
    copied = sweep("status", *selection, *launch_flags)
    assert copied.stdout == plain.stdout
    assert "0 finished, 0 running, 0 queued, 0 failed, 2 not started" in copied.stdout
    assert not (tmp_path / "output").exists()


def test_seeds_are_given_as_numbers_and_ranges(tmp_path):
    selection = ["--protocol", "base2new", "--datasets", "demo", "--cfg", "demo", "--trainers", "MMA",
                 "--output", str(tmp_path / "output"), "--launcher", "serial", "--dry-run"]
    listed = sweep("launch", *selection, "--seeds", "1-4", "7", "2").stdout
    assert sorted({int(word) for word in re.findall(r"--seed (\d+)", listed)}) == [1, 2, 3, 4, 7]
    refused = sweep("launch", *selection, "--seeds", "5-3", check=False)
    assert refused.returncode != 0 and "--seeds: '5-3' is an empty range" in refused.stderr
    assert "Traceback" not in refused.stderr
