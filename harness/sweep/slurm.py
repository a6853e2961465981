"""The Slurm launcher, through submitit: one job array per launch, one array task per job (a chain of runs), or
per `--jobs-per-task K` jobs, run one after another in the task's warm worker (harness/sweep/worker.py).

Launch returns once the array is submitted. A task that hits its time limit or is preempted gets submitit's
signal, is requeued (submitit's Checkpointable) and, when it starts again, skips its finished runs and resumes the
unfinished one from its last checkpoint. submitit's logs of a task are linked beside the run folders' `log.txt`
(`slurm-<job id>.out` / `.err`). Each launch leaves `<output>/.sweep/slurm/<array job id>.json`, which maps jobs to
array tasks for `status`.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

import yaml

from harness.errors import ConfigError, UserError
from harness.json_files import write_json_atomic
from harness.sweep.chain import ChainRunner

RESOURCE_KEYS = ("partition", "gpus", "cpus", "mem", "time", "account", "qos", "constraint", "sbatch")
SLURM_TOOLS = ("sbatch", "squeue", "scancel")
# Slurm states (sacct/squeue) and what status calls them.
ACTIVE_STATES = {"PENDING": "queued", "REQUEUED": "queued", "REQUEUE_HOLD": "queued", "REQUEUE_FED": "queued",
                 "CONFIGURING": "running", "RUNNING": "running", "COMPLETING": "running", "SUSPENDED": "running",
                 "RESIZING": "running", "STAGE_OUT": "running", "SIGNALING": "running"}


def check_slurm_tools():
    missing = [tool for tool in SLURM_TOOLS if shutil.which(tool) is None]
    if missing:
        raise UserError(f"The slurm launcher needs Slurm's client tools on PATH ({', '.join(missing)} not found): "
                        "run it on a cluster login node, or install them (Debian/Ubuntu: apt-get install "
                        "slurm-client), or use --launcher local.")
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise UserError("The slurm launcher needs submitit: pip install submitit==1.5.4") from None


def read_resources(path):
    """Per-job resources from a small YAML file (keys: RESOURCE_KEYS; `sbatch` maps extra sbatch options)."""
    try:
        with open(path) as file:
            content = yaml.safe_load(file) or {}
    except OSError as error:
        raise ConfigError(f"--resources {path}: {error.strerror}.") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"--resources {path}: malformed YAML{where}.") from None
    if not isinstance(content, dict):
        raise ConfigError(f"--resources {path}: expected a mapping of {', '.join(RESOURCE_KEYS)}.")
    unknown = sorted(set(content) - set(RESOURCE_KEYS))
    if unknown:
        raise ConfigError(f"--resources {path}: unknown keys {unknown}; use {', '.join(RESOURCE_KEYS)}.")
    if not isinstance(content.get("sbatch", {}), dict):
        raise ConfigError(f"--resources {path}: 'sbatch' must map option names to values (e.g. exclusive: true).")
    return content


def parse_time_minutes(value):
    """Slurm's time formats (minutes, MM:SS, HH:MM:SS, D-HH[:MM[:SS]]) in whole minutes."""
    text = str(value).strip()
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not match:
        raise ConfigError(f"time {text!r}: use minutes, HH:MM:SS or D-HH:MM:SS.")
    days, first, second, third = (int(g) if g else None for g in match.groups())
    if days is None and second is None:
        return first  # plain minutes
    if days is not None:
        hours, minutes, seconds = first, second or 0, third or 0
    elif third is None:
        hours, minutes, seconds = 0, first, second  # MM:SS
    else:
        hours, minutes, seconds = first, second, third
    return max(1, (days or 0) * 1440 + hours * 60 + minutes + (1 if seconds else 0))


def executor_parameters(resources, parallelism, name):
    """submitit's update_parameters() arguments for the resources."""
    parameters = {"name": name, "slurm_array_parallelism": parallelism, "nodes": 1, "tasks_per_node": 1}
    if resources.get("partition"):
        parameters["slurm_partition"] = resources["partition"]
    if resources.get("gpus"):
        parameters["gpus_per_node"] = int(resources["gpus"])
    if resources.get("cpus"):
        parameters["cpus_per_task"] = int(resources["cpus"])
    if resources.get("mem"):
        parameters["slurm_mem"] = str(resources["mem"])
    if resources.get("time"):
        parameters["timeout_min"] = parse_time_minutes(resources["time"])
    additional = {key: resources[key] for key in ("account", "qos", "constraint") if resources.get(key)}
    additional.update(resources.get("sbatch") or {})
    if additional:
        parameters["slurm_additional_parameters"] = additional
    return parameters


def job_key(job):
    """Identifies a job across launches: its runs' folders."""
    return "|".join(os.path.abspath(run.output_dir) for run in job.runs)


class SlurmChain:
    """The function each array task runs (submitit pickles it): its jobs' chains, one after another, in one warm
    worker (unless `isolate`). Having `checkpoint` makes submitit requeue the task on timeout or preemption."""

    def __init__(self, data_root, python, isolate=False):
        self.data_root = data_root
        self.python = python
        self.isolate = isolate

    def __call__(self, jobs):
        outcomes = []
        with ChainRunner(self.data_root, python=self.python, verbose=True, isolate=self.isolate) as runner:
            for job in jobs:
                link_submitit_logs(job)
                outcomes += runner.run_job(job)  # a failed job stops only its own chain
        failed = [outcome for outcome in outcomes if outcome.state == "failed"]
        if failed:
            # A non-zero exit marks the task FAILED in Slurm's accounting; status reads the run's sweep_failed.json.
            raise RuntimeError("; ".join(f"{outcome.run.output_dir}: {outcome.error}" for outcome in failed))
        return [(outcome.run.output_dir, outcome.state) for outcome in outcomes]

    def checkpoint(self, jobs):
        import submitit

        # Requeue the same jobs: finished runs are skipped, the interrupted one resumes from its checkpoint.
        return submitit.helpers.DelayedSubmission(self, jobs)


def task_groups(jobs, jobs_per_task):
    """The jobs in consecutive groups of `jobs_per_task`, one group per array task."""
    return [jobs[start:start + jobs_per_task] for start in range(0, len(jobs), jobs_per_task)]


def link_submitit_logs(job):
    import submitit

    environment = submitit.JobEnvironment()
    for run in job.runs:
        os.makedirs(run.output_dir, exist_ok=True)
        for kind, target in (("out", environment.paths.stdout), ("err", environment.paths.stderr)):
            link = os.path.join(run.output_dir, f"slurm-{environment.job_id}.{kind}")
            if not os.path.lexists(link):
                os.symlink(os.path.abspath(target), link)


def submit(jobs, output, data_root, resources, parallelism, python=None, jobs_per_task=1, isolate=False):
    """Submit `jobs` as one array, `jobs_per_task` jobs per array task; returns the array's job id. Does not wait
    for the cluster."""
    import submitit

    sweep_dir = os.path.join(os.path.abspath(output), ".sweep", "slurm")
    folder = os.path.join(sweep_dir, "submitit", "%A")
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    executor.update_parameters(**executor_parameters(resources, parallelism, "harness-sweep"))
    groups = task_groups(jobs, jobs_per_task)
    chain = SlurmChain(os.path.abspath(data_root), python or sys.executable, isolate)
    submitted = executor.map_array(chain, groups)
    array_id = submitted[0].job_id.split("_")[0]
    tasks = {job_key(job): handle.job_id for group, handle in zip(groups, submitted) for job in group}
    write_json_atomic({"array_job_id": array_id, "submitted": time.time(), "tasks": tasks,
                       "submitit_folder": folder.replace("%A", array_id)},
                      os.path.join(sweep_dir, f"{array_id}.json"), indent=2)
    return array_id


def submitted_tasks(output):
    """{job key: slurm task id} from every launch under `output`, the latest launch winning."""
    sweep_dir = os.path.join(os.path.abspath(output), ".sweep", "slurm")
    tasks = {}
    if not os.path.isdir(sweep_dir):
        return tasks
    launches = []
    for name in os.listdir(sweep_dir):
        if name.endswith(".json"):
            try:
                with open(os.path.join(sweep_dir, name)) as file:
                    launches.append(json.load(file))
            except (OSError, ValueError):
                continue
    for launch in sorted(launches, key=lambda entry: entry.get("submitted", 0)):
        tasks.update(launch.get("tasks", {}))
    return tasks


def expand_task_ids(job_id):
    """`123_[0-2,5%4]` -> ["123_0", "123_1", "123_2", "123_5"]; other ids unchanged."""
    match = re.fullmatch(r"(\d+)_\[([^\]]+)\]", job_id)
    if not match:
        return [job_id]
    array, spec = match.group(1), match.group(2).split("%")[0]
    ids = []
    for part in spec.split(","):
        low, _, high = part.partition("-")
        ids += [f"{array}_{index}" for index in range(int(low), int(high or low) + 1)]
    return ids


def task_states(task_ids):
    """{task id: Slurm state} from sacct (squeue where accounting is off); unknown tasks are left out."""
    arrays = sorted({task.split("_")[0] for task in task_ids})
    if not arrays:
        return {}
    states = {}
    # squeue last: it knows a just-submitted task before accounting does.
    queries = [["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(arrays)]]
    if shutil.which("sacct"):
        queries.insert(0, ["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(arrays)])
    for query in queries:
        result = subprocess.run(query, capture_output=True, text=True)
        if result.returncode != 0:
            continue
        for line in result.stdout.splitlines():
            job_id, _, state = line.partition("|")
            for task in expand_task_ids(job_id.strip()):
                # sacct writes "CANCELLED by 0": the state is the first word.
                states[task] = state.split()[0] if state.strip() else "UNKNOWN"
    return states
