"""Images/s of the evaluation input pipeline (the test loader: decode, resize, center crop, to tensor, normalize)
without the test-image cache, with a cold cache (first use: decode and store) and with a warm one, on a synthetic
JPEG tree at real image sizes, with 1 process and with N workers; ratios measured in one run. The rate is the
steady one, after the first round of batches (one per worker): that round carries the workers' start-up, paid
once per evaluation with or without the cache, and its time is printed beside. Then the storage options the
cache could use, measured on the same crops: bytes per image and read time.

    python scripts/bench_eval_input.py [--images 1000] [--sizes 500x375 64x64] [--workers 2] [--batch-size 100]
                                       [--crop 224]
"""
import argparse
import contextlib
import hashlib
import io
import os
import shutil
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import torch
from PIL import Image

import harness.engine  # noqa: F401  (first: makes torchvision importable)
from harness.config import extend_cfg
from harness.data.image_probe import read_image
from harness.data.loaders import HarnessDatasetWrapper, finished_on_device
from harness.data.test_image_cache import cache_size, split_test_transform
from harness.engine import Datum, build_transform, get_cfg_default


def photo_like(width, height, rng):
    """Smooth colour fields plus fine noise: JPEG sizes and decode costs close to photographs'."""
    coarse = rng.integers(0, 256, size=(max(2, height // 32), max(2, width // 32), 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), dtype=np.float32)
    noisy = smooth + rng.normal(0, 12, size=smooth.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def write_tree(folder, count, width, height):
    rng = np.random.default_rng(0)
    os.makedirs(folder)
    paths = []
    for index in range(count):
        path = os.path.join(folder, f"{index:05d}.jpg")
        photo_like(width, height, rng).save(path, quality=90)
        paths.append(path)
    return paths


def test_transform(crop):
    with contextlib.redirect_stdout(io.StringIO()):  # the lines a run prints for its transforms
        return build_transform(config("", "off", 0, crop), is_train=False)


def config(root, cache, workers, crop):
    cfg = get_cfg_default()
    extend_cfg(cfg)
    cfg.merge_from_list(["DATASET.ROOT", root, "DATASET.TEST_IMAGE_CACHE", cache, "DATALOADER.NUM_WORKERS", workers,
                         "INPUT.SIZE", (crop, crop), "INPUT.INTERPOLATION", "bicubic",
                         "INPUT.TRANSFORMS", ("normalize",)])
    return cfg


def first_round(workers):
    """Batches in a loader's first round: one per worker process, or the first batch without workers."""
    return max(workers, 1)


def images_per_second(paths, cfg, transform, batch_size, normalized=True):
    """(steady images/s, seconds to the end of the first round) of one pass of a Dassl-style test loader over
    `paths`; `normalized=False` stops where a GPU run's loader stops (cached images as uint8 batches, normalized
    on the device)."""
    dataset = HarnessDatasetWrapper(cfg, [Datum(impath=path, label=0) for path in paths], transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=cfg.DATALOADER.NUM_WORKERS)
    if normalized:
        loader = finished_on_device(loader, "cpu")  # as build_data_manager does on a CPU run
    start = time.perf_counter()
    arrivals, loaded = [], []
    for batch in loader:
        assert (batch["img"].dtype == torch.float32) == normalized
        arrivals.append(time.perf_counter())
        loaded.append(len(batch["img"]))
    round_end = first_round(cfg.DATALOADER.NUM_WORKERS) - 1
    return sum(loaded[round_end + 1 :]) / (arrivals[-1] - arrivals[round_end]), arrivals[round_end] - start


def pipeline_rows(paths, root, workers_list, crop, batch_size):
    """Per worker count: the (steady images/s, first-round seconds) of uncached, cold, warm and warm-u8 passes,
    and the cache's bytes per image."""
    rows = []
    for workers in workers_list:
        transform = test_transform(crop)
        uncached = images_per_second(paths, config(root, "off", workers, crop), transform, batch_size)
        cache = tempfile.mkdtemp(prefix="bench-cache-", dir=root)
        cold = images_per_second(paths, config(root, cache, workers, crop), transform, batch_size)
        warm = images_per_second(paths, config(root, cache, workers, crop), transform, batch_size)
        warm_uint8 = images_per_second(paths, config(root, cache, workers, crop), transform, batch_size,
                                       normalized=False)
        entries, size = cache_size(cache)
        rows.append((workers, uncached, cold, warm, warm_uint8, size / entries))
        shutil.rmtree(cache)
    return rows


def storage_rows(paths, crop):
    """(storage, bytes per image, ms to read one image back into an array) for each candidate."""
    resize, center_crop, _ = split_test_transform(test_transform(crop))
    crops = [np.ascontiguousarray(np.asarray(center_crop(resize(read_image(path))), np.uint8).transpose(2, 0, 1))
             for path in paths]
    shape = crops[0].shape
    candidates = {
        "raw (chosen)": (lambda a: a.tobytes(), lambda b: np.frombuffer(b, np.uint8).reshape(shape)),
        "zlib level 1": (lambda a: zlib.compress(a.tobytes(), 1),
                         lambda b: np.frombuffer(zlib.decompress(b), np.uint8).reshape(shape)),
        "PNG": (png_bytes, lambda b: np.ascontiguousarray(np.asarray(Image.open(io.BytesIO(b))).transpose(2, 0, 1))),
    }
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, (encode, decode) in candidates.items():
            files = []
            for index, array in enumerate(crops):
                files.append(os.path.join(folder, f"{index}.bin"))
                with open(files[-1], "wb") as file:
                    file.write(encode(array))
            size = sum(os.path.getsize(path) for path in files) / len(files)
            start = time.perf_counter()
            for path, array in zip(files, crops, strict=True):
                with open(path, "rb") as file:
                    assert np.array_equal(decode(file.read()), array)  # lossless, checked while timed
            rows.append((name, size, (time.perf_counter() - start) / len(files) * 1e3))
            for path in files:
                os.remove(path)
    return rows


def content_key_cost(paths):
    """(mean JPEG size in KiB, ms to read and hash one file): what keying an entry on its image's bytes costs."""
    start = time.perf_counter()
    sizes = []
    for path in paths:
        with open(path, "rb") as file:
            content = file.read()
        hashlib.sha256(content).hexdigest()
        sizes.append(len(content))
    return np.mean(sizes) / 1024, (time.perf_counter() - start) / len(paths) * 1e3


def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array.transpose(1, 2, 0)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000, help="images per size")
    parser.add_argument("--sizes", nargs="+", default=["500x375", "64x64"], help="WIDTHxHEIGHT of the JPEGs")
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 4), help="the N of the N-worker rows")
    parser.add_argument("--batch-size", type=int, default=100, help="the test loader's batch size")
    parser.add_argument("--crop", type=int, default=224, help="INPUT.SIZE (square)")
    args = parser.parse_args()
    round_images = args.batch_size * first_round(args.workers)
    if args.images <= round_images:
        parser.error(f"--images {args.images} leaves no batch after the first round of {first_round(args.workers)} "
                     f"batch(es) of {args.batch_size}; give more than {round_images} images, a smaller --batch-size "
                     "or fewer --workers")
    torch.set_num_threads(1)
    root = tempfile.mkdtemp(prefix="bench-eval-input-")
    try:
        print(f"{args.images} synthetic JPEGs per size, test transform: resize {args.crop} bicubic, center crop "
              f"{args.crop}x{args.crop}, to tensor, normalize; DataLoader batch {args.batch_size}; "
              f"{os.cpu_count()} CPU cores")
        print("images/s after the first round of batches (one per worker); 1st round: seconds to its end, uncached "
              "/ warm\nwarm u8: the warm loader without the normalization, which a GPU run does on the device")
        print(f"{'image size':>10} {'workers':>7} {'uncached':>9} {'cold':>9} {'warm':>9} {'warm u8':>9} "
              f"{'cold/unc':>8} {'warm/unc':>8} {'u8/unc':>8} {'1st round s':>12} {'cache KiB/image':>15}")
        for size in args.sizes:
            width, height = map(int, size.split("x"))
            paths = write_tree(os.path.join(root, size), args.images, width, height)
            rows = pipeline_rows(paths, root, [0, args.workers], args.crop, args.batch_size)
            for workers, (uncached, uncached_round), (cold, _), (warm, warm_round), (warm_uint8, _), per_image in rows:
                rates = f"{uncached:>9.0f} {cold:>9.0f} {warm:>9.0f} {warm_uint8:>9.0f}"
                ratios = f"{cold / uncached:>8.2f} {warm / uncached:>8.2f} {warm_uint8 / uncached:>8.2f}"
                print(f"{size:>10} {first_round(workers):>7} {rates} {ratios} "
                      f"{f'{uncached_round:.2f} / {warm_round:.2f}':>12} {per_image / 1024:>15.1f}")
        print(f"\nStorage of one {args.crop}x{args.crop} crop (the {args.sizes[0]} images), read back single-threaded:")
        print(f"{'storage':>14} {'KiB/image':>10} {'ms/image':>9}")
        for name, size, milliseconds in storage_rows(paths_of(root, args.sizes[0]), args.crop):
            print(f"{name:>14} {size / 1024:>10.1f} {milliseconds:>9.3f}")
        jpeg_kib, hash_ms = content_key_cost(paths_of(root, args.sizes[0]))
        print(f"Content key of each entry (read + SHA-256 of the {args.sizes[0]} JPEG, {jpeg_kib:.1f} KiB): "
              f"{hash_ms:.3f} ms/image")
    finally:
        shutil.rmtree(root)


def paths_of(root, size):
    folder = os.path.join(root, size)
    return sorted(os.path.join(folder, name) for name in os.listdir(folder))


if __name__ == "__main__":
    main()
