"""`PREC` of a trainer: fp32, fp16 (weights in half precision) or amp (autocast over fp32 weights).

amp autocasts to fp16 with a gradient scaler on CUDA and to bf16 (no scaler needed) on CPU, where fp16
autocast is not supported for most ops.
"""
from contextlib import nullcontext

import torch

from harness.errors import ConfigError

PRECISIONS = ("fp16", "fp32", "amp")


def check_precision(prec, key):
    if prec not in PRECISIONS:
        raise ConfigError(f"{key} is {prec!r}; choose one of {', '.join(PRECISIONS)}.")


def weight_dtype(prec):
    return torch.float16 if prec == "fp16" else torch.float32


def autocast(prec, device):
    if prec != "amp":
        return nullcontext()
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(prec, device):
    """A GradScaler where fp16 autocast needs one (amp on CUDA), else None."""
    if prec == "amp" and device.type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None
