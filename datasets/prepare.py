"""Download and arrange a dataset the way CoOp's DATASETS.md describes: `python -m datasets.prepare <name> --root DATA`.

Steps already done are skipped, interrupted downloads resume, known checksums are verified, and what has
no public download is explained. `--mirror URL` (or $HARNESS_DATA_MIRROR) fetches every file, Google Drive
ones included, as URL/<file name>; `--url FILE=URL` replaces one file's source.
"""
import argparse
import os
import shutil
import sys
import tempfile

from harness.data.catalog import coop_datasets, find_dataset
from harness.data.downloads import (
    download_google_drive,
    download_url,
    extract_archive,
    locate,
    move_into_place,
    verify_download,
)
from harness.data.errors import DatasetError
from harness.data.split_entries import missing_images

MIRROR_VARIABLE = "HARNESS_DATA_MIRROR"


def source_of(step, mirror, url_overrides):
    """('url', address) or ('gdrive', id) or None where there is no public download."""
    if step.filename in url_overrides:
        return "url", url_overrides[step.filename]
    if mirror:
        return "url", f"{mirror.rstrip('/')}/{step.filename}"
    if step.url:
        return "url", step.url
    if step.gdrive_id:
        return "gdrive", step.gdrive_id
    return None


def is_done(step, dataset_dir):
    return all(os.path.exists(os.path.join(dataset_dir, product)) for product in step.products)


def fetch(step, source, destination):
    kind, address = source
    if os.path.exists(destination):
        print(f"Using the downloaded {destination}")
    elif kind == "gdrive":
        download_google_drive(address, destination)
    else:
        print(f"Downloading {address}")
        download_url(address, destination)
    verify_download(destination, md5=step.md5, sha256=step.sha256, is_archive=bool(step.extract))


def unpack(step, archive, dataset_dir, root):
    """Extract into a staging folder beside the data, then move the listed paths into the dataset folder."""
    staging = tempfile.mkdtemp(prefix=f".staging-{step.filename}-", dir=root)
    try:
        extract_archive(archive, staging)
        for nested in step.nested:
            inner = locate(staging, nested)
            if inner is None:
                raise DatasetError(f"{archive} holds no {nested}; is it the right file?")
            extract_archive(inner, staging)
        for inside, target in step.extract.items():
            destination = os.path.join(dataset_dir, target)
            if os.path.exists(destination):
                continue
            found = locate(staging, inside)
            if found is None:
                raise DatasetError(f"{archive} holds no {inside}; is it the right file?")
            move_into_place(found, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def run_step(step, dataset_dir, root, source, keep_archives):
    if step.copy_from and os.path.isfile(os.path.join(root, step.copy_from)):
        shutil.copyfile(os.path.join(root, step.copy_from), os.path.join(dataset_dir, step.filename))
        print(f"Copied {step.copy_from} to {dataset_dir}")
        return
    if not step.extract:
        fetch(step, source, os.path.join(dataset_dir, step.filename))
        return
    archive_dir = os.path.join(root, "downloads")
    os.makedirs(archive_dir, exist_ok=True)
    archive = os.path.join(archive_dir, step.filename)
    fetch(step, source, archive)
    unpack(step, archive, dataset_dir, root)
    if not keep_archives:
        os.remove(archive)


def prepare(cls, root, mirror="", url_overrides=None, keep_archives=False):
    """Run the dataset's steps; returns True when it is ready to load."""
    url_overrides = url_overrides or {}
    dataset_dir = os.path.join(root, cls.dataset_dir)
    os.makedirs(dataset_dir, exist_ok=True)
    if cls.generated_on_first_use:
        cls.ensure_split_file(dataset_dir)
    manual = []
    for step in cls.downloads:
        if is_done(step, dataset_dir):
            print(f"Already present: {', '.join(step.products)}")
            continue
        source = source_of(step, mirror, url_overrides)
        if source is None and not (step.copy_from and os.path.isfile(os.path.join(root, step.copy_from))):
            manual.append(step.filename)
            continue
        run_step(step, dataset_dir, root, source, keep_archives)
    if manual:
        print(f"{cls.__name__}: no public download for {', '.join(manual)}")
    ready = report_layout(cls, dataset_dir)
    if cls.manual_steps and (manual or not ready):
        print(f"What to do by hand:\n{cls.manual_steps.format(dataset_dir=dataset_dir, root=root)}")
    return ready


def report_layout(cls, dataset_dir):
    try:
        entries = cls.read_entries(dataset_dir)
    except DatasetError as error:
        print(f"{cls.__name__} is not ready: {error}")
        return False
    everything = [entry for items in entries.values() for entry in items]
    missing = missing_images(everything)
    if not everything or missing:
        example = f", e.g. {missing[0].impath} from {missing[0].origin}" if missing else ""
        print(f"{cls.__name__} is not ready: {len(missing)} of {len(everything)} listed images are missing{example}")
        return False
    sizes = ", ".join(f"{split} {len(items):,}" for split, items in entries.items())
    print(f"{cls.__name__} is ready in {dataset_dir} ({sizes}); verify every image with: "
          f"{cls.check_command(os.path.dirname(dataset_dir))}")
    return True


def parse_url_override(text):
    name, separator, url = text.partition("=")
    if not separator or not name or not url:
        raise argparse.ArgumentTypeError(f"expected FILE=URL, got {text!r}")
    return name, url


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m datasets.prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help=f"dataset: {', '.join(coop_datasets())}")
    parser.add_argument("--root", required=True, help="the data root (DATASET.ROOT, train.py's --root)")
    parser.add_argument("--mirror", default=os.environ.get(MIRROR_VARIABLE, ""),
                        help=f"fetch every file as MIRROR/<file name> (default: ${MIRROR_VARIABLE})")
    parser.add_argument("--url", action="append", type=parse_url_override, default=[], metavar="FILE=URL",
                        help="fetch one file from URL (http(s):// or file://); repeatable")
    parser.add_argument("--keep-archives", action="store_true", help="keep downloaded archives in ROOT/downloads")
    parser.add_argument("--sort-val", metavar="CSV",
                        help="ImageNet: sort a flat images/val into wnid folders using Kaggle's LOC_val_solution.csv")
    args = parser.parse_args(argv)
    root = os.path.abspath(os.path.expanduser(args.root))
    try:
        cls = find_dataset(args.name)
        if args.sort_val:
            if not hasattr(cls, "sort_val_folder"):
                raise DatasetError(f"--sort-val applies to imagenet only, not {args.name}")
            cls.sort_val_folder(os.path.join(root, cls.dataset_dir), args.sort_val)
        ready = prepare(cls, root, args.mirror, dict(args.url), args.keep_archives)
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0 if ready else 1


if __name__ == "__main__":
    sys.exit(main())
