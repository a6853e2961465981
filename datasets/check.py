"""Verify prepared datasets: `python -m datasets.check --root DATA [names]`.

For each dataset: every split entry's image exists and decodes completely (a truncated or damaged file is
found; `--quick` only checks that the files exist), labels are in range and name one class each, every class
appears in every split, and the class names and count are CoOp's. Every bad entry is listed (file and
entry), then one line per dataset says OK or what is wrong and the fix. Without names, every dataset whose
folder exists under DATA is checked.
"""
import argparse
import contextlib
import functools
import io
import multiprocessing
import os
import sys
from collections import Counter

from harness.data.catalog import coop_datasets, find_dataset
from harness.data.errors import DatasetError
from harness.data.image_probe import image_problem

NAME_WIDTH = 20


def presence_problem(path):
    return None if os.path.isfile(path) else "missing"


def image_problems(entries, quick=False, jobs=1):
    """[(problem, entry)] for every entry whose image is missing or (unless `quick`) does not decode."""
    from tqdm import tqdm

    everything = [entry for items in entries.values() for entry in items]
    paths = [entry.impath for entry in everything]
    probe = presence_problem if quick else functools.partial(image_problem, decode=True)
    description = "looking for images" if quick else "decoding images"
    with contextlib.ExitStack() as stack:
        if jobs > 1 and not quick:
            pool = stack.enter_context(multiprocessing.Pool(jobs))
            problems = pool.imap(probe, paths, chunksize=16)
        else:
            problems = map(probe, paths)
        problems = list(tqdm(problems, total=len(paths), desc=description, unit="image", leave=False))
    return [(problem, entry) for problem, entry in zip(problems, everything, strict=True) if problem]


def class_problems(cls, entries):
    """Label consistency, classes absent from a split, and the class names and count CoOp has."""
    problems = cls.label_problems(entries)
    names = {entry.label: entry.classname for items in entries.values() for entry in items}
    for split, items in entries.items():
        absent = sorted(set(names) - {entry.label for entry in items})
        if absent:
            problems.append(f"{split} has no images of {len(absent)} class(es), e.g. {names[absent[0]]!r}")
    if cls.class_count and len(names) != cls.class_count:
        problems.append(f"{len(names)} classes, expected {cls.class_count}")
    renamed = {raw for raw, coop_name in cls.classname_renames.items() if raw != coop_name}
    unexpected = sorted(name for name in names.values()
                        if name in renamed or (cls.known_classnames and name not in cls.known_classnames))
    if unexpected:
        problems.append(f"class names not CoOp's: {unexpected[:5]}")
    return problems


def per_class_table(entries):
    from tabulate import tabulate

    counts = {split: Counter(entry.label for entry in items) for split, items in entries.items()}
    names = {entry.label: entry.classname for items in entries.values() for entry in items}
    rows = [[label, names[label], *(counts[split][label] for split in entries)] for label in sorted(names)]
    return tabulate(rows, headers=["label", "class", *entries])


def check_dataset(cls, root, quick=False, verbose=False, jobs=1):
    """Print the bad entries and the dataset's summary line; True when it is OK."""
    label = f"{cls.__name__:<{NAME_WIDTH}}"
    dataset_dir = os.path.join(root, cls.dataset_dir)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the loaders' progress lines would break the report
            entries = cls.read_entries(dataset_dir)
    except DatasetError as error:
        print(f"{label} FAIL  {str(error).removeprefix(f'{cls.__name__}: ')}")
        return False
    bad_images = image_problems(entries, quick, jobs)
    for problem, entry in bad_images:
        print(f"  {problem}: {entry.impath}  <- {entry.origin}")
    problems = class_problems(cls, entries)
    for problem in problems:
        print(f"  {problem}")
    if verbose:
        print(per_class_table(entries))
    sizes = " / ".join(f"{split} {len(items):,}" for split, items in entries.items())
    classes = len({entry.label for items in entries.values() for entry in items})
    if not bad_images and not problems:
        print(f"{label} OK    {sizes}, {classes} classes")
        return True
    kinds = Counter(problem.split(" ")[0] for problem, _ in bad_images)
    summary = ", ".join([f"{count} {kind} image(s)" for kind, count in sorted(kinds.items())]
                        + ([f"{len(problems)} class problem(s)"] if problems else []))
    print(f"{label} FAIL  {summary} (listed above; {sizes}); fix: {fix_for(cls, root, bool(bad_images))}")
    return False


def fix_for(cls, root, bad_images):
    if bad_images or cls.generated_on_first_use:
        return cls.bad_image_fix(root)
    return f"the split file or folders do not match CoOp's; fetch them again with {cls.prepare_command(root)}"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m datasets.check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*",
                        help=f"datasets to check (default: all present): {', '.join(coop_datasets())}")
    parser.add_argument("--root", required=True, help="the data root (DATASET.ROOT, train.py's --root)")
    parser.add_argument("--quick", action="store_true",
                        help="only check that every image file exists (fast); by default every image is decoded")
    parser.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1,
                        help="processes decoding images (default: one per CPU core)")
    parser.add_argument("--verbose", "-v", action="store_true", help="print image counts per class and split")
    args = parser.parse_args(argv)
    root = os.path.abspath(os.path.expanduser(args.root))
    try:
        classes = [find_dataset(name) for name in args.names]
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not classes:
        classes = [cls for cls in coop_datasets().values() if os.path.isdir(os.path.join(root, cls.dataset_dir))]
        if not classes:
            print(f"No dataset folders under {root}; prepare one with: python -m datasets.prepare <name> --root {root}")
            return 1
    results = [check_dataset(cls, root, args.quick, args.verbose, max(1, args.jobs)) for cls in classes]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
