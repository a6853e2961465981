"""Mean and std of a metric over the seed folders of one experiment: CoOp's parse_test_res.py, same arguments and
printed summary.

    python parse_test_res.py output/base2new/train_base/eurosat/shots_16/MMA/vit_b16_ep5
    python parse_test_res.py output/base2new/test_new/eurosat/shots_16/MMA/vit_b16_ep5 --test-log
    python parse_test_res.py output/base2new/train_base/eurosat/shots_16 --multi-exp   # one line per trainer

Unlike CoOp's: both end-of-training lines count (`Finish training`, `Finished training`), the newest log holding
a result is read (re-runs write `log.txt-<timestamp>`), and a seed folder without a result is reported instead of
stopping the parse; so is a seed whose metrics.json is invalid or belongs to another folder (it is not
averaged). std is np.std (ddof 0); --ci95 gives 1.96 * std / sqrt(n).
"""
import argparse
import os
import sys

import numpy as np

from harness.results.logs import END_OF_TEST, END_OF_TRAINING, newest_result
from harness.results.record import RECORD_NAME, record_problem


def compute_ci95(values):
    return 1.96 * np.std(values) / np.sqrt(len(values))


def visible_subdirs(directory):
    return sorted(name for name in os.listdir(directory)
                  if not name.startswith(".") and os.path.isdir(os.path.join(directory, name)))


def parse_function(keyword, directory, args, end_signals):
    print(f"Parsing files in {directory}")
    values = []
    for subdir in visible_subdirs(directory):
        run_dir = os.path.join(directory, subdir)
        problem = record_problem(run_dir) if os.path.exists(os.path.join(run_dir, RECORD_NAME)) else None
        if problem is not None:
            print(f"{run_dir}: not counted: {problem}")
            continue
        found = newest_result(run_dir, keyword, end_signals)
        if found is None:
            print(f"{os.path.join(directory, subdir)}: no result (unfinished run?)")
            continue
        path, value = found
        values.append(value)
        print(f"file: {path}. {keyword}: {value:.2f}%. ")
    if not values:
        signals = " or ".join(repr(signal) for signal in end_signals)
        hint = "" if args.test_log else " (evaluation-only runs need --test-log)"
        sys.exit(f"Nothing found in {directory}: no log with '* {keyword}: X%' after {signals}{hint}")

    print("===")
    print(f"Summary of directory: {directory}")
    mean = np.mean(values)
    spread = compute_ci95(values) if args.ci95 else np.std(values)
    print(f"* {keyword}: {mean:.2f}% +- {spread:.2f}%")
    print("===")
    return mean


def main(args):
    end_signals = END_OF_TEST if args.test_log else END_OF_TRAINING
    if not args.multi_exp:
        parse_function(args.keyword, args.directory, args, end_signals)
        return
    means = [parse_function(args.keyword, os.path.join(args.directory, experiment), args, end_signals)
             for experiment in visible_subdirs(args.directory)]
    print("Average performance")
    print(f"* {args.keyword}: {np.mean(means):.2f}%")


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=str, help="path to directory")
    parser.add_argument("--ci95", action="store_true", help=r"compute 95%% confidence interval")
    parser.add_argument("--test-log", action="store_true", help="parse test-only logs")
    parser.add_argument("--multi-exp", action="store_true", help="parse multiple experiments")
    parser.add_argument("--keyword", default="accuracy", type=str, help="which keyword to extract")
    return parser


if __name__ == "__main__":
    arguments = build_parser().parse_args()
    if not os.path.isdir(arguments.directory):
        sys.exit(f"{arguments.directory}: no such directory")
    main(arguments)
