"""Checkpoint files in Dassl's layout: `<dir>/model.pth.tar-<epoch>` plus a `checkpoint` pointer file.

Every checkpoint written here holds only tensors and plain Python values, and is written atomically (a
temporary file in the same folder, fsync, rename), so a kill during a save leaves the previous file intact.
Every checkpoint read, on either engine, goes through `load_checkpoint`: `torch.load(..., weights_only=True)`,
never a plain pickle, with one clear line for a file that cannot be loaded.
"""
import os
import pickle
import re
import shutil
import warnings
import zipfile
from collections import OrderedDict

import torch

from harness.errors import CheckpointError
from harness.json_files import TEMPORARY_PREFIX, TEMPORARY_SUFFIX, write_file_atomic

from .tools import mkdir_if_missing

POINTER_FILE = "checkpoint"
_UNSAFE_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")

# Dassl's warmup schedulers save their successor (a torch scheduler holding its optimizer) as a pickled object,
# so Dassl's and the official MMA code's checkpoints hold these classes. They are loaded as inert stand-ins:
# their state is kept as attributes and no code of theirs runs (evaluation needs only the weights).
DASSL_PICKLED_CLASSES = (
    "torch.optim.lr_scheduler.StepLR",
    "torch.optim.lr_scheduler.MultiStepLR",
    "torch.optim.lr_scheduler.CosineAnnealingLR",
    "torch.optim.sgd.SGD",
    "torch.optim.adam.Adam",
    "torch.optim.adamw.AdamW",
    "torch.optim.radam.RAdam",
    "torch.optim.rmsprop.RMSprop",
)


class PickledObject:
    """An object a Dassl checkpoint pickled, loaded as its attributes only."""


def _plain_dict(*_default_factory):
    # An optimizer's `state` is a defaultdict(dict); torch's weights-only unpickler fills only plain dicts.
    return {}


CHECKPOINT_SAFE_GLOBALS = [(PickledObject, name) for name in DASSL_PICKLED_CLASSES] + [
    (_plain_dict, "collections.defaultdict"),
    (dict, "builtins.dict"),
]


def remove_temporary_files(folder):
    """Delete the temporary files of saves that a killed run left behind."""
    if not os.path.isdir(folder):
        return
    for name in os.listdir(folder):
        if name.startswith(TEMPORARY_PREFIX) and name.endswith(TEMPORARY_SUFFIX):
            os.remove(os.path.join(folder, name))


def save_checkpoint(state, save_dir, is_best=False, remove_module_from_keys=True, model_name=""):
    mkdir_if_missing(save_dir)
    if remove_module_from_keys:
        state["state_dict"] = OrderedDict(
            (key[len("module."):] if key.startswith("module.") else key, value)
            for key, value in state["state_dict"].items()
        )
    fpath = os.path.join(save_dir, model_name or f"model.pth.tar-{state['epoch']}")
    write_file_atomic(fpath, lambda file: torch.save(state, file))
    print(f"Checkpoint saved to {fpath}")
    write_file_atomic(os.path.join(save_dir, POINTER_FILE), lambda file: file.write(f"{os.path.basename(fpath)}\n"),
                      binary=False)
    if is_best:
        best_fpath = os.path.join(os.path.dirname(fpath), "model-best.pth.tar")
        write_file_atomic(best_fpath, lambda file: _copy_file(fpath, file))
        print(f'Best checkpoint saved to "{best_fpath}"')


def _copy_file(source, file):
    with open(source, "rb") as original:
        shutil.copyfileobj(original, file)


def load_checkpoint(fpath):
    """The content of a checkpoint file, read with weights_only=True; CheckpointError (one line) if it cannot be."""
    if not fpath or not os.path.isfile(fpath):
        raise CheckpointError(f'{fpath}: no such checkpoint file.')
    map_location = None if torch.cuda.is_available() else "cpu"
    try:
        with torch.serialization.safe_globals(CHECKPOINT_SAFE_GLOBALS):
            return torch.load(fpath, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        unsafe = _UNSAFE_GLOBAL.search(str(error))
        if unsafe:
            raise CheckpointError(
                f"{fpath}: not loaded because it could run code: it pickles {unsafe.group(1)}, not only tensors and "
                "plain values. Use a checkpoint saved as a state dict (this harness writes only those)."
            ) from None
        raise CheckpointError(f"{fpath}: not a checkpoint file, or a damaged one; delete it and run the training "
                              "again.") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as error:
        raise CheckpointError(
            f"{fpath}: damaged or truncated checkpoint ({_first_line(error) or type(error).__name__}); delete it "
            "and run the training again."
        ) from None


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else ""


def resume_from_checkpoint(fdir, model, optimizer=None, scheduler=None):
    with open(os.path.join(fdir, POINTER_FILE)) as pointer:
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
        warnings.warn(f"Cannot load {weight_path} (check the key names manually)", stacklevel=2)
    else:
        print(f"Successfully loaded pretrained weights from {weight_path}")
        if discarded:
            print(f"Layers discarded due to unmatched keys or size: {discarded}")
