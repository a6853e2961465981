"""The leaderboard of an output folder: base-to-novel (per dataset and the 11-dataset average), cross-dataset,
domain generalization and few-shot tables, our runs beside the published rows, as Markdown, CSV, LaTeX and a PNG.

    python -m harness.results.leaderboard output                  # writes output/leaderboard/, prints Markdown
    python -m harness.results.leaderboard output --out results --ci95 --seeds 1 2 3 4 5

Each run's accuracy comes from its metrics.json, else from its newest log (runs made by other CoOp-family
code), else the run is unfinished. Missing, unfinished or config-mismatched seeds are flagged, never averaged
silently. Only the folder layouts of harness/results/layout.py are read.
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
    parser.add_argument("output_dir", help="the folder holding the protocol layouts (e.g. output)")
    parser.add_argument("--out", help="where to write the tables and the plot (default: <output_dir>/leaderboard)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="the seeds every cell should have")
    parser.add_argument("--ci95", action="store_true", help="spread as 1.96 * std / sqrt(n) instead of the std")
    parser.add_argument("--no-published", action="store_true", help="leave out the published rows")
    return parser


def summary(runs, unrecognised):
    finished = [run for run in runs if run.finished]
    from_logs = sum(run.read_from == "log" for run in finished)
    lines = [f"{len(runs)} runs: {len(finished)} finished ({len(finished) - from_logs} from metrics.json, "
             f"{from_logs} from logs), {len(runs) - len(finished)} unfinished."]
    if unrecognised:
        lines.append(f"Ignored {len(unrecognised)} run folders outside the protocol layouts, e.g. {unrecognised[0]}")
    return lines


def main(args):
    if not os.path.isdir(args.output_dir):
        sys.exit(f"{args.output_dir}: no such folder")
    runs, unrecognised = collect_runs(args.output_dir)
    if not runs:
        sys.exit(f"No run folders in the protocol layouts under {args.output_dir} (see harness/results/layout.py).")
    published = None if args.no_published else load_published()
    tables = Leaderboard(runs, published, args.seeds, args.ci95).tables()
    out_dir = args.out or os.path.join(args.output_dir, "leaderboard")
    paths = write_outputs(tables, out_dir)
    print("\n".join(summary(runs, unrecognised)))
    print()
    print(markdown(tables))
    print(f"Written: {', '.join(paths)}")


if __name__ == "__main__":
    main(build_parser().parse_args())
