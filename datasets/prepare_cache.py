"""Fill the shared test-image cache ahead of a sweep: `python -m datasets.prepare_cache NAME --root DATA
--config-file configs/trainers/<TRAINER>/<CFG>.yaml [KEY VALUE ...]`.

Every val and test image of the dataset (all classes) is resized and center-cropped as the config's test
transform does and stored where train.py would look for it (DATASET.TEST_IMAGE_CACHE or
$HARNESS_TEST_IMAGE_CACHE, default <DATA>/cache/test_images). Runs fill the cache on first use anyway; this
only moves that work ahead. Images that cannot be decoded are listed at the end.
"""
import argparse
import contextlib
import io
import os
import sys

from harness.config import extend_cfg
from harness.data.catalog import coop_datasets, find_dataset
from harness.data.image_probe import image_problem
from harness.data.test_image_cache import cache_folder, cache_size, cached_test_transform, describe_cache
from harness.engine import build_transform, get_cfg_default
from harness.errors import UserError
from harness.registration import register_all

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Filling:
    """A torch Dataset whose item i stores image i in the cache and is None, or the image's problem."""

    def __init__(self, impaths, cached_transform):
        self.impaths, self.cached_transform = impaths, cached_transform

    def __len__(self):
        return len(self.impaths)

    def __getitem__(self, index):
        try:
            self.cached_transform(self.impaths[index])
        except Exception:  # PIL raises many types for broken files
            return image_problem(self.impaths[index], decode=True) or "unreadable"
        return None


def build_cfg(name, root, config_file, opts):
    cfg = get_cfg_default()
    extend_cfg(cfg)
    dataset_config = os.path.join(REPO_ROOT, "configs", "datasets", f"{find_dataset(name).config_name}.yaml")
    for path in (dataset_config, config_file):
        if not os.path.isfile(path):
            raise UserError(f"config file {path} not found")
        cfg.merge_from_file(path)
    cfg.merge_from_list(["DATASET.ROOT", root, *opts])
    return cfg


def quiet_test_transform(cfg):
    with contextlib.redirect_stdout(io.StringIO()):  # the lines a run prints for its transforms
        return build_transform(cfg, is_train=False)


def fill(cfg, jobs=0):
    """Store every val and test image of cfg's dataset; returns [(impath, problem)] for those that failed."""
    import torch
    from tqdm import tqdm

    cls = find_dataset(cfg.DATASET.NAME)
    root = os.path.abspath(os.path.expanduser(cfg.DATASET.ROOT))
    with contextlib.redirect_stdout(io.StringIO()):
        entries = cls.read_entries(os.path.join(root, cls.dataset_dir))
    transform = quiet_test_transform(cfg)
    cached_transform = cached_test_transform(cfg, transform)
    if cached_transform is None:
        raise UserError(describe_cache(cfg, transform))
    impaths = list(dict.fromkeys(entry.impath for split in ("val", "test") for entry in entries.get(split, [])))
    loader = torch.utils.data.DataLoader(_Filling(impaths, cached_transform), batch_size=None, num_workers=jobs)
    problems = []
    for impath, problem in zip(impaths, tqdm(loader, desc="caching test images", unit="image"), strict=True):
        if problem:
            problems.append((impath, problem))
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m datasets.prepare_cache", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help=f"dataset: {', '.join(coop_datasets())}")
    parser.add_argument("--root", required=True, help="the data root (DATASET.ROOT, train.py's --root)")
    parser.add_argument("--config-file", required=True,
                        help="the trainer config the runs use (its INPUT settings), e.g. "
                             "configs/trainers/MMA/vit_b16_ep5.yaml")
    parser.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("opts", nargs="*", help="KEY VALUE config options, as for train.py")
    args = parser.parse_intermixed_args(argv)
    register_all()  # the trainers' config nodes, which their config files set
    try:
        cfg = build_cfg(args.name, os.path.abspath(os.path.expanduser(args.root)), args.config_file, args.opts)
        print(describe_cache(cfg, quiet_test_transform(cfg)))
        problems = fill(cfg, jobs=args.jobs if args.jobs > 1 else 0)
    except (UserError, KeyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for impath, problem in problems:
        print(f"  {problem}: {impath}")
    entries, size = cache_size(cache_folder(cfg))
    print(f"Test-image cache {cache_folder(cfg)} holds {entries} entries, {size / 2**20:.1f} MiB"
          + (f"; {len(problems)} image(s) could not be decoded (listed above)" if problems else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
