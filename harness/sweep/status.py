"""The state of every run of a selection, read from the output tree and the scheduler:
finished / running / queued / failed (with the log to read and its last error line) / not started."""
import os
import socket
from collections import Counter
from dataclasses import dataclass

from harness.results.record import record_is_valid
from harness.sweep import slurm
from harness.sweep.chain import FAILED_NAME, OUTPUT_NAME, RUNNING_NAME, last_error_line, read_marker

FINISHED, RUNNING, QUEUED, FAILED, NOT_STARTED = "finished", "running", "queued", "failed", "not started"
STATE_ORDER = (FINISHED, RUNNING, QUEUED, FAILED, NOT_STARTED)


@dataclass(frozen=True)
class RunState:
    run: object
    state: str
    detail: str = ""  # failed: the error line; running/queued: where (pid or Slurm task)
    log: str = ""  # failed: the file to read


def _process_alive(marker):
    if marker is None or marker.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(marker["pid"]), 0)
    except (OSError, KeyError, ValueError):
        return False
    return True


def _failure_log(run):
    for name in ("log.txt", OUTPUT_NAME):
        path = os.path.join(run.output_dir, name)
        if os.path.isfile(path):
            return path
    links = sorted(name for name in os.listdir(run.output_dir) if name.startswith("slurm-") and name.endswith(".err"))
    return os.path.join(run.output_dir, links[-1]) if links else run.output_dir


def run_state(run, finished, slurm_task=None, slurm_state=None, in_progress=False):
    """The state of one run (`finished`: whether it holds a valid record); `slurm_state` is the state of the Slurm
    task running its job, if any."""
    if finished:
        return RunState(run, FINISHED)
    marker = read_marker(run, RUNNING_NAME)
    if slurm_state in slurm.ACTIVE_STATES:
        state = slurm.ACTIVE_STATES[slurm_state]
        # Inside a running task, only the run in progress runs; the rest of its chain waits.
        if state == RUNNING and not in_progress:
            state = QUEUED
        return RunState(run, state, f"Slurm task {slurm_task} ({slurm_state})")
    if marker is not None and marker.get("slurm_job_id") is None and _process_alive(marker):
        return RunState(run, RUNNING, f"pid {marker['pid']} on {marker['host']}")
    failure = read_marker(run, FAILED_NAME)
    if failure is not None:
        error = failure.get("error", "")
        if slurm_state is not None and slurm_state != "COMPLETED":
            error = f"Slurm task {slurm_task} {slurm_state}: {error}"
        return RunState(run, FAILED, error, failure.get("log") or failure.get("output", ""))
    if not os.path.isdir(run.output_dir) or not os.listdir(run.output_dir):
        if slurm_state is not None:
            return RunState(run, FAILED, f"Slurm task {slurm_task} ended {slurm_state} before this run started",
                            os.path.dirname(run.output_dir))
        return RunState(run, NOT_STARTED)
    log = _failure_log(run)
    reason = f"Slurm task {slurm_task} ended {slurm_state}" if slurm_state else "interrupted"
    error = last_error_line(os.path.join(run.output_dir, OUTPUT_NAME))
    return RunState(run, FAILED, f"{reason} with no record{': ' + error if error else ''}", log)


def selection_states(jobs, output):
    """Every run's RunState, job by job, in the jobs' order."""
    tasks = slurm.submitted_tasks(output)
    wanted = [tasks[slurm.job_key(job)] for job in jobs if slurm.job_key(job) in tasks]
    states = slurm.task_states(wanted) if wanted else {}
    result = []
    for job in jobs:
        task = tasks.get(slurm.job_key(job))
        slurm_state = states.get(task)
        # Each record is read (and, if invalid, reported) once.
        finished = [record_is_valid(run.output_dir) for run in job.runs]
        first_unfinished = finished.index(False) if False in finished else None
        for index, run in enumerate(job.runs):
            result.append(run_state(run, finished[index], task, slurm_state, in_progress=index == first_unfinished))
    return result


def counts(states):
    found = Counter(state.state for state in states)
    return {name: found.get(name, 0) for name in STATE_ORDER}


def format_counts(states):
    return ", ".join(f"{number} {name}" for name, number in counts(states).items())
