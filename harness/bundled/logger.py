"""Tee stdout into the run's log file, never overwriting an earlier log (Dassl's setup_logger)."""
import os
import sys
import time

from .tools import mkdir_if_missing


class Logger:
    def __init__(self, fpath=None):
        self.console = sys.stdout
        self.file = None
        if fpath is not None:
            mkdir_if_missing(os.path.dirname(fpath))
            # Line-buffered so that a killed run's log still ends at its last printed line.
            self.file = open(fpath, "w", buffering=1)  # noqa: SIM115  (open for the process's life)

    def write(self, msg):
        self.console.write(msg)
        if self.file is not None:
            self.file.write(msg)

    def flush(self):
        self.console.flush()
        if self.file is not None:
            self.file.flush()
            os.fsync(self.file.fileno())

    def isatty(self):
        # Libraries ask stdout whether it is a terminal before printing progress bars; a tee into a file is not.
        return False


def setup_logger(output=None):
    if output is None:
        return
    if output.endswith(".txt") or output.endswith(".log"):
        fpath = output
    else:
        fpath = os.path.join(output, "log.txt")
    if os.path.exists(fpath):
        fpath += time.strftime("-%Y-%m-%d-%H-%M-%S")
    sys.stdout = Logger(fpath)
