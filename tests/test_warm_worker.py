"""Warm workers (harness/sweep/worker.py): the same runs as a process per run, bit for bit; faults that stay in
their run; a killed worker replaced and its run resumed; memory that does not grow from run to run."""
import os
import signal
import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.protocols import Selection, expand
from harness.results.predictions import PREDICTIONS_NAME
from harness.sweep.chain import ChainRunner
from harness.sweep.worker import WarmWorker, run_in_process
from tests.sweep_helpers import demo_run_dirs, metrics, sweep
from tests.test_sweep_local import broken_config_dir
from tests.trainer_helpers import REPO_ROOT

TRAINERS = ("ZeroshotCLIP", "MMA", "RMAdapter", "RMMA")
SEEDS = (2, 1)  # not in order: the worker's second job of a trainer has a smaller seed than its first
CHECKPOINT = os.path.join("adapter_learner", "model.pth.tar-20")


def demo_selection(output, trainers=TRAINERS, seeds=SEEDS):
    return ["--protocol", "base2new", "--datasets", "demo", "--cfg", "demo", "--trainers", *trainers, "--seeds",
            *map(str, seeds), "--output", str(output)]


@pytest.fixture(scope="module")
def one_thread():
    return {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def isolated_and_warm(demo_root, tmp_path_factory, one_thread):
    """The demo grid of the four trainers over two seeds, run once with a process per run and once by one warm
    worker (every job of every trainer and seed in a row): (isolated output, warm output)."""
    folders = []
    for extra in (["--isolate"], []):
        output = tmp_path_factory.mktemp("isolated" if extra else "warm") / "output"
        sweep("launch", *demo_selection(output), "--launcher", "serial", "--root", str(demo_root), *extra,
              env=one_thread)
        folders.append(output)
    return tuple(folders)


def saved_tensors(run_dir):
    """The adapter's checkpointed tensors, and the per-image predictions of the run's test."""
    tensors = {}
    if os.path.isfile(os.path.join(run_dir, CHECKPOINT)):
        state = torch.load(os.path.join(run_dir, CHECKPOINT), weights_only=True)["state_dict"]
        tensors.update({f"adapter.{key}": value.numpy() for key, value in state.items()})
    with np.load(os.path.join(run_dir, PREDICTIONS_NAME)) as archive:
        tensors.update({f"predictions.{key}": archive[key] for key in archive.files})
    return tensors


def test_warm_runs_equal_process_per_run_runs_bit_for_bit(isolated_and_warm):
    isolated, warm = isolated_and_warm
    trained = 0
    for isolated_dir, warm_dir in zip(demo_run_dirs(isolated, TRAINERS, SEEDS), demo_run_dirs(warm, TRAINERS, SEEDS)):
        assert metrics(warm_dir) == metrics(isolated_dir), warm_dir
        expected, found = saved_tensors(isolated_dir), saved_tensors(warm_dir)
        assert expected.keys() == found.keys()
        assert all(np.array_equal(expected[key], found[key]) for key in expected), warm_dir
        trained += any(key.startswith("adapter.") for key in expected)
    assert trained == 3 * len(SEEDS)  # every trainer but ZeroshotCLIP saved its adapter


def test_warm_runs_log_what_a_process_per_run_logs_and_record_their_own_start_up(isolated_and_warm):
    isolated, warm = isolated_and_warm
    # Times and paths differ, and what the first of the two grids left in the shared data root (caches).
    varying = ("time", "eta", "Elapsed", "Start-up", "output", "OUTPUT_DIR", "model_dir", "MODEL_DIR", "Checkpoint",
               "Result record", "Found checkpoint", "Test-image cache", "preprocessed", "few-shot", "Few-shot")
    for isolated_dir, warm_dir in zip(demo_run_dirs(isolated, TRAINERS, SEEDS), demo_run_dirs(warm, TRAINERS, SEEDS)):
        logs = []
        for run_dir in (isolated_dir, warm_dir):
            with open(os.path.join(run_dir, "log.txt")) as file:
                logs.append([line for line in file if not any(word in line for word in varying)])
        assert logs[0] == logs[1], warm_dir
    records = [metrics_record(run_dir) for run_dir in demo_run_dirs(warm, TRAINERS, SEEDS)]
    assert all(0 < record["startup_s"] <= record["wall_time_s"] for record in records)
    # Only the worker's first run imports torch and the engine.
    first, second, *_ = sorted((record["startup_phases_s"]["import"] for record in records), reverse=True)
    assert first > 0.3 and second < first / 10


def metrics_record(run_dir):
    import json

    with open(os.path.join(run_dir, "metrics.json")) as file:
        return json.load(file)


def test_a_run_that_raises_fails_alone_and_leaves_the_process_as_it_was(tmp_path, capsys):
    def crash(argv):
        sys.stdout = open(tmp_path / "log.txt", "w")  # noqa: SIM115  (a log tee the run never closes)
        sys.stdout.file = sys.stdout
        raise RuntimeError("a bug deep inside a run")

    stdout = sys.stdout
    assert run_in_process(types.SimpleNamespace(run=crash), [], None) == 1
    assert sys.stdout is stdout
    assert "RuntimeError: a bug deep inside a run" in capsys.readouterr().err
    exits = types.SimpleNamespace(run=lambda argv: sys.exit(2))
    assert run_in_process(exits, [], None) == 2


class DasslLogger:
    """What real Dassl's setup_logger puts on sys.stdout: a tee that closes its console when collected."""

    def __init__(self, path):
        self.console = sys.stdout
        self.file = open(path, "w")  # noqa: SIM115  (closed by its owner, as in Dassl)

    def write(self, text):
        self.console.write(text)
        self.file.write(text)

    def flush(self):
        self.console.flush()
        self.file.flush()

    def __del__(self):
        self.console.close()
        self.file.close()


def test_real_dassls_log_tee_leaves_the_workers_stdout_open(tmp_path):
    def logs(argv):
        sys.stdout = DasslLogger(tmp_path / "log.txt")
        print("=> result")
        return 0

    stdout = sys.stdout
    assert run_in_process(types.SimpleNamespace(run=logs), [], None) == 0
    assert sys.stdout is stdout and not stdout.closed
    assert (tmp_path / "log.txt").read_text() == "=> result\n"


def test_a_failed_run_stops_only_its_job_and_the_same_worker_runs_the_next(demo_root, tmp_path, one_thread):
    output = tmp_path / "output"
    broken = Selection("base2new", ("MMA",), ("demo",), (1,), config="demo", output=str(output),
                       config_dir=str(broken_config_dir(tmp_path)))
    healthy = Selection("base2new", ("ZeroshotCLIP",), ("demo",), (1,), config="demo", output=str(output))
    events = []
    with ChainRunner(str(demo_root), environment={"OMP_NUM_THREADS": "1"},
                     on_event=lambda event, run, detail: events.append((event, detail))) as runner:
        failed = runner.run_job(expand(broken)[0])
        pid = runner.worker.pid
        finished = runner.run_job(expand(healthy)[0])
        assert runner.worker.pid == pid
    assert [outcome.state for outcome in failed] == ["failed"]  # its evaluation, which needs it, is not run
    assert "fp8" in failed[0].error
    assert [outcome.state for outcome in finished] == ["finished", "finished"]


def test_a_killed_worker_is_replaced_and_its_run_resumes(isolated_and_warm, demo_root, tmp_path):
    isolated, _ = isolated_and_warm
    output = tmp_path / "output"
    job = expand(Selection("base2new", ("MMA",), ("demo",), (1,), config="demo", output=str(output)))[0]
    train_dir = job.runs[0].output_dir
    with ChainRunner(str(demo_root), environment={"OMP_NUM_THREADS": "1"}) as runner:
        runner.worker.start()
        killer = threading.Thread(target=kill_at_epoch, args=(runner.worker.pid, train_dir, 3))
        killer.start()
        first = runner.run_job(job)
        killer.join()
        assert [outcome.state for outcome in first] == ["failed"]
        assert "SIGKILL" in first[0].error
        again = runner.run_job(job)
    assert [outcome.state for outcome in again] == ["finished", "finished"]
    with open(os.path.join(train_dir, "log.txt")) as file:
        assert "will resume training" in file.read()
    reference = demo_run_dirs(isolated, ("MMA",), (1,))
    for run_dir, reference_dir in zip((run.output_dir for run in job.runs), reference):
        assert metrics(run_dir) == metrics(reference_dir)


def kill_at_epoch(pid, run_dir, epoch):
    import time

    log = os.path.join(run_dir, "log.txt")
    for _ in range(3000):
        if os.path.isfile(log) and f"epoch [{epoch}/" in Path(log).read_text():
            os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.05)


def resident_mib(pid):
    with open(f"/proc/{pid}/status") as file:
        return next(int(line.split()[1]) for line in file if line.startswith("VmRSS:")) / 1024


def test_memory_does_not_grow_over_twenty_warm_runs(demo_root, tmp_path):
    train_dir = tmp_path / "train"
    arguments = ["--root", str(demo_root), "--trainer", "MMA", "--dataset-config-file", "configs/datasets/demo.yaml",
                 "--config-file", "configs/trainers/MMA/demo.yaml"]
    worker = WarmWorker(sys.executable, {**os.environ, "OMP_NUM_THREADS": "1"}, REPO_ROOT)
    try:
        with open(tmp_path / "out.txt", "a") as output:
            status = worker.run([*arguments, "--seed", "1", "--output-dir", str(train_dir), "OPTIM.MAX_EPOCH", "2",
                                 "DATASET.SUBSAMPLE_CLASSES", "base"], output)
            assert status == 0, (tmp_path / "out.txt").read_text()[-2000:]
            resident = []
            for seed in range(20):
                status = worker.run([*arguments, "--seed", str(seed), "--output-dir", str(tmp_path / f"eval{seed}"),
                                     "--eval-only", "--model-dir", str(train_dir), "--load-epoch", "2",
                                     "DATASET.SUBSAMPLE_CLASSES", "new"], output)
                assert status == 0, (tmp_path / "out.txt").read_text()[-2000:]
                resident.append(resident_mib(worker.pid))
    finally:
        worker.close()
    # The first runs fill the caches (the frozen backbone, allocator pools); after them, no growth per run.
    settled = resident[5:]
    assert max(settled) - settled[0] < 15, resident


def test_cached_backbones_are_copied_and_keyed_on_the_file_as_it_is_now(tmp_path, monkeypatch):
    from harness import process_cache
    from harness.clip import backbones

    monkeypatch.setattr(process_cache, "_enabled", True)
    monkeypatch.setattr(backbones, "FROZEN_BACKBONES", process_cache.KeyedCache(capacity=2))
    cfg = types.SimpleNamespace(MODEL=types.SimpleNamespace(BACKBONE=types.SimpleNamespace(NAME="tiny", WEIGHTS="")),
                                INPUT=types.SimpleNamespace(SIZE=(32, 32)))
    first = backbones.build_frozen_clip(cfg)
    with torch.no_grad():
        first.visual.conv1.weight.add_(1.0)  # what a run may do to its copy
    second = backbones.build_frozen_clip(cfg)
    assert second is not first and not torch.equal(second.visual.conv1.weight, first.visual.conv1.weight)
    assert torch.equal(second.visual.conv1.weight, backbones.load_clip("tiny").visual.conv1.weight)

    path = tmp_path / "weights.pt"
    path.write_bytes(b"a" * 100)
    before = backbones.frozen_weights_key("ViT-B/16", str(path))
    stat = path.stat()
    replacement = tmp_path / "other.pt"
    replacement.write_bytes(b"b" * 100)
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    replacement.replace(path)  # same size and mtime, other bytes
    assert backbones.frozen_weights_key("ViT-B/16", str(path)) != before
