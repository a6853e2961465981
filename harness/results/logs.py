"""Reading results from Dassl logs, as CoOp's parse_test_res.py does, minus its blind spots.

A result counts only after an end signal: the end of training (`Finish training`, Dassl >= 0.6.1, or
`Finished training`, older Dassl as in MaPLe/PromptSRC logs) or, for evaluation-only runs, `=> result`. After
the signal the last match of `* <keyword>: <number>%` wins (1 or 2 decimals). Dassl's re-run writes
`log.txt-YYYY-MM-DD-HH-MM-SS` beside the first `log.txt`; the newest log holding a result is the one read.
train.py instead moves an earlier attempt's files into `attempts/`, so its own log is always `log.txt`.
"""
import os
import re
import time

END_OF_TRAINING = ("Finish training", "Finished training")
END_OF_TEST = ("=> result",)
# train.py prints its arguments into the log; an evaluation-only run has this line and no end of training.
EVAL_ONLY_ARGUMENT = "eval_only: True"
_LOG_NAME = re.compile(r"log\.txt(-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})?")
ATTEMPTS_DIR = "attempts"
# What an earlier attempt of a run leaves that a clean run would not have: moved aside when the run starts again.
EARLIER_ATTEMPT_FILES = ("log.txt", "metrics.json")


def set_aside_earlier_attempt(run_dir):
    """Move an earlier attempt's log.txt and record into <run_dir>/attempts/ (with a timestamp), so that the
    folder ends as a clean run leaves it: any CoOp-family parser reads this run's result from log.txt."""
    present = [name for name in EARLIER_ATTEMPT_FILES if os.path.exists(os.path.join(run_dir, name))]
    if not present:
        return []
    attempts = os.path.join(run_dir, ATTEMPTS_DIR)
    os.makedirs(attempts, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.localtime(os.path.getmtime(os.path.join(run_dir, present[0]))))
    moved = []
    for name in present:
        target = os.path.join(attempts, f"{name}-{stamp}")
        suffix = 1
        while os.path.exists(target):
            target, suffix = os.path.join(attempts, f"{name}-{stamp}.{suffix}"), suffix + 1
        os.replace(os.path.join(run_dir, name), target)
        moved.append(target)
    return moved


def metric_pattern(keyword):
    """CoOp's regex: the keyword verbatim, then a number and %."""
    return re.compile(rf"\* {keyword}: ([\.\deE+-]+)%")


def log_files(run_dir):
    """The run's logs, oldest first: `log.txt`, then the timestamped logs of re-runs."""
    if not os.path.isdir(run_dir):
        return []
    names = sorted(name for name in os.listdir(run_dir) if _LOG_NAME.fullmatch(name))
    return [os.path.join(run_dir, name) for name in names]


def read_lines(path):
    with open(path, errors="replace") as log:
        return [line.strip() for line in log]


def metric_after_signal(lines, keyword="accuracy", end_signals=END_OF_TRAINING):
    """The metric's last value after the first end-signal line, or None."""
    pattern = metric_pattern(keyword)
    value, signalled = None, False
    for line in lines:
        signalled = signalled or line in end_signals
        match = pattern.search(line)
        if match and signalled:
            value = float(match.group(1))
    return value


def end_signals_of(lines):
    """The end signal a log's result follows: `=> result` for evaluation-only runs, else the end of training."""
    return END_OF_TEST if EVAL_ONLY_ARGUMENT in lines else END_OF_TRAINING


def newest_result(run_dir, keyword="accuracy", end_signals=None):
    """(log path, value) from the newest log of the run that holds a result, or None.

    end_signals None reads each log by its own kind (see `end_signals_of`).
    """
    for path in reversed(log_files(run_dir)):
        lines = read_lines(path)
        value = metric_after_signal(lines, keyword, end_signals or end_signals_of(lines))
        if value is not None:
            return path, value
    return None
