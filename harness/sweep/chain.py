"""Running one job: its chain of train.py runs, in order, each skipped when finished.

The same code runs a job on every launcher (serial, local workers, a Slurm array task), so a run is the same
run wherever it executes. Each run started here leaves beside its `log.txt`:
  sweep.out           train.py's whole output (stdout and stderr), including what it printed before its log existed
  sweep_running.json  while it runs: host and pid of the process running it (status reads it)
  sweep_failed.json   when it failed: exit code, the last error line, where to read more; removed on the next start
A run that is not finished is started again: a training run resumes from its last checkpoint (train.py's exact
resume), an evaluation runs from the start.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from harness.json_files import write_json_atomic
from harness.protocols import REPO_ROOT
from harness.results.record import RECORD_NAME, record_is_valid
from harness.sweep.worker import WarmWorker, copy_output

OUTPUT_NAME = "sweep.out"
RUNNING_NAME = "sweep_running.json"
FAILED_NAME = "sweep_failed.json"
ERROR_PREFIXES = ("Error:", "error:")


@dataclass
class RunOutcome:
    run: object
    state: str  # "skipped" (already finished), "finished" or "failed"
    seconds: float = 0.0
    error: str = ""


def last_error_line(path):
    """The line that says why a run failed: the last `Error: ...` line, else the last line of a traceback, else
    the last non-empty line of the output."""
    if not os.path.isfile(path):
        return ""
    with open(path, errors="replace") as file:
        lines = [line.rstrip() for line in file if line.strip()]
    for line in reversed(lines):
        if line.lstrip().startswith(ERROR_PREFIXES):
            return line.strip()
    return lines[-1].strip() if lines else ""


def run_command(run, data_root, python):
    return [python, "train.py", *run.arguments(data_root)]


class ChainRunner:
    """Runs jobs' chains, each run in the runner's warm worker (harness/sweep/worker.py), or with `isolate` in a
    `python train.py` process of its own. `verbose` passes train.py's output through to this process's output as
    well. `close()` ends the warm worker."""

    def __init__(self, data_root, python=None, verbose=False, environment=None, on_event=None, isolate=False):
        self.data_root = data_root
        self.python = python or sys.executable
        self.verbose = verbose
        self.environment = environment or {}
        self.on_event = on_event or (lambda event, run, detail: None)
        self.worker = None if isolate else WarmWorker(self.python, {**os.environ, **self.environment}, REPO_ROOT)

    def close(self):
        if self.worker is not None:
            self.worker.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def run_job(self, job):
        """Run the job's runs in order; stop at the first failure (later runs need its checkpoint)."""
        outcomes = []
        for run in job.runs:
            if record_is_valid(run.output_dir):
                self.on_event("skipped", run, "")
                outcomes.append(RunOutcome(run, "skipped"))
                continue
            outcome = self.run_one(run)
            outcomes.append(outcome)
            if outcome.state == "failed":
                break
        return outcomes

    def run_one(self, run):
        os.makedirs(run.output_dir, exist_ok=True)
        failed_marker = os.path.join(run.output_dir, FAILED_NAME)
        if os.path.exists(failed_marker):
            os.remove(failed_marker)
        if os.listdir(run.output_dir):
            self.on_event("resumed", run, "")
        running = os.path.join(run.output_dir, RUNNING_NAME)
        write_json_atomic({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
                           "slurm_job_id": os.environ.get("SLURM_JOB_ID")}, running)
        self.on_event("started", run, "")
        output_path = os.path.join(run.output_dir, OUTPUT_NAME)
        started = time.time()
        try:
            returncode = self._execute(run, output_path)
        finally:
            if os.path.exists(running):
                os.remove(running)
        seconds = time.time() - started
        if returncode == 0 and record_is_valid(run.output_dir):
            self.on_event("finished", run, f"{seconds:.1f} s")
            return RunOutcome(run, "finished", seconds)
        if returncode < 0:
            error = f"train.py was killed by {signal.Signals(-returncode).name}"
        else:
            error = last_error_line(output_path) or f"train.py exited with {returncode}"
        if returncode == 0:
            error = f"train.py exited 0 but wrote no valid {RECORD_NAME}; {error}"
        write_json_atomic({"returncode": returncode, "error": error, "output": output_path,
                           "log": os.path.join(run.output_dir, "log.txt"), "at": time.time()},
                          os.path.join(run.output_dir, FAILED_NAME), indent=2)
        self.on_event("failed", run, error)
        return RunOutcome(run, "failed", seconds, error)

    def _execute(self, run, output_path):
        command = run_command(run, self.data_root, self.python)
        with open(output_path, "a") as output:
            output.write(f"$ {' '.join(command)}\n")
            if self.worker is not None:
                return self._execute_warm(command[2:], output)
            output.flush()
            process = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, **self.environment},
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            copy_output(process.stdout, output, self.verbose)
            return process.wait()

    def _execute_warm(self, argv, output):
        restarted = self.worker.pid is None
        output.write(f"# in the warm worker {'started for this run' if restarted else f'pid {self.worker.pid}'}\n")
        output.flush()
        return self.worker.run(argv, output, self.verbose)


def read_marker(run, name):
    path = os.path.join(run.output_dir, name)
    try:
        with open(path) as file:
            return json.load(file)
    except (OSError, ValueError):
        return None
