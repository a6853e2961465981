"""File, seed and environment helpers with Dassl's names and behaviour."""
import functools
import json
import os
import platform
import random
import warnings
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import torch


def mkdir_if_missing(dirname):
    os.makedirs(dirname, exist_ok=True)


def check_isfile(fpath):
    isfile = os.path.isfile(fpath)
    if not isfile:
        warnings.warn(f'No file found at "{fpath}"', stacklevel=2)
    return isfile


def read_json(fpath):
    with open(fpath) as f:
        return json.load(f)


def set_random_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def read_image(path):
    from PIL import Image

    return Image.open(path).convert("RGB")


# The libraries whose versions change results or speed, listed in the log.
REPORTED_PACKAGES = ("torch", "torchvision", "open_clip_torch", "numpy", "Pillow", "yacs")


@functools.cache  # the same in every run of a process (a warm worker's too)
def collect_env_info():
    """A short summary of what ran: Python, the platform, the GPUs and the versions of the libraries that matter.

    Dassl's (torch's get_pretty_env_info) lists every installed package through subprocesses, a second or more
    of every run's start-up; this says what a result depends on without it."""
    packages = []
    for name in REPORTED_PACKAGES:
        try:
            packages.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            packages.append(f"{name} (not installed)")
    if torch.cuda.is_available():
        gpus = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        accelerator = f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}: {gpus}"
    else:
        accelerator = "no CUDA device"
    return "\n".join([f"Python {platform.python_version()} on {platform.platform()}", accelerator,
                      ", ".join(packages)])


def tolist_if_not(x):
    return x if isinstance(x, list) else [x]
