"""Every run folder under an output folder, with its accuracy: from its result record, else from its logs (runs
made by other CoOp-family code), else unfinished. A folder whose record is invalid or belongs to another run
counts as unfinished (its logs are not read instead: they may be the other run's too)."""
import os
import re
from dataclasses import dataclass, field

from harness.results.layout import RunLayout, parse_run_dir
from harness.results.logs import log_files, newest_result
from harness.results.record import RECORD_NAME, read_record

_SEED_DIR = re.compile(r"seed\d+")


@dataclass(frozen=True)
class RunResult:
    layout: RunLayout
    run_dir: str
    accuracy: float = None  # None: the run has not finished
    read_from: str = None  # "record" or "log"
    config_hash: str = None  # records only
    record: dict = field(default=None, compare=False, repr=False)  # the metrics.json it was read from

    @property
    def finished(self):
        return self.accuracy is not None


def read_run(run_dir, layout):
    record = read_record(run_dir)
    if record is not None:
        return RunResult(layout, run_dir, record["accuracy"], "record", record.get("config_hash"), record)
    if os.path.exists(os.path.join(run_dir, RECORD_NAME)):
        return RunResult(layout, run_dir)
    found = newest_result(run_dir)
    if found is not None:
        return RunResult(layout, run_dir, found[1], "log")
    return RunResult(layout, run_dir)


def collect_runs(output_dir):
    """(runs, unrecognised): the seed folders in protocol layouts, and the run folders outside them."""
    runs, unrecognised = [], []
    for directory, subdirs, files in os.walk(output_dir):
        if not _SEED_DIR.fullmatch(os.path.basename(directory)):
            subdirs.sort()
            continue
        subdirs[:] = []
        layout = parse_run_dir(directory)
        if layout is not None:
            runs.append(read_run(directory, layout))
        elif RECORD_NAME in files or log_files(directory):
            unrecognised.append(directory)
    return runs, unrecognised
