"""Run the benchmark grid: `python -m harness.sweep launch|status ...`.

    python -m harness.sweep launch --protocol base2new --trainers MMA RMAdapter RMMA --launcher slurm \\
        --resources slurm.yaml          # one job array; returns once submitted
    python -m harness.sweep launch --protocol base2new --launcher local --gpus 0,1,2,3
    python -m harness.sweep status --protocol base2new --trainers MMA RMAdapter RMMA

A job is one chain of train.py runs (a training run, then the evaluations of its checkpoint). Finished runs
(metrics.json) are skipped and unfinished ones resumed, so the same launch command finishes what is left.
"""
import argparse
import os
import shlex
import sys
import time

from harness.errors import ConfigError, UserError
from harness.protocols import (
    DEFAULT_SEEDS,
    FEW_SHOT,
    PROTOCOLS,
    Job,
    Selection,
    expand,
    get_protocol,
    parse_seeds,
)
from harness.results.record import record_is_valid
from harness.sweep import status as sweep_status

LAUNCHERS = ("serial", "local", "slurm")
DEFAULT_TRAINERS = ("MMA", "RMAdapter", "RMMA")
PHASES = ("all", "train", "test")


def add_selection_arguments(parser):
    parser.add_argument("--protocol", required=True, help=f"one of {', '.join(PROTOCOLS)}")
    parser.add_argument("--trainers", nargs="+", default=list(DEFAULT_TRAINERS), metavar="TRAINER",
                        help=f"default: {' '.join(DEFAULT_TRAINERS)}")
    parser.add_argument("--datasets", nargs="+", metavar="DATASET",
                        help="CoOp config names, or 'all' (default): the protocol's datasets (targets for "
                             "cross_dataset / domain_generalization)")
    parser.add_argument("--seeds", nargs="+", default=list(DEFAULT_SEEDS), metavar="SEED",
                        help="seeds and ranges of seeds, e.g. 1 2 3 or 1-10 (default 1 2 3)")
    parser.add_argument("--shots", nargs="+", type=int, metavar="K", help="few_shot only (default 1 2 4 8 16)")
    parser.add_argument("--cfg", help="config name for every trainer (default: the protocol's per trainer/dataset)")
    parser.add_argument("--config-dir", default="",
                        help="your own configs, in the repository's layout (DIR/trainers/<TRAINER>/<CFG>.yaml), "
                             "looked up before the repository's")
    parser.add_argument("--load-epoch", type=int, help="epoch the evaluations load (default: OPTIM.MAX_EPOCH)")
    parser.add_argument("--phase", choices=PHASES, default="all",
                        help="train: only each job's training run; test: only its evaluations (training finished)")
    parser.add_argument("--output", default=os.environ.get("OUTPUT", "output"),
                        help="root of the output folders (env OUTPUT; default output)")


def add_launch_arguments(parser, launcher_required):
    """The flags of a launch: which launcher, the data root, and each launcher's options."""
    parser.add_argument("--launcher", choices=LAUNCHERS, required=launcher_required)
    parser.add_argument("--root", default=os.environ.get("DATA", "data/"), help="dataset root (env DATA)")
    parser.add_argument("--dry-run", action="store_true", help="print the train.py commands and stop")
    parser.add_argument("--verbose", action="store_true", help="show train.py's whole output (serial/local)")
    parser.add_argument("--isolate", action="store_true",
                        help="run every run in a `python train.py` process of its own, instead of one warm process "
                             "per worker (or Slurm task) that keeps the frozen backbone between runs")
    local = parser.add_argument_group("local launcher")
    local.add_argument("--gpus", help="GPU ids, one job per GPU at a time (e.g. 0,1,2,3)")
    local.add_argument("--workers", type=int, help="CPU workers (default 1)")
    cluster = parser.add_argument_group("slurm launcher (per-job resources; flags override --resources)")
    cluster.add_argument("--resources", help="YAML: partition, gpus, cpus, mem, time, account, qos, constraint, "
                                             "sbatch (extra sbatch options)")
    cluster.add_argument("--partition")
    cluster.add_argument("--gpus-per-job", type=int)
    cluster.add_argument("--cpus-per-job", type=int)
    cluster.add_argument("--mem", help="memory per job, e.g. 32G")
    cluster.add_argument("--time", help="time limit per job, e.g. 4:00:00")
    cluster.add_argument("--account")
    cluster.add_argument("--qos")
    cluster.add_argument("--constraint")
    cluster.add_argument("--sbatch", action="append", default=[], metavar="KEY=VALUE",
                         help="an extra sbatch option (repeatable), e.g. --sbatch exclusive=true")
    cluster.add_argument("--parallelism", type=int, default=64, help="array tasks running at once (default 64)")
    cluster.add_argument("--jobs-per-task", type=int, default=1, metavar="K",
                         help="jobs each array task runs one after another in one warm process (default 1); give "
                              "--time for all K")


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m harness.sweep", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    launch = commands.add_parser("launch", help="run or submit every unfinished run of the selection")
    add_selection_arguments(launch)
    add_launch_arguments(launch, launcher_required=True)

    report = commands.add_parser("status", help="finished / running / queued / failed / not started per run",
                                 description="Takes launch's flags too (a launch line with the verb changed works); "
                                             "only the selection flags matter.")
    add_selection_arguments(report)
    add_launch_arguments(report, launcher_required=False)
    report.add_argument("--all", action="store_true", help="list every run, not only the unfinished ones")
    return parser


def selection_from(args):
    get_protocol(args.protocol)
    if args.shots and args.protocol != FEW_SHOT:
        raise ConfigError(f"--shots is for the few_shot protocol; {args.protocol} uses 16 shots.")
    datasets = None if not args.datasets or args.datasets == ["all"] else tuple(args.datasets)
    if datasets:
        allowed = PROTOCOLS[args.protocol].datasets
        unknown = [dataset for dataset in datasets if dataset not in allowed and dataset != "demo"]
        if unknown:
            raise ConfigError(f"--datasets {' '.join(unknown)}: not in the {args.protocol} protocol; its datasets: "
                              f"{', '.join(allowed)} (or demo).")
    try:
        seeds = tuple(parse_seeds(args.seeds))
    except ValueError as error:
        raise ConfigError(f"--seeds: {error}.") from None
    return Selection(args.protocol, tuple(args.trainers), datasets, seeds,
                     tuple(args.shots) if args.shots else None, args.cfg, args.output, args.load_epoch,
                     args.config_dir)


def phase_jobs(jobs, phase, require_training=True):
    """The jobs restricted to a phase: train keeps each chain's first run, test the rest, whose training must be
    finished when `require_training` (a launch; a status only reports)."""
    if phase == "all":
        return jobs
    selected = []
    for job in jobs:
        training, evaluations = job.runs[0], job.runs[1:]
        if phase == "train":
            selected.append(Job(job.protocol, job.trainer, job.config, job.seed, (training,)))
            continue
        if not evaluations:
            continue
        if require_training and evaluations[0].model_dir and not record_is_valid(training.output_dir):
            raise UserError(f"the training run {training.output_dir} is not finished (no metrics.json): run its "
                            "training first (--phase train, or the protocol's *_train.sh script).")
        selected.append(Job(job.protocol, job.trainer, job.config, job.seed, evaluations))
    return selected


def relaunch_command(argv):
    return "python -m harness.sweep " + " ".join(shlex.quote(argument) for argument in argv)


class Progress:
    """Prints one line per event. Verbose (the protocol scripts): CoOp-style skip/rerun lines and train.py's output;
    otherwise a compact line per finished or failed run with the running totals."""

    def __init__(self, total, verbose):
        self.total = total
        self.verbose = verbose
        self.done = self.failed = self.running = 0

    def __call__(self, event, run, detail):
        if event == "skipped":
            self.done += 1
            if self.verbose:
                print(f"Finished, skipping: {run.output_dir}", flush=True)
            return
        if event == "resumed":
            if self.verbose:
                print(f"Unfinished (no metrics.json), running again: {run.output_dir}", flush=True)
            return
        if event == "started":
            self.running += 1
            if not self.verbose:
                print(f"[{self.totals()}] start    {run.output_dir}", flush=True)
            return
        self.running -= 1
        if event == "finished":
            self.done += 1
            if not self.verbose:
                print(f"[{self.totals()}] finished {run.output_dir} ({detail})", flush=True)
        else:
            self.failed += 1
            print(f"[{self.totals()}] FAILED   {run.output_dir}: {detail}", file=sys.stderr, flush=True)

    def totals(self):
        return f"{self.done}/{self.total} finished, {self.running} running, {self.failed} failed"


def launch(args, argv):
    selection = selection_from(args)
    jobs = phase_jobs(expand(selection), args.phase)
    runs = [run for job in jobs for run in job.runs]
    python = os.environ.get("PYTHON") or sys.executable
    if args.dry_run:
        from harness.sweep.chain import run_command

        for run in runs:
            print(" ".join(shlex.quote(part) for part in run_command(run, args.root, python)))
        return 0
    if args.launcher == "slurm":
        return launch_slurm(args, jobs, runs, python)
    from harness.sweep.local import run_jobs, worker_environments

    if args.launcher == "serial" and (args.gpus or args.workers):
        raise ConfigError("--gpus and --workers are for --launcher local.")
    if args.gpus and args.workers:
        raise ConfigError("Give --gpus (one job per GPU) or --workers (CPU), not both.")
    gpus = [gpu.strip() for gpu in args.gpus.split(",") if gpu.strip()] if args.gpus else None
    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers must be at least 1.")
    workers = args.workers or 1
    progress = Progress(len(runs), args.verbose)
    started = time.time()
    outcomes = run_jobs(jobs, args.root, worker_environments(gpus, workers), python=python, verbose=args.verbose,
                        on_event=progress, isolate=args.isolate)
    failed = [outcome for outcome in outcomes if outcome.state == "failed"]
    if not args.verbose or failed:
        print(f"{progress.totals()} in {time.time() - started:.1f} s", flush=True)
    if failed:
        print(f"{len(failed)} run(s) failed; see `python -m harness.sweep status ...`, fix, then run the same "
              f"command again:\n  {relaunch_command(argv)}", file=sys.stderr)
        return 1
    if not args.verbose:
        print(f"Leaderboard: python -m harness.results.leaderboard {shlex.quote(selection.output)}")
    return 0


def launch_slurm(args, jobs, runs, python):
    from harness.sweep import slurm

    resources = slurm.read_resources(args.resources) if args.resources else {}
    flags = {"partition": args.partition, "gpus": args.gpus_per_job, "cpus": args.cpus_per_job, "mem": args.mem,
             "time": args.time, "account": args.account, "qos": args.qos, "constraint": args.constraint}
    resources.update({key: value for key, value in flags.items() if value is not None})
    for option in args.sbatch:
        key, separator, value = option.partition("=")
        if not separator or not key:
            raise ConfigError(f"--sbatch {option!r}: use KEY=VALUE, e.g. --sbatch exclusive=true.")
        resources.setdefault("sbatch", {})[key] = value
    if args.time:
        slurm.parse_time_minutes(args.time)
    if args.gpus or args.workers:
        raise ConfigError("--gpus and --workers are for --launcher local; use --gpus-per-job for Slurm.")
    if args.parallelism < 1:
        raise ConfigError("--parallelism must be at least 1.")
    if args.jobs_per_task < 1:
        raise ConfigError("--jobs-per-task must be at least 1.")
    slurm.check_slurm_tools()
    unfinished = [job for job in jobs if not all(record_is_valid(run.output_dir) for run in job.runs)]
    if not unfinished:
        print(f"All {len(runs)} runs are finished; nothing to submit.")
        return 0
    array_id = slurm.submit(unfinished, args.output, args.root, resources, args.parallelism, python=python,
                            jobs_per_task=args.jobs_per_task, isolate=args.isolate)
    tasks = len(slurm.task_groups(unfinished, args.jobs_per_task))
    print(f"Submitted job array {array_id}: {len(unfinished)} jobs in {tasks} tasks ({len(runs)} runs in the "
          f"selection, {sum(record_is_valid(run.output_dir) for run in runs)} already finished).")
    print("Progress: python -m harness.sweep status " + " ".join(
        shlex.quote(part) for part in status_argv(args)))
    return 0


def status_argv(args):
    argv = ["--protocol", args.protocol, "--trainers", *args.trainers, "--seeds", *map(str, args.seeds),
            "--output", args.output]
    if args.datasets:
        argv += ["--datasets", *args.datasets]
    if args.shots:
        argv += ["--shots", *map(str, args.shots)]
    if args.cfg:
        argv += ["--cfg", args.cfg]
    if args.config_dir:
        argv += ["--config-dir", args.config_dir]
    if args.phase != "all":
        argv += ["--phase", args.phase]
    return argv


def status(args):
    selection = selection_from(args)
    jobs = phase_jobs(expand(selection), args.phase, require_training=False)
    states = sweep_status.selection_states(jobs, selection.output)
    for state in states:
        if args.all or state.state != sweep_status.FINISHED:
            line = f"{state.state:<12} {state.run.output_dir}"
            if state.detail:
                line += f"  [{state.detail}]"
            print(line)
            if state.state == sweep_status.FAILED and state.log:
                print(f"{'':<12} log: {state.log}")
    print(sweep_status.format_counts(states))
    counts = sweep_status.counts(states)
    left = len(states) - counts[sweep_status.FINISHED]
    if left:
        launcher = "--launcher slurm" if any("Slurm" in state.detail for state in states) else "--launcher local"
        print("Relaunch what is left: python -m harness.sweep launch " + " ".join(
            shlex.quote(part) for part in status_argv(args)) + f" {launcher}")
    return 1 if counts[sweep_status.FAILED] else 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        return launch(args, argv) if args.command == "launch" else status(args)
    except UserError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2 if isinstance(error, ConfigError) else 1


if __name__ == "__main__":
    sys.exit(main())
