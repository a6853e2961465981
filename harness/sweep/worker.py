"""Warm workers: one Python process that runs train.py's runs one after another, keeping what is frozen.

A launcher slot (a local worker, the serial launcher, a Slurm array task) starts `python -m harness.sweep.worker`
once and sends it its runs; the process keeps torch imported and, through harness/process_cache.py, the frozen
backbones and text prefixes of earlier runs. Each run is what `python train.py ARGS` does in a process of its own:
seeded the same, writing the same files, its output (stdout and stderr) sent back whole and its exit status after
it. A run that raises fails alone (its traceback is its output, exit status 1); a run that kills the process
(SIGKILL, the OOM killer) ends the worker, and the next run starts a new one.

The protocol, over the worker's stdin and stdout: one JSON line per request, {"argv": [...], "token": "..."};
the run's output, then `\\0harness-warm-worker <token> exit <status>\\n`.
"""
import contextlib
import ctypes
import gc
import io
import json
import os
import secrets
import subprocess
import sys
import traceback
import warnings

SENTINEL = "harness-warm-worker"


def _marker(token):
    return f"\0{SENTINEL} {token} exit ".encode()


def copy_output(stream, output, verbose, marker=None):
    """Copy `stream`'s lines into the file `output` (and this process's stdout when `verbose`) until EOF, or until
    `marker`: then returns the exit status written after it. Returns None at EOF."""
    for line in iter(stream.readline, b""):
        text, found, status = line.partition(marker) if marker else (line, b"", b"")
        if text:
            output.write(text.decode(errors="replace"))
            output.flush()
            if verbose:
                sys.stdout.buffer.write(text)
                sys.stdout.flush()
        if found:
            return int(status)
    return None


class WarmWorker:
    """The launcher's side: a worker process started on the first run and kept for the next ones."""

    def __init__(self, python, environment, cwd):
        self.python = python
        self.environment = environment
        self.cwd = cwd
        self.process = None

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def start(self):
        self.process = subprocess.Popen([self.python, "-m", "harness.sweep.worker"], cwd=self.cwd,
                                        env=self.environment, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)

    def run(self, argv, output, verbose=False):
        """Run train.py with `argv` in the worker, its output into the file `output`; returns its exit status
        (negative: the signal that killed the worker, which is then replaced on the next run)."""
        if self.process is None or self.process.poll() is not None:
            self.start()
        token = secrets.token_hex(8)
        try:
            self.process.stdin.write((json.dumps({"argv": list(argv), "token": token}) + "\n").encode())
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # it died: its output and exit status tell why
        status = copy_output(self.process.stdout, output, verbose, _marker(token))
        if status is None:
            status = self.process.wait()
            self.process = None
        return status

    def close(self):
        """Let the worker finish (its stdin ends) and wait for it."""
        if self.process is None:
            return
        self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def _exit_status(train, argv):
    try:
        return train.run(argv)
    except SystemExit as exit:  # argparse's usage errors, a sys.exit in a run
        if exit.code is None or isinstance(exit.code, int):
            return exit.code or 0
        print(exit.code, file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        return 1


def _free_memory():
    import torch

    gc.collect()
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap pages back, so that RSS tracks what is live


def run_in_process(train, argv, started):
    """One train.py run in this process, as if it had its own: its clock, peak memory, stdout (the engine's log
    tee is closed after it) and warning filters are its own; what it allocated is freed after it."""
    import torch

    from harness import run_clock
    from harness.results.record import reset_peak_memory

    run_clock.start_run(started)
    reset_peak_memory("cuda" if torch.cuda.is_initialized() else "cpu")
    stdout, stderr = sys.stdout, sys.stderr
    try:
        with warnings.catch_warnings():  # entering resets which warnings were shown: each run shows its own
            return _exit_status(train, argv)
    finally:
        log_tee = sys.stdout
        sys.stdout, sys.stderr = stdout, stderr
        if log_tee is not stdout:
            if getattr(log_tee, "file", None) is not None:
                log_tee.file.close()  # Dassl's Logger (either engine's) holds log.txt open
            if hasattr(log_tee, "console"):
                log_tee.console = io.StringIO()  # real Dassl's Logger closes its console when collected
        _free_memory()


def serve(requests):
    """Answer the run requests read from the file `requests` until it ends."""
    from harness import process_cache
    from harness.protocols import REPO_ROOT
    from harness.run_clock import process_start_time

    sys.path.insert(0, REPO_ROOT)
    import train  # with torch and the engine: the first run's start-up, counted from this process's start

    process_cache.enable()
    started = process_start_time()
    for line in requests:
        request = json.loads(line)
        status = run_in_process(train, request["argv"], started)
        sys.stdout.flush()
        sys.stderr.flush()
        os.write(1, _marker(request["token"]) + f"{status}\n".encode())
        started = None  # the next run's clock starts when its request has been read


def main():
    # Requests come on a private copy of stdin; the runs get /dev/null there, as a `python train.py` of the
    # launcher would.
    requests = os.fdopen(os.dup(0), "r")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    serve(requests)


if __name__ == "__main__":
    main()
