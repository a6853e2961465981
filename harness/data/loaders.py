"""The harness's data loaders, on either engine: the engine's own DataManager (so samplers, batch sizes,
transforms, workers and drop_last are Dassl's, and a seed draws the same batches) with the harness's dataset
wrapper. The wrapper reads test images through the shared test-image cache, and turns an image that cannot be
decoded into one DatasetError line naming the file, its split entry and the fix, in the main process or in a
DataLoader worker alike."""
import contextlib
import io
import os

from harness.data.coop_dataset import CoOpDataset, data_root
from harness.data.errors import DatasetError
from harness.data.image_probe import image_problem, refuse_truncated_images
from harness.data.test_image_cache import cached_test_transform, describe_cache
from harness.engine import DATASET_REGISTRY, DataManager, DatasetWrapper, build_transform


def build_data_manager(cfg, device="cpu"):
    """The engine's DataManager for `cfg`, with HarnessDatasetWrapper; prints whether the test-image cache is used.

    Cached test images that the cache leaves to be normalized per batch are normalized on `device`.
    """
    with contextlib.redirect_stdout(io.StringIO()):  # the DataManager prints the transform it builds
        test_transform = build_transform(cfg, is_train=False)
    print(describe_cache(cfg, test_transform))
    dm = DataManager(cfg, dataset_wrapper=HarnessDatasetWrapper)
    dm.test_loader = finished_on_device(dm.test_loader, device)
    if dm.val_loader is not None:
        dm.val_loader = finished_on_device(dm.val_loader, device)
    return dm


def finished_on_device(loader, device):
    """`loader`, or where its cached images come as uint8 a FinishedOnDevice around it."""
    cached_transform = loader.dataset.cached_transform
    if cached_transform is None or not cached_transform.finishes_batches:
        return loader
    return FinishedOnDevice(loader, cached_transform.finish_batch, device)


class FinishedOnDevice:
    """A loader whose batches' uint8 images are moved to `device` and finished there (to float, normalized);
    everything else (length, dataset, sampler) is the wrapped DataLoader's."""

    def __init__(self, loader, finish_batch, device):
        self.loader, self.finish_batch, self.device = loader, finish_batch, device

    def __iter__(self):
        for batch in self.loader:
            batch["img"] = self.finish_batch(batch["img"].to(self.device, non_blocking=True))
            yield batch

    def __len__(self):
        return len(self.loader)

    def __getattr__(self, name):
        if name == "loader":  # not set yet (e.g. while unpickling): no delegation
            raise AttributeError(name)
        return getattr(self.loader, name)


class HarnessDatasetWrapper(DatasetWrapper):
    """Dassl's DatasetWrapper (same items), with cached test images and one-line image errors."""

    def __init__(self, cfg, data_source, transform=None, is_train=False):
        super().__init__(cfg, data_source, transform=transform, is_train=is_train)
        cacheable = not is_train and not self.return_img0
        self.cached_transform = cached_test_transform(cfg, transform) if cacheable else None

    def __getitem__(self, idx):
        refuse_truncated_images()
        item = self.data_source[idx]
        try:
            if self.cached_transform is None:
                return super().__getitem__(idx)
            image = self.cached_transform(item.impath)
        except Exception:
            problem = image_problem(item.impath, decode=True)
            if problem is None:  # the image is fine: a bug elsewhere, keep its traceback
                raise
            raise DatasetError(bad_image_message(self.cfg, item, problem)) from None
        return {"label": item.label, "domain": item.domain, "impath": item.impath, "index": idx, "img": image}


def bad_image_message(cfg, item, problem):
    """One line: the image, what is wrong, the split entry it comes from, and how to fix it."""
    dataset = DATASET_REGISTRY.get(cfg.DATASET.NAME)
    where = f"class {item.classname!r}, label {item.label}"
    if not (isinstance(dataset, type) and issubclass(dataset, CoOpDataset)):
        return f"image {item.impath} ({where}) is {problem}; replace the file or remove it from the dataset"
    root = data_root(cfg)
    origin = split_entry_of(dataset, os.path.join(root, dataset.dataset_dir), item.impath)
    return (f"{dataset.__name__}: image {item.impath} is {problem}, from {origin or where}; fix: "
            f"{dataset.bad_image_fix(root)}; list all bad images with: {dataset.check_command(root)}")


def split_entry_of(dataset, dataset_dir, impath):
    """Where `impath` is listed (the split file and entry), or None."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            entries = dataset.read_entries(dataset_dir)
    except DatasetError:
        return None
    return next((entry.origin for items in entries.values() for entry in items if entry.impath == impath), None)
