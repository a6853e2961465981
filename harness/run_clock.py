"""The clock of one run: when it started and how its start-up was spent.

A `python train.py` run starts with its process; a run in a warm worker (harness/sweep/worker.py) starts when
the worker takes its request. Start-up is the time until the first training step (the first test batch for an
evaluation), plus the class-name encoding that step does once; its phases are `import` (Python modules), `backbone`
(loading the frozen CLIP), `dataset` (reading splits, drawing the few shots, building loaders) and `text` (encoding
the class prompts through the frozen text blocks). The record keeps them (`startup_s`, `startup_phases_s`).
"""
import os
import time
from contextlib import contextmanager

PHASES = ("import", "backbone", "dataset", "text")
_IMPORTED = time.time()  # the start of wall time where /proc cannot tell when the process started


def process_start_time():
    """When this process started (epoch seconds, from Linux's /proc), else when this module was imported."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            # Field 22 (starttime, clock ticks after boot); fields are counted after the ")" closing the name.
            ticks_after_boot = int(stat.read().rsplit(")", 1)[1].split()[19])
            seconds_since_boot = float(uptime.read().split()[0])
    except (OSError, ValueError, IndexError):
        return _IMPORTED
    return time.time() - seconds_since_boot + ticks_after_boot / os.sysconf("SC_CLK_TCK")


class RunClock:
    def __init__(self, started):
        self.started = started
        self.phases = dict.fromkeys(PHASES, 0.0)
        self.first_step_at = None  # when the first training step (or test batch) began
        self._after_first_step = 0.0  # start-up phases paid inside that step

    def mark(self, phase):
        """Count the time since the run started as `phase` (the imports before a run's first line of work)."""
        self.phases[phase] += time.time() - self.started

    @contextmanager
    def phase(self, name):
        began = time.time()
        try:
            yield
        finally:
            spent = time.time() - began
            self.phases[name] += spent
            if self.first_step_at is not None:
                self._after_first_step += spent

    def reached_first_step(self):
        if self.first_step_at is None:
            self.first_step_at = time.time()

    @property
    def wall_time_s(self):
        return time.time() - self.started

    @property
    def startup_s(self):
        if self.first_step_at is None:
            return None
        return self.first_step_at - self.started + self._after_first_step

    def summary(self):
        """One log line, e.g. `Start-up: 1.92 s (import 1.41, backbone 0.22, dataset 0.05, text 0.03, other 0.21)`."""
        if self.startup_s is None:
            return "Start-up: the run reached no training step or test batch"
        parts = [f"{name} {seconds:.2f}" for name, seconds in self.phases.items()]
        other = self.startup_s - sum(self.phases.values())
        return f"Start-up: {self.startup_s:.2f} s ({', '.join(parts)}, other {max(other, 0.0):.2f})"


_current = RunClock(process_start_time())


def current():
    """The clock of the run this process is running."""
    return _current


def start_run(started=None):
    """Begin the clock of a new run in this process (a warm worker's next request)."""
    global _current
    _current = RunClock(time.time() if started is None else started)
    return _current
