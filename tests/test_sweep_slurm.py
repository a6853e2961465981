"""The Slurm launcher against a real single-node cluster (.ci/slurm_cluster.sh; skipped without one, failed under
CI=true): the serial results in the same folders, a cancelled job finished by launching again, a preempted job
requeued and resumed, a broken job reported by status while the others finish."""
import os
import subprocess

import pytest
import torch

from harness.protocols import Selection, expand
from harness.sweep.slurm import submitted_tasks
from harness.sweep.status import FAILED, FINISHED, NOT_STARTED, QUEUED, RUNNING, selection_states
from tests.slurm_cluster import slurm_environment, wait_until  # noqa: F401  (slurm_environment is a fixture)
from tests.sweep_helpers import SWEEP_SEEDS, SWEEP_TRAINERS, demo_run_dirs, same_metrics, sweep
from tests.test_sweep_local import broken_config_dir

RESOURCES = ["--cpus-per-job", "1", "--mem", "1G", "--time", "20"]
CHECKPOINT = os.path.join("adapter_learner", "model.pth.tar-20")


def selection_arguments(trainers, seeds, output, *extra):
    return ["--protocol", "base2new", "--datasets", "demo", "--cfg", "demo", "--trainers", *trainers, "--seeds",
            *map(str, seeds), "--output", str(output), *extra]


def states(output, trainers, seeds, config_dir=""):
    jobs = expand(Selection("base2new", tuple(trainers), ("demo",), tuple(seeds), config="demo", output=str(output),
                            config_dir=config_dir))
    return {state.run.output_dir: state for state in selection_states(jobs, str(output))}


def settled(output, trainers, seeds, config_dir=""):
    """True once nothing of the selection is running or queued."""
    return all(state.state not in (RUNNING, QUEUED) for state in states(output, trainers, seeds, config_dir).values())


def launch(env, demo_root, output, trainers, seeds, *extra):
    result = sweep("launch", *selection_arguments(trainers, seeds, output, "--launcher", "slurm", "--root",
                                                  str(demo_root), *RESOURCES, *extra), env=env)
    assert result.stdout.startswith("Submitted job array ")
    return result.stdout.split()[3].rstrip(":")


def log_reaches(run_dir, text):
    path = os.path.join(run_dir, "log.txt")
    return os.path.isfile(path) and text in open(path, errors="replace").read()


def launch_mma_until_epoch_3(env, demo_root, output, seed):
    """Submit the MMA chain of one seed and wait until its training is in epoch 3: (array id, training folder)."""
    train_dir = demo_run_dirs(output, ("MMA",), (seed,))[0]
    array = launch(env, demo_root, output, ["MMA"], [seed])
    wait_until(lambda: log_reaches(train_dir, "epoch [3/20]"), 300, "training to reach epoch 3")
    return array, train_dir


def all_finished(output, trainers, seeds):
    return all(state.state == FINISHED for state in states(output, trainers, seeds).values())


def adapter_weights(run_dir):
    return torch.load(os.path.join(run_dir, CHECKPOINT), weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def slurm_env(slurm_environment):
    os.environ.update({key: slurm_environment[key] for key in ("SLURM_CONF",) if key in slurm_environment})
    return {**slurm_environment, "OMP_NUM_THREADS": "1"}


def test_a_slurm_sweep_ends_with_the_serial_results_in_the_same_folders(slurm_env, serial_sweep, demo_root, tmp_path):
    reference, _ = serial_sweep
    output = tmp_path / "output"
    array = launch(slurm_env, demo_root, output, SWEEP_TRAINERS, SWEEP_SEEDS)
    assert len(submitted_tasks(str(output))) == len(SWEEP_TRAINERS) * len(SWEEP_SEEDS)
    # Just submitted: each run waits in the queue, or its task has started (the chain's later runs still wait).
    submitted = states(output, SWEEP_TRAINERS, SWEEP_SEEDS)
    assert {state.state for state in submitted.values()} <= {QUEUED, RUNNING, FINISHED}
    assert any(state.state == QUEUED for state in submitted.values())
    wait_until(lambda: settled(output, SWEEP_TRAINERS, SWEEP_SEEDS), 900, "the array to finish")
    assert {state.state for state in states(output, SWEEP_TRAINERS, SWEEP_SEEDS).values()} == {FINISHED}
    assert same_metrics(output, reference) == {}
    # submitit's logs sit beside each run's log.txt.
    for run_dir in demo_run_dirs(output):
        links = [name for name in os.listdir(run_dir) if name.startswith(f"slurm-{array}_")]
        assert sorted(name.rsplit(".", 1)[1] for name in links) == ["err", "out"]
        assert all(os.path.isfile(os.path.join(run_dir, name)) for name in links)
    status = sweep("status", *selection_arguments(SWEEP_TRAINERS, SWEEP_SEEDS, output), env=slurm_env)
    assert status.stdout.splitlines()[-1] == f"{len(demo_run_dirs(output))} finished, 0 running, 0 queued, " \
                                             "0 failed, 0 not started"


def test_a_job_cancelled_mid_training_is_finished_by_launching_again(slurm_env, serial_sweep, demo_root, tmp_path):
    reference, _ = serial_sweep
    output = tmp_path / "output"
    array, train_dir = launch_mma_until_epoch_3(slurm_env, demo_root, output, 1)
    test_dir = demo_run_dirs(output, ("MMA",), (1,))[1]
    subprocess.run(["scancel", array], env=slurm_env, check=True)
    wait_until(lambda: "CANCELLED" in states(output, ["MMA"], [1])[train_dir].detail, 120, "the cancel to show")
    cancelled = states(output, ["MMA"], [1])
    assert cancelled[train_dir].state == FAILED
    assert cancelled[test_dir].state in (FAILED, NOT_STARTED)
    assert not os.path.exists(os.path.join(train_dir, "metrics.json"))

    launch(slurm_env, demo_root, output, ["MMA"], [1])
    wait_until(lambda: all_finished(output, ["MMA"], [1]), 600, "the relaunch to finish")
    assert same_metrics(output, reference, ("MMA",), (1,)) == {}
    reference_dir = demo_run_dirs(reference, ("MMA",), (1,))[0]
    expected = adapter_weights(reference_dir)
    assert all(torch.equal(tensor, expected[key]) for key, tensor in adapter_weights(train_dir).items())


def test_a_preempted_job_is_requeued_and_resumes(slurm_env, serial_sweep, demo_root, tmp_path):
    reference, _ = serial_sweep
    output = tmp_path / "output"
    array, train_dir = launch_mma_until_epoch_3(slurm_env, demo_root, output, 2)
    # The signal Slurm sends before a time limit or a preemption (submitit's --signal=USR2@90).
    (task,) = submitted_tasks(str(output)).values()
    subprocess.run(["scancel", "--signal=USR2", task], env=slurm_env, check=True)

    def pending():
        return subprocess.run(["squeue", "-h", "-j", task, "-o", "%T"], env=slurm_env, capture_output=True,
                              text=True).stdout.strip() == "PENDING"

    wait_until(pending, 120, "the task to be requeued")
    # Slurm holds a requeued job back for cred_expire + 1 s (.ci/slurm_cluster.sh sets 10 s). Pulling its start
    # forward races the previous incarnation's revoked credential: Slurm then kills the job for good.
    wait_until(lambda: all_finished(output, ["MMA"], [2]), 600, "the requeued job to finish")
    assert log_reaches(train_dir, "Found checkpoint")  # resumed from its last epoch, not started over

    def history():  # every state the task went through, requeues included
        return subprocess.run(["sacct", "-n", "-D", "-X", "-P", "-o", "State", "-j", array], env=slurm_env,
                              capture_output=True, text=True, check=True).stdout.split()

    wait_until(lambda: history()[-1:] == ["COMPLETED"], 120, "the requeued task to complete")
    assert "REQUEUED" in history(), history()
    assert same_metrics(output, reference, ("MMA",), (2,)) == {}


def test_a_broken_job_is_reported_failed_while_the_others_finish(slurm_env, demo_root, tmp_path):
    output = tmp_path / "output"
    config_dir = str(broken_config_dir(tmp_path))
    launch(slurm_env, demo_root, output, SWEEP_TRAINERS, [1], "--config-dir", config_dir)
    wait_until(lambda: settled(output, SWEEP_TRAINERS, [1], config_dir), 600, "the array to settle")
    found = states(output, SWEEP_TRAINERS, [1], config_dir)
    broken_train, broken_test = demo_run_dirs(output, ("MMA",), (1,))
    assert found[broken_train].state == FAILED and "PREC" in found[broken_train].detail
    assert os.path.isfile(found[broken_train].log)
    assert found[broken_test].state in (FAILED, NOT_STARTED)
    assert all(found[run].state == FINISHED for run in demo_run_dirs(output, ("ZeroshotCLIP",), (1,)))
    status = sweep("status", *selection_arguments(SWEEP_TRAINERS, [1], output, "--config-dir", config_dir),
                   env=slurm_env, check=False)
    assert status.returncode == 1 and "--launcher slurm" in status.stdout


def test_an_array_task_runs_several_jobs_in_one_warm_worker(slurm_env, serial_sweep, demo_root, tmp_path):
    reference, _ = serial_sweep
    output = tmp_path / "output"
    launch(slurm_env, demo_root, output, ["ZeroshotCLIP"], SWEEP_SEEDS, "--jobs-per-task", "2")
    tasks = submitted_tasks(str(output))
    assert len(tasks) == len(SWEEP_SEEDS) and len(set(tasks.values())) == 1
    wait_until(lambda: settled(output, ["ZeroshotCLIP"], SWEEP_SEEDS), 600, "the task to finish")
    assert all_finished(output, ["ZeroshotCLIP"], SWEEP_SEEDS)
    assert same_metrics(output, reference, ("ZeroshotCLIP",)) == {}
    workers = []
    for run_dir in demo_run_dirs(output, ("ZeroshotCLIP",)):
        with open(os.path.join(run_dir, "sweep.out")) as file:
            workers.append(file.read().splitlines()[1])
    # The task's first run started the worker; every later run ran in it.
    assert workers.count("# in the warm worker started for this run") == 1
    assert len({line for line in workers if line.startswith("# in the warm worker pid ")}) == 1
    assert len(workers) == 2 * len(SWEEP_SEEDS)
