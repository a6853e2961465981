"""The leaderboard of one or more output folders: base-to-novel (per dataset and the 11-dataset average),
cross-dataset, domain generalization and few-shot tables, our runs beside the published rows, as Markdown, CSV,
LaTeX and a PNG.

    python -m harness.results.leaderboard output                  # writes output/leaderboard/, prints Markdown
    python -m harness.results.leaderboard output --out results --ci95 --seeds 1 2 3 4 5
    python -m harness.results.leaderboard output ../MaPLe/output   # ours and another checkout's, in one table
    python -m harness.results.leaderboard output --compare RMAdapter MMA --seeds 1-10   # paired A − B, with CIs
    python -m harness.results.leaderboard output --compare-published   # our rows beside the published ones

Each run's accuracy comes from its metrics.json, else from its newest log (runs made by other CoOp-family
code, e.g. a MaPLe checkout's own methods), else the run is unfinished. The runs of all folders are pooled: a
seed found in two of them counts as duplicated. Missing, unfinished, duplicated or config-mismatched seeds are
flagged, never averaged silently. Only the folder layouts of harness/results/layout.py are read.
--compare adds paired comparisons of base-to-novel methods (harness/results/compare.py says how they are tested).
"""
import argparse
import os
import sys

from harness.errors import UserError
from harness.protocols import parse_seeds
from harness.results.collect import collect_runs
from harness.results.compare import DEFAULT_REPLICATES, comparison_tables
from harness.results.published import load_published
from harness.results.render import markdown, write_outputs
from harness.results.tables import Leaderboard

# Below this many replicates the 2.5th and 97.5th percentiles rest on a handful of draws.
MIN_REPLICATES = 100


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dirs", nargs="+", metavar="output_dir",
                        help="folders holding the protocol layouts (e.g. output, and another checkout's output)")
    parser.add_argument("--out", help="where to write the tables and the plot (default: <first folder>/leaderboard)")
    parser.add_argument("--seeds", nargs="+", default=["1", "2", "3"], metavar="SEEDS",
                        help="the seeds every cell should have, and those --compare uses: numbers and ranges "
                             "(1 2 3, 1-10, 1-3 7)")
    parser.add_argument("--ci95", action="store_true", help="spread as 1.96 * std / sqrt(n) instead of the std")
    parser.add_argument("--no-published", action="store_true", help="leave out the published rows")
    parser.add_argument("--compare", nargs="+", metavar="METHOD",
                        help="paired base-to-novel comparison of the first method with each of the others; a method "
                             "is TRAINER or TRAINER:CONFIG (e.g. MMA:vit_b16_ep5)")
    parser.add_argument("--compare-published", action="store_true",
                        help="our base-to-novel rows beside the published ones: the difference, and whether the "
                             "published value lies within our mean ± spread")
    parser.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the comparisons' bootstrap")
    parser.add_argument("--bootstrap-replicates", type=int, default=DEFAULT_REPLICATES,
                        help=f"replicates of the comparisons' bootstrap (at least {MIN_REPLICATES})")
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


def checked_seeds(args):
    """The seeds of --seeds; exits with one line on a value that is no seed or range, or on options that clash."""
    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as error:
        sys.exit(f"--seeds: {error}")
    if args.compare_published and args.no_published:
        sys.exit("--compare-published needs the published rows: leave out --no-published")
    if args.bootstrap_replicates < MIN_REPLICATES:
        sys.exit(f"--bootstrap-replicates {args.bootstrap_replicates}: use at least {MIN_REPLICATES}")
    return seeds


def build_tables(args, runs, seeds):
    published = None if args.no_published else load_published()
    board = Leaderboard(runs, published, seeds, args.ci95)
    tables = board.tables()
    if args.compare_published:
        tables.append(board.reproduction_table())
    if args.compare:
        tables += comparison_tables(board, args.compare, seeds, args.bootstrap_seed, args.bootstrap_replicates)
    return tables


def main(args):
    seeds = checked_seeds(args)
    runs, unrecognised, counts = collect_all(args.output_dirs)
    try:
        tables = build_tables(args, runs, seeds)
    except UserError as error:
        sys.exit(str(error))
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
