"""Checkpoint files in Dassl's layout: `<dir>/model.pth.tar-<epoch>` plus a `checkpoint` pointer file.

Every checkpoint written here holds only tensors and plain Python values, so it loads with
`torch.load(..., weights_only=True)` (torch's default) on either engine.
"""
import os
import shutil
import warnings
from collections import OrderedDict

import torch

from .tools import mkdir_if_missing

POINTER_FILE = "checkpoint"


def save_checkpoint(state, save_dir, is_best=False, remove_module_from_keys=True, model_name=""):
    mkdir_if_missing(save_dir)
    if remove_module_from_keys:
        state["state_dict"] = OrderedDict(
            (key[len("module."):] if key.startswith("module.") else key, value)
            for key, value in state["state_dict"].items()
        )
    fpath = os.path.join(save_dir, model_name or f"model.pth.tar-{state['epoch']}")
    torch.save(state, fpath)
    print(f"Checkpoint saved to {fpath}")
    with open(os.path.join(save_dir, POINTER_FILE), "w") as pointer:
        pointer.write(f"{os.path.basename(fpath)}\n")
    if is_best:
        best_fpath = os.path.join(os.path.dirname(fpath), "model-best.pth.tar")
        shutil.copy(fpath, best_fpath)
        print(f'Best checkpoint saved to "{best_fpath}"')


def load_checkpoint(fpath):
    if fpath is None:
        raise ValueError("File path is None")
    if not os.path.exists(fpath):
        raise FileNotFoundError(f'File is not found at "{fpath}"')
    map_location = None if torch.cuda.is_available() else "cpu"
    try:
        return torch.load(fpath, map_location=map_location, weights_only=True)
    except Exception:
        print(f'Unable to load checkpoint from "{fpath}"')
        raise


def resume_from_checkpoint(fdir, model, optimizer=None, scheduler=None):
    with open(os.path.join(fdir, POINTER_FILE), "r") as pointer:
        fpath = os.path.join(fdir, pointer.readlines()[0].strip("\n"))
    print(f'Loading checkpoint from "{fpath}"')
    checkpoint = load_checkpoint(fpath)
    model.load_state_dict(checkpoint["state_dict"])
    print("Loaded model weights")
    if optimizer is not None and "optimizer" in checkpoint:
        optimizer.load_state_dict(checkpoint["optimizer"])
        print("Loaded optimizer")
    if scheduler is not None and "scheduler" in checkpoint:
        scheduler.load_state_dict(checkpoint["scheduler"])
        print("Loaded scheduler")
    start_epoch = checkpoint["epoch"]
    print(f"Previous epoch: {start_epoch}")
    return start_epoch


def count_num_param(model=None, params=None):
    if model is not None:
        return sum(p.numel() for p in model.parameters())
    if params is not None:
        return sum(p["params"].numel() if isinstance(p, dict) else p.numel() for p in params)
    raise ValueError("model and params must provide at least one.")


def load_pretrained_weights(model, weight_path):
    """Load every tensor whose key and shape match the model's; report what was discarded."""
    checkpoint = load_checkpoint(weight_path)
    state_dict = checkpoint.get("state_dict", checkpoint)
    model_dict = model.state_dict()
    matched, discarded = OrderedDict(), []
    for key, value in state_dict.items():
        key = key[len("module."):] if key.startswith("module.") else key
        if key in model_dict and model_dict[key].size() == value.size():
            matched[key] = value
        else:
            discarded.append(key)
    model_dict.update(matched)
    model.load_state_dict(model_dict)
    if not matched:
        warnings.warn(f"Cannot load {weight_path} (check the key names manually)")
    else:
        print(f"Successfully loaded pretrained weights from {weight_path}")
        if discarded:
            print(f"Layers discarded due to unmatched keys or size: {discarded}")
