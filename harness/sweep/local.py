"""The launchers that run jobs on this machine: `serial` (one job after another) and `local` (a queue of jobs over
workers: one job per GPU at a time with CUDA_VISIBLE_DEVICES set per worker, or N CPU workers). Each worker runs
its jobs in one warm process (harness/sweep/worker.py) unless `--isolate`. One failed job never stops the others."""
import os
import queue
import threading

from harness.sweep.chain import ChainRunner


def cpu_threads_per_worker(workers):
    """Intra-op threads for each of `workers` CPU jobs sharing this machine's cores."""
    return max(1, (os.cpu_count() or 1) // workers)


def worker_environments(gpus=None, workers=1):
    """One environment overlay per worker slot."""
    if gpus:
        return [{"CUDA_VISIBLE_DEVICES": str(gpu)} for gpu in gpus]
    overlay = {}
    if "OMP_NUM_THREADS" not in os.environ:
        overlay["OMP_NUM_THREADS"] = str(cpu_threads_per_worker(workers))
    return [dict(overlay) for _ in range(workers)]


def run_jobs(jobs, data_root, slots, python=None, verbose=False, on_event=None, isolate=False):
    """Run `jobs` over the worker `slots` (environment overlays), each slot's runs in one warm worker (a process
    per run with `isolate`); returns every run's outcome."""
    pending = queue.Queue()
    for job in jobs:
        pending.put(job)
    outcomes, lock = [], threading.Lock()
    report = on_event or (lambda event, run, detail: None)

    def locked_report(event, run, detail):
        with lock:
            report(event, run, detail)

    def work(environment):
        with ChainRunner(data_root, python=python, verbose=verbose, environment=environment, on_event=locked_report,
                         isolate=isolate) as runner:
            while True:
                try:
                    job = pending.get_nowait()
                except queue.Empty:
                    return
                job_outcomes = runner.run_job(job)
                with lock:
                    outcomes.extend(job_outcomes)

    if len(slots) == 1:
        work(slots[0])
        return outcomes
    threads = [threading.Thread(target=work, args=(slot,), daemon=True) for slot in slots]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
