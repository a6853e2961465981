"""The shared cache of preprocessed test images.

Dassl's test transform (resize of the shorter side, center crop, to tensor, normalize) is deterministic, so its
first two steps are done once per image and stored as uint8, channels first; every later evaluation of any
trainer, seed or protocol reads the stored pixels and applies the remaining steps (to tensor, normalize), which
gives the same tensor bit for bit.

One entry file per (image, transform), named by a hash of the image's path relative to the data root and of
the transform. It holds a header, the key (that relative path, the size and SHA-256 of the image file's bytes,
every parameter of the resize and the crop, the Pillow and torchvision versions), the pixels' shape and CRC-32,
then the raw pixels. The key is the file's content, not its size and modification time: an image replaced by
another of the same size with its mtime kept (`cp -p`, `rsync -a`, a re-extracted archive) must not be served
the old pixels. Each read hashes the bytes it decodes from on a miss (0.05 ms for a 100 KB JPEG, against about
5 ms to decode and resize it). An entry whose key does not match the image and transform now is rebuilt, one
whose pixels fail their check is rebuilt with a line saying so; neither is ever used. Entries are written to a
temporary file and renamed into place, so processes filling the cache at once never read a partial entry.

Raw pixels were chosen by measurement (scripts/bench_eval_input.py, 224 px crops of 500x375 JPEGs): reading one
back took 0.055 ms raw, 0.89 ms with zlib (level 1, 8% smaller) and 2.1 ms as PNG (35% smaller), where decoding
and resizing the JPEG takes about 5 ms; an entry is 147 KiB, so ImageNet's 50,000 test images take 7.2 GiB.
"""
import hashlib
import io
import json
import math
import os
import struct
import tempfile
import zlib

from harness.console import print_line
from harness.data.image_probe import read_image
from harness.json_files import created_file_mode

CACHE_VARIABLE = "HARNESS_TEST_IMAGE_CACHE"
CONFIG_KEY = "DATASET.TEST_IMAGE_CACHE"
OFF = "off"
DEFAULT_SUBFOLDER = os.path.join("cache", "test_images")
MAGIC = b"harness-test-image-v2\n"  # v2: pixels stored channels first
HEADER_LENGTH = struct.Struct("<I")
ENTRY_SUFFIX = ".img"


def cache_folder(cfg):
    """The cache folder asked for ($HARNESS_TEST_IMAGE_CACHE, else DATASET.TEST_IMAGE_CACHE), or None for off.

    Empty means the default, <DATASET.ROOT>/cache/test_images.
    """
    setting = os.environ.get(CACHE_VARIABLE, cfg.DATASET.TEST_IMAGE_CACHE).strip()
    if setting.lower() == OFF:
        return None
    data_root = os.path.abspath(os.path.expanduser(cfg.DATASET.ROOT))
    return os.path.abspath(os.path.expanduser(setting)) if setting else os.path.join(data_root, DEFAULT_SUBFOLDER)


def split_test_transform(transform):
    """(resize, crop, after) of Dassl's test transform Compose([Resize, CenterCrop, ToTensor, *after]), or None."""
    from torchvision.transforms import CenterCrop, Compose, Resize, ToTensor

    steps = getattr(transform, "transforms", None)
    if (
        not isinstance(transform, Compose)
        or len(steps) < 3
        or not isinstance(steps[0], Resize)
        or not isinstance(steps[1], CenterCrop)
        or not isinstance(steps[2], ToTensor)
    ):
        return None
    return steps[0], steps[1], Compose(steps[3:])


def channels_first_to_tensor(pixels):
    """torchvision's to_tensor of uint8 pixels already channels first (so without its copy): a tensor or a batch."""
    import torch

    return pixels.to(dtype=torch.get_default_dtype()).div_(255)  # `to` made a new tensor: in place is safe


def transform_key(resize, crop):
    """Every parameter the stored pixels depend on, as plain JSON values."""
    import PIL
    import torchvision

    return {
        "resize": resize.size if isinstance(resize.size, int) else list(resize.size),
        "interpolation": resize.interpolation.value,
        "max_size": resize.max_size,
        "antialias": resize.antialias,
        "center_crop": list(crop.size),
        "pillow": PIL.__version__,
        "torchvision": torchvision.__version__,
    }


def cached_test_transform(cfg, transform):
    """A callable impath -> the tensor `transform(read_image(impath))`, served from the cache; None when the cache
    is off, its folder cannot be created, or `transform` is not Dassl's test transform."""
    folder = cache_folder(cfg)
    parts = None if transform is None else split_test_transform(transform)
    if folder is None or parts is None or not _folder_usable(folder):
        return None
    resize, crop, after = parts
    data_root = os.path.abspath(os.path.expanduser(cfg.DATASET.ROOT))
    return CachedTestTransform(TestImageCache(folder, data_root, transform_key(resize, crop)), resize, crop, after)


def describe_cache(cfg, test_transform):
    """The line a run prints at start: whether the cache is used, where, and its size on disk."""
    folder = cache_folder(cfg)
    if folder is None:
        return f"Test-image cache: off ({CONFIG_KEY} or ${CACHE_VARIABLE} is '{OFF}')"
    if test_transform is None or split_test_transform(test_transform) is None:
        return "Test-image cache: not used (the test transform is not Dassl's resize + center crop)"
    if not _folder_usable(folder):
        return (f"Test-image cache: not used (its folder {folder} cannot be created; "
                f"set {CONFIG_KEY} or ${CACHE_VARIABLE} to another folder)")
    entries, size = cache_size(folder)
    read_only = "" if os.access(folder, os.W_OK) else ", read-only: images not in it are decoded every time"
    return (f"Test-image cache: used, at {folder} ({entries} entries, {size / 2**20:.1f} MiB{read_only}); "
            f"{CONFIG_KEY} or ${CACHE_VARIABLE} sets its folder, '{OFF}' turns it off")


def _folder_usable(folder):
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return False
    return True


class CachedTestTransform:
    """impath -> the whole transform's tensor, with crop(resize(image)) from the cache (picklable for workers).

    Where the remaining steps are normalizations only (Dassl's test transform), they work on whole batches:
    then the image is returned as the cached uint8 tensor and `finish_batch` does the rest where the batch is,
    on the device (a quarter of the bytes through the loader, and no per-image float work in the workers).
    """

    def __init__(self, cache, resize, crop, after):
        from torchvision.transforms import Normalize

        self.cache, self.resize, self.crop, self.after = cache, resize, crop, after
        self.finishes_batches = all(isinstance(step, Normalize) for step in after.transforms)

    def __call__(self, impath):
        import torch

        pixels = torch.from_numpy(self.cache.pixels(impath, self.preprocess))
        return pixels if self.finishes_batches else self.finish_batch(pixels)

    def finish_batch(self, pixels):
        """The transform's tensors from uint8 pixels (one image or a batch; elementwise, so bit for bit the same)."""
        from torchvision.transforms.functional import normalize

        images = channels_first_to_tensor(pixels)
        if not self.finishes_batches:
            return self.after(images)
        for step in self.after.transforms:  # in place: the same operations without Normalize's copy
            images = normalize(images, step.mean, step.std, inplace=True)
        return images

    def preprocess(self, image):
        """crop(resize(image)) as uint8, channels first."""
        import numpy as np

        return np.ascontiguousarray(np.asarray(self.crop(self.resize(image)), dtype=np.uint8).transpose(2, 0, 1))


def cache_size(folder):
    """(number of entries, bytes on disk) under `folder`."""
    entries = size = 0
    for directory, _, names in os.walk(folder):
        for name in names:
            if name.endswith(ENTRY_SUFFIX):
                entries += 1
                size += os.path.getsize(os.path.join(directory, name))
    return entries, size


class TestImageCache:
    __test__ = False  # not a pytest test class

    def __init__(self, folder, data_root, transform):
        self.folder = folder
        self.data_root = data_root
        self.transform = transform
        self.transform_json = json.dumps(transform, sort_keys=True)
        self.file_mode = created_file_mode()

    def pixels(self, impath, preprocess):
        """preprocess(image at `impath`), a uint8 array, from its entry, (re)built where it does not match."""
        with open(impath, "rb") as file:
            content = file.read()
        key = self.entry_key(impath, content)
        path = self.entry_path(key)
        pixels = self.read_entry(path, key)
        if pixels is None:
            # Decoded from the bytes that were hashed: the entry is always the pixels of the content in its key.
            pixels = preprocess(read_image(io.BytesIO(content)))
            self.write_entry(path, key, pixels)
        return pixels

    def entry_key(self, impath, content):
        return {
            "path": os.path.relpath(os.path.abspath(impath), self.data_root),
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            "transform": self.transform,
        }

    def entry_path(self, key):
        name = hashlib.sha256(f"{key['path']}\n{self.transform_json}".encode()).hexdigest()
        return os.path.join(self.folder, name[:2], name + ENTRY_SUFFIX)

    def read_entry(self, path, key):
        """The stored pixels if the entry at `path` exists, matches `key` and is intact; else None."""
        import numpy as np

        try:
            with open(path, "rb") as file:
                content = bytearray(file.read())  # writable, so torch takes the pixels without a copy warning
        except FileNotFoundError:
            return None
        try:
            header, pixels = _parse_entry(content)
        except ValueError as error:
            print_line(f"Test-image cache: entry {path} for {key['path']} is corrupt ({error}); rebuilding it")
            return None
        if header["key"] != key:  # the image or the transform changed: decode again
            return None
        return np.frombuffer(pixels, dtype=np.uint8).reshape(header["shape"])

    def write_entry(self, path, key, pixels):
        header = json.dumps({"key": key, "shape": list(pixels.shape), "crc32": zlib.crc32(pixels.data)}).encode()
        folder = os.path.dirname(path)
        try:
            os.makedirs(folder, exist_ok=True)
            descriptor, temp_path = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=folder)
        except OSError:  # a read-only cache still serves what it holds; this image is decoded every time
            return
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(MAGIC + HEADER_LENGTH.pack(len(header)) + header)
                file.write(pixels.tobytes())
            os.chmod(temp_path, self.file_mode)
            os.replace(temp_path, path)  # no fsync: an entry lost in a crash fails its check and is rebuilt
        except BaseException as error:
            if os.path.exists(temp_path):
                os.remove(temp_path)
            if not isinstance(error, OSError):  # e.g. a full disk: the run goes on, this entry is not stored
                raise


def _parse_entry(content):
    """(header, pixel bytes) of an entry file's content; ValueError says what is wrong."""
    if not content.startswith(MAGIC):
        raise ValueError("not a cache entry")
    start = len(MAGIC) + HEADER_LENGTH.size
    if len(content) < start:
        raise ValueError("truncated header")
    (length,) = HEADER_LENGTH.unpack_from(content, len(MAGIC))
    try:
        header = json.loads(content[start : start + length])
    except ValueError as error:
        raise ValueError(f"unreadable header: {error}") from None
    if not isinstance(header, dict) or not {"key", "shape", "crc32"} <= header.keys():
        raise ValueError("incomplete header")
    shape, crc = header["shape"], header["crc32"]
    if not isinstance(shape, list) or not all(isinstance(extent, int) and extent > 0 for extent in shape):
        raise ValueError(f"bad shape {shape!r}")
    pixels = memoryview(content)[start + length :]
    expected = math.prod(shape)
    if len(pixels) != expected:
        raise ValueError(f"{len(pixels)} pixel bytes, expected {expected}")
    if zlib.crc32(pixels) != crc:
        raise ValueError("pixel checksum mismatch")
    return header, pixels
