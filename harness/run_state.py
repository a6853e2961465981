"""What a training run holds in memory between two epochs besides its model, optimizer and scheduler: the
random-number generators that fix the next epoch's batch order and augmentations, as tensors and plain values
(so the checkpoint that carries them loads with `torch.load(..., weights_only=True)`).

With these restored before the next epoch, a resumed run draws the same batches and augmentations as an
uninterrupted run. The train loader's worker seeds are drawn from torch's global generator when an epoch's
iterator is created, and its RandomSampler seeds itself from that generator too, unless a loader or sampler
was given a generator of its own: those are saved as well.
"""
import random

import numpy as np
import torch


def capture_rng_states(loaders=()):
    numpy_state = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": numpy_state[0],
            "keys": torch.from_numpy(numpy_state[1].astype(np.int64)),
            "position": int(numpy_state[2]),
            "has_gauss": int(numpy_state[3]),
            "cached_gaussian": float(numpy_state[4]),
        },
        "python": random.getstate(),
        "loaders": [_loader_generator_states(loader) for loader in loaders],
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states, loaders=()):
    torch.set_rng_state(states["torch"])
    numpy_state = states["numpy"]
    np.random.set_state((numpy_state["bit_generator"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["position"], numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    random.setstate(states["python"])
    for loader, generator_states in zip(loaders, states["loaders"]):
        for generator, state in zip(_loader_generators(loader), generator_states):
            if generator is not None:
                generator.set_state(state)
    if "cuda" in states and torch.cuda.is_available() and torch.cuda.device_count() == len(states["cuda"]):
        torch.cuda.set_rng_state_all(states["cuda"])


def _loader_generators(loader):
    return getattr(loader, "generator", None), getattr(getattr(loader, "sampler", None), "generator", None)


def _loader_generator_states(loader):
    return [generator.get_state() if generator is not None else None for generator in _loader_generators(loader)]

