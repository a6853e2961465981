"""The leaderboard of one or more output folders: base-to-novel (per dataset and the 11-dataset average),
cross-dataset, domain generalization and few-shot tables, our runs beside the published rows, as Markdown, CSV,
LaTeX and a PNG.

    python -m harness.results.leaderboard output                  # writes output/leaderboard/, prints Markdown
    python -m harness.results.leaderboard output --out results --ci95 --seeds 1 2 3 4 5
    python -m harness.results.leaderboard output ../MaPLe/output   # ours and another checkout's, in one table

Each run's accuracy comes from its metrics.json, else from its newest log (runs made by other CoOp-family
code, e.g. a MaPLe checkout's own methods), else the run is unfinished. The runs of all folders are pooled: a
seed found in two of them counts as duplicated. Missing, unfinished, duplicated or config-mismatched seeds are
flagged, never averaged silently. Only the folder layouts of harness/results/layout.py are read.
"""
import argparse
import os
import sys

from harness.results.collect import collect_runs
from harness.results.published import load_published
from harness.results.render import markdown, write_outputs
from harness.results.tables import Leaderboard


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dirs", nargs="+", metavar="output_dir",
                        help="folders holding the protocol layouts (e.g. output, and another checkout's output)")
    parser.add_argument("--out", help="where to write the tables and the plot (default: <first folder>/leaderboard)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="the seeds every cell should have")
    parser.add_argument("--ci95", action="store_true", help="spread as 1.96 * std / sqrt(n) instead of the std")
    parser.add_argument("--no-published", action="store_true", help="leave out the published rows")
    return parser


def summary(runs, unrecognised):
    finished = [run for run in runs if run.finished]
    from_logs = sum(run.read_from == "log" for run in finished)
    lines = [(f"{len(runs)} runs: {len(finished)} finished ({len(finished) - from_logs} from metrics.json, "
              f"{from_logs} from logs), {len(runs) - len(finished)} unfinished.")]
    if unrecognised:
        lines.append(f"Ignored {len(unrecognised)} run folders outside the protocol layouts, e.g. {unrecognised[0]}")
    return lines


def collect_all(output_dirs):
    """(runs, unrecognised, runs per folder) pooled over the folders; exits with one line on a folder that is
    missing or holds no run in the protocol layouts."""
    runs, unrecognised, counts = [], [], {}
    for output_dir in output_dirs:
        if not os.path.isdir(output_dir):
            sys.exit(f"{output_dir}: no such folder")
        found, ignored = collect_runs(output_dir)
        if not found:
            sys.exit(f"No run folders in the protocol layouts under {output_dir} (see harness/results/layout.py).")
        runs += found
        unrecognised += ignored
        counts[output_dir] = len(found)
    return runs, unrecognised, counts


def main(args):
    runs, unrecognised, counts = collect_all(args.output_dirs)
    published = None if args.no_published else load_published()
    tables = Leaderboard(runs, published, args.seeds, args.ci95).tables()
    out_dir = args.out or os.path.join(args.output_dirs[0], "leaderboard")
    paths = write_outputs(tables, out_dir)
    print("\n".join(summary(runs, unrecognised)))
    if len(counts) > 1:
        print(f"Runs per folder: {', '.join(f'{folder} {count}' for folder, count in counts.items())}")
    print()
    print(markdown(tables))
    print(f"Written: {', '.join(paths)}")


if __name__ == "__main__":
    main(build_parser().parse_args())
