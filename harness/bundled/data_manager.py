"""Data loaders as Dassl builds them: DataManager, DatasetWrapper items, samplers and the drop_last rule."""
import torch
import torchvision.transforms as T
from tabulate import tabulate
from torch.utils.data import Dataset as TorchDataset

from .datasets import build_dataset
from .supported import check_sampler
from .tools import read_image
from .transforms import INTERPOLATION_MODES, build_transform


def build_sampler(key, sampler_type, data_source):
    check_sampler(key, sampler_type, "bundled")
    if sampler_type == "RandomSampler":
        return torch.utils.data.RandomSampler(data_source)
    return torch.utils.data.SequentialSampler(data_source)


def build_data_loader(cfg, loader_key, data_source, tfm, is_train, dataset_wrapper=None):
    """The loader of DATALOADER.<loader_key> (TRAIN_X or TEST) over `data_source`."""
    loader_cfg = cfg.DATALOADER[loader_key]
    wrapper = dataset_wrapper or DatasetWrapper
    loader = torch.utils.data.DataLoader(
        wrapper(cfg, data_source, transform=tfm, is_train=is_train),
        batch_size=loader_cfg.BATCH_SIZE,
        sampler=build_sampler(f"DATALOADER.{loader_key}.SAMPLER", loader_cfg.SAMPLER, data_source),
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        drop_last=is_train and len(data_source) >= loader_cfg.BATCH_SIZE,
        pin_memory=torch.cuda.is_available() and cfg.USE_CUDA,
    )
    assert len(loader) > 0
    return loader


class DataManager:
    def __init__(self, cfg, dataset_wrapper=None):
        dataset = build_dataset(cfg)
        tfm_train = build_transform(cfg, is_train=True)
        tfm_test = build_transform(cfg, is_train=False)
        self.train_loader_x = build_data_loader(cfg, "TRAIN_X", dataset.train_x, tfm_train, True, dataset_wrapper)
        # No loader of unlabelled data: TrainerX, which every CoOp-family trainer extends, never reads one.
        self.train_loader_u = None
        self.val_loader = None
        if dataset.val:
            self.val_loader = build_data_loader(cfg, "TEST", dataset.val, tfm_test, False, dataset_wrapper)
        self.test_loader = build_data_loader(cfg, "TEST", dataset.test, tfm_test, False, dataset_wrapper)
        self._num_classes = dataset.num_classes
        self._num_source_domains = len(cfg.DATASET.SOURCE_DOMAINS)
        self._lab2cname = dataset.lab2cname
        self.dataset = dataset
        if cfg.VERBOSE:
            self.show_dataset_summary(cfg)

    @property
    def num_classes(self):
        return self._num_classes

    @property
    def num_source_domains(self):
        return self._num_source_domains

    @property
    def lab2cname(self):
        return self._lab2cname

    def show_dataset_summary(self, cfg):
        table = [["Dataset", cfg.DATASET.NAME]]
        if cfg.DATASET.SOURCE_DOMAINS:
            table.append(["Source", cfg.DATASET.SOURCE_DOMAINS])
        if cfg.DATASET.TARGET_DOMAINS:
            table.append(["Target", cfg.DATASET.TARGET_DOMAINS])
        table.append(["# classes", f"{self.num_classes:,}"])
        table.append(["# train_x", f"{len(self.dataset.train_x):,}"])
        if self.dataset.val:
            table.append(["# val", f"{len(self.dataset.val):,}"])
        table.append(["# test", f"{len(self.dataset.test):,}"])
        print(tabulate(table))


class DatasetWrapper(TorchDataset):
    """Items are dicts: label, domain, impath, index, img (a list of DATALOADER.K_TRANSFORMS views when it is above 1
    in training) and, with DATALOADER.RETURN_IMG0, img0 (the image only resized)."""

    def __init__(self, cfg, data_source, transform, is_train=False):
        self.cfg = cfg
        self.data_source = data_source
        self.transform = transform
        self.k_tfm = cfg.DATALOADER.K_TRANSFORMS if is_train else 1
        self.return_img0 = cfg.DATALOADER.RETURN_IMG0
        interp_mode = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
        to_tensor = [T.Resize(cfg.INPUT.SIZE, interpolation=interp_mode), T.ToTensor()]
        if "normalize" in cfg.INPUT.TRANSFORMS:
            to_tensor.append(T.Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD))
        self.to_tensor = T.Compose(to_tensor)

    def __len__(self):
        return len(self.data_source)

    def __getitem__(self, idx):
        item = self.data_source[idx]
        output = {"label": item.label, "domain": item.domain, "impath": item.impath, "index": idx}
        img0 = read_image(item.impath)
        views = [self.transform(img0) for _ in range(self.k_tfm)]
        output["img"] = views[0] if len(views) == 1 else views
        if self.return_img0:
            output["img0"] = self.to_tensor(img0)
        return output
