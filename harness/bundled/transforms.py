"""Dassl's train and test image transforms (all but its augmentation policies, see supported.py), in Dassl's order."""
import random

import numpy as np
import torch
import torchvision.transforms.functional as F
from torchvision.transforms import (
    CenterCrop,
    ColorJitter,
    Compose,
    GaussianBlur,
    InterpolationMode,
    Normalize,
    RandomApply,
    RandomCrop,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToTensor,
)

from .supported import INTERPOLATIONS, check_images_are_transformed, check_interpolation, check_transform_choices

# torchvision's modes are named as Dassl's INPUT.INTERPOLATION values.
INTERPOLATION_MODES = {name: InterpolationMode(name) for name in INTERPOLATIONS}


class Random2DTranslation:
    """With probability p, enlarge by 1.125x and crop back at a random offset; otherwise just resize."""

    def __init__(self, height, width, p=0.5, interpolation=InterpolationMode.BILINEAR):
        self.height, self.width, self.p, self.interpolation = height, width, p, interpolation

    def __call__(self, img):
        if random.uniform(0, 1) > self.p:
            return F.resize(img, [self.height, self.width], interpolation=self.interpolation)
        new_width, new_height = int(round(self.width * 1.125)), int(round(self.height * 1.125))
        img = F.resize(img, [new_height, new_width], interpolation=self.interpolation)
        left = int(round(random.uniform(0, new_width - self.width)))
        top = int(round(random.uniform(0, new_height - self.height)))
        return F.crop(img, top, left, self.height, self.width)


class InstanceNormalization:
    def __init__(self, eps=1e-8):
        self.eps = eps

    def __call__(self, img):
        channels = img.reshape(img.shape[0], -1)
        mean = channels.mean(1).view(-1, 1, 1)
        std = channels.std(1).view(-1, 1, 1)
        return (img - mean) / (std + self.eps)


class Cutout:
    def __init__(self, n_holes=1, length=16):
        self.n_holes, self.length = n_holes, length

    def __call__(self, img):
        h, w = img.size(1), img.size(2)
        mask = np.ones((h, w), np.float32)
        for _ in range(self.n_holes):
            y, x = np.random.randint(h), np.random.randint(w)
            y1, y2 = np.clip(y - self.length // 2, 0, h), np.clip(y + self.length // 2, 0, h)
            x1, x2 = np.clip(x - self.length // 2, 0, w), np.clip(x + self.length // 2, 0, w)
            mask[y1:y2, x1:x2] = 0.0
        return img * torch.from_numpy(mask).expand_as(img)


class GaussianNoise:
    def __init__(self, mean=0, std=0.15, p=0.5):
        self.mean, self.std, self.p = mean, std, p

    def __call__(self, img):
        if random.uniform(0, 1) > self.p:
            return img
        return img + torch.randn(img.size()) * self.std + self.mean


def build_transform(cfg, is_train=True, choices=None):
    check_images_are_transformed(cfg.INPUT)
    choices = cfg.INPUT.TRANSFORMS if choices is None else choices
    check_transform_choices(choices, "bundled")
    check_interpolation(cfg.INPUT.INTERPOLATION)
    target_size = f"{cfg.INPUT.SIZE[0]}x{cfg.INPUT.SIZE[1]}"
    normalize = Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD)
    build = _build_transform_train if is_train else _build_transform_test
    return build(cfg, choices, target_size, normalize)


def _build_transform_train(cfg, choices, target_size, normalize):
    print("Building transform_train")
    interp_mode = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
    input_size = cfg.INPUT.SIZE
    steps = []
    if "random_crop" not in choices and "random_resized_crop" not in choices:
        print(f"+ resize to {target_size}")
        steps.append(Resize(input_size, interpolation=interp_mode))
    if "random_translation" in choices:
        print("+ random translation")
        steps.append(Random2DTranslation(input_size[0], input_size[1]))
    if "random_crop" in choices:
        print(f"+ random crop (padding = {cfg.INPUT.CROP_PADDING})")
        steps.append(RandomCrop(input_size, padding=cfg.INPUT.CROP_PADDING))
    if "random_resized_crop" in choices:
        print(f"+ random resized crop (size={input_size}, scale={cfg.INPUT.RRCROP_SCALE})")
        steps.append(RandomResizedCrop(input_size, scale=cfg.INPUT.RRCROP_SCALE, interpolation=interp_mode))
    if "random_flip" in choices:
        print("+ random flip")
        steps.append(RandomHorizontalFlip())
    if "colorjitter" in choices:
        b, c, s, h = cfg.INPUT.COLORJITTER_B, cfg.INPUT.COLORJITTER_C, cfg.INPUT.COLORJITTER_S, cfg.INPUT.COLORJITTER_H
        print(f"+ color jitter (brightness={b}, contrast={c}, saturation={s}, hue={h})")
        steps.append(ColorJitter(brightness=b, contrast=c, saturation=s, hue=h))
    if "randomgrayscale" in choices:
        print("+ random gray scale")
        steps.append(RandomGrayscale(p=cfg.INPUT.RGS_P))
    if "gaussian_blur" in choices:
        print(f"+ gaussian blur (kernel={cfg.INPUT.GB_K})")
        steps.append(RandomApply([GaussianBlur(cfg.INPUT.GB_K)], p=cfg.INPUT.GB_P))
    print("+ to torch tensor of range [0, 1]")
    steps.append(ToTensor())
    if "cutout" in choices:
        print(f"+ cutout (n_holes={cfg.INPUT.CUTOUT_N}, length={cfg.INPUT.CUTOUT_LEN})")
        steps.append(Cutout(cfg.INPUT.CUTOUT_N, cfg.INPUT.CUTOUT_LEN))
    if "normalize" in choices:
        print(f"+ normalization (mean={cfg.INPUT.PIXEL_MEAN}, std={cfg.INPUT.PIXEL_STD})")
        steps.append(normalize)
    if "gaussian_noise" in choices:
        print(f"+ gaussian noise (mean={cfg.INPUT.GN_MEAN}, std={cfg.INPUT.GN_STD})")
        steps.append(GaussianNoise(cfg.INPUT.GN_MEAN, cfg.INPUT.GN_STD))
    if "instance_norm" in choices:
        print("+ instance normalization")
        steps.append(InstanceNormalization())
    return Compose(steps)


def _build_transform_test(cfg, choices, target_size, normalize):
    print("Building transform_test")
    interp_mode = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
    input_size = cfg.INPUT.SIZE
    print(f"+ resize the smaller edge to {max(input_size)}")
    print(f"+ {target_size} center crop")
    print("+ to torch tensor of range [0, 1]")
    steps = [Resize(max(input_size), interpolation=interp_mode), CenterCrop(input_size), ToTensor()]
    if "normalize" in choices:
        print(f"+ normalization (mean={cfg.INPUT.PIXEL_MEAN}, std={cfg.INPUT.PIXEL_STD})")
        steps.append(normalize)
    if "instance_norm" in choices:
        print("+ instance normalization")
        steps.append(InstanceNormalization())
    return Compose(steps)
