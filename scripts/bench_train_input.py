"""What the training input pipeline costs per image: decode, Dassl's augmentation (random resized crop, flip,
to tensor, normalize) and the loader, on a synthetic JPEG tree at a real image size, with 1 process and N workers.
Compare its ms/image with the model step's (scripts/bench_adapters.py prints it for each trainer).

    python scripts/bench_train_input.py [--images 200] [--size 500x375] [--workers 2] [--batch-size 16]
"""
import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch
from bench_eval_input import config, write_tree

from harness.data.image_probe import read_image
from harness.data.loaders import HarnessDatasetWrapper
from harness.engine import Datum, build_transform


def train_transform(crop):
    cfg = config("", "off", 0, crop)
    cfg.INPUT.TRANSFORMS = ("random_resized_crop", "random_flip", "normalize")
    with contextlib.redirect_stdout(io.StringIO()):  # the lines a run prints for its transforms
        return cfg, build_transform(cfg, is_train=True)


def milliseconds_per_image(fn, items):
    start = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - start) / len(items) * 1e3


def loader_milliseconds_per_image(paths, cfg, transform, workers, batch_size):
    """One epoch of a Dassl train loader (RandomSampler, drop_last) over `paths`, per image delivered."""
    cfg.DATALOADER.NUM_WORKERS = workers
    dataset = HarnessDatasetWrapper(cfg, [Datum(impath=path, label=0) for path in paths], transform=transform,
                                    is_train=True)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers, drop_last=True,
                                         sampler=torch.utils.data.RandomSampler(dataset))
    start = time.perf_counter()
    delivered = sum(len(batch["img"]) for batch in loader)
    return (time.perf_counter() - start) / delivered * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", default="500x375", help="WIDTHxHEIGHT of the JPEGs")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=16, help="DATALOADER.TRAIN_X.BATCH_SIZE (MMA: 16)")
    parser.add_argument("--crop", type=int, default=224)
    args = parser.parse_args()
    torch.set_num_threads(1)
    root = tempfile.mkdtemp(prefix="bench-train-input-")
    try:
        width, height = map(int, args.size.split("x"))
        paths = write_tree(os.path.join(root, args.size), args.images, width, height)
        cfg, transform = train_transform(args.crop)
        decoded = [read_image(path) for path in paths]
        decode = milliseconds_per_image(read_image, paths)
        augment = milliseconds_per_image(transform, decoded)
        print(f"{args.images} synthetic {args.size} JPEGs, train transform: random resized crop {args.crop} bicubic, "
              f"flip, to tensor, normalize; batch {args.batch_size}; {os.cpu_count()} CPU cores")
        print(f"  decode (PIL, to RGB)          {decode:7.2f} ms/image")
        print(f"  augmentation (from decoded)   {augment:7.2f} ms/image")
        for workers in (0, args.workers):
            per_image = loader_milliseconds_per_image(paths, cfg, transform, workers, args.batch_size)
            print(f"  train loader, {max(workers, 1)} process(es)     {per_image:7.2f} ms/image delivered")
        print(f"  share of decode in one image's input: {decode / (decode + augment):.0%} (what reusing decoded "
              "images across epochs could save)")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
