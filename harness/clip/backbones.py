"""Build a frozen CLIP (open_clip modules) from `MODEL.BACKBONE.NAME` and `MODEL.BACKBONE.WEIGHTS`.

NAME is one of CoOp's names (ViT-B/16, ViT-B/32, ViT-L/14, ViT-L/14@336px), any open_clip architecture
(e.g. ViT-B-16), an `hf-hub:org/repo` id, `tiny` (a randomly initialised 4-layer CLIP, for tests that need speed
only) or `tiny-demo` (the same CLIP pretrained on the demo's kind of images, harness/clip/demo_pretraining.py).
WEIGHTS says where the weights come from:
  ""        the OpenAI checkpoint file where OpenAI's clip package caches it (~/.cache/clip/<file>.pt,
            or $CLIP_CACHE_DIR/<file>.pt): the file CoOp-family users already have;
  a path    a checkpoint file (OpenAI's TorchScript or state-dict format for CoOp names, open_clip's
            format for open_clip architectures);
  a tag     an open_clip pretrained tag (e.g. openai, laion2b_s34b_b88k), downloaded by open_clip;
  "random"  random initialisation, for shape checks and benchmarks only.
The model comes back in fp32, in eval mode, with every parameter frozen. Weights read from a file must have the
architecture NAME stands for (widths, depths, patch and image size, embedding size): a file of another CLIP is
refused, never loaded into a model it does not fit (open_clip would resize its positional embedding silently).
"""
import logging
import math
import os
import re
from typing import NamedTuple

import open_clip
import torch
from open_clip.factory import load_state_dict
from open_clip.pretrained import get_pretrained_url

from harness.clip.demo_pretraining import pretrained_demo_state_dict
from harness.errors import BackboneError
from harness.process_cache import KeyedCache, file_identity

COOP_BACKBONES = {
    "ViT-B/16": "ViT-B-16",
    "ViT-B/32": "ViT-B-32",
    "ViT-L/14": "ViT-L-14",
    "ViT-L/14@336px": "ViT-L-14-336",
}
TINY = "tiny"
TINY_DEMO = "tiny-demo"
RANDOM_WEIGHTS = "random"
# Random weights stand in for pretrained ones: the same model in every run, whatever the run's seed.
RANDOM_WEIGHT_SEED = 0
# exp(logit_scale) of OpenAI's trained CLIP; randomly initialised models get it too.
TRAINED_LOGIT_SCALE = 100.0

open_clip.add_model_config(os.path.join(os.path.dirname(__file__), "model_configs", "tiny.json"))


def clip_cache_dir():
    return os.environ.get("CLIP_CACHE_DIR") or os.path.expanduser("~/.cache/clip")


def openai_checkpoint_path(coop_name):
    """Where OpenAI's clip package stores the checkpoint of a CoOp-named backbone."""
    url = get_pretrained_url(COOP_BACKBONES[coop_name], "openai")
    return os.path.join(clip_cache_dir(), os.path.basename(url))


def _random_clip(architecture):
    open_clip_logger = logging.getLogger()
    level = open_clip_logger.level
    # open_clip warns that no pretrained weights were loaded: that is the point here.
    open_clip_logger.setLevel(logging.ERROR)
    try:
        torch.manual_seed(RANDOM_WEIGHT_SEED)  # inside load_clip's fork of the RNG: the run's stream is untouched
        model = open_clip.create_model(architecture, pretrained=None)
    finally:
        open_clip_logger.setLevel(level)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(TRAINED_LOGIT_SCALE))
    return model


class Architecture(NamedTuple):
    """The shape of a ViT CLIP, as far as a checkpoint determines it."""

    vision_width: int
    vision_blocks: int
    patch_size: int
    image_size: int
    text_width: int
    text_blocks: int
    embedding_size: int

    def differences(self, other):
        return [f"{field.replace('_', ' ')} {mine} vs {theirs}"
                for field, mine, theirs in zip(self._fields, self, other) if mine != theirs]


def architecture_of_config(architecture):
    """What open_clip's model config `architecture` (e.g. ViT-B-16) builds."""
    config = open_clip.get_model_config(architecture)
    vision, text = config["vision_cfg"], config["text_cfg"]
    return Architecture(vision["width"], vision["layers"], vision["patch_size"], vision["image_size"], text["width"],
                        text["layers"], config["embed_dim"])


def _count_blocks(state_dict, prefix):
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return len({match.group(1) for key in state_dict if (match := pattern.match(key))})


def architecture_of_weights(state_dict):
    """The architecture a CLIP state dict (OpenAI's or open_clip's keys) was trained with; None if it is no ViT CLIP."""
    try:
        conv = state_dict["visual.conv1.weight"]
        grid = math.isqrt(state_dict["visual.positional_embedding"].shape[0] - 1)
        return Architecture(conv.shape[0], _count_blocks(state_dict, "visual.transformer.resblocks."), conv.shape[-1],
                            grid * conv.shape[-1], state_dict["token_embedding.weight"].shape[1],
                            _count_blocks(state_dict, "transformer.resblocks."), state_dict["text_projection"].shape[1])
    except KeyError:
        return None


def check_weights_fit(name, architecture, state_dict, path):
    """Stop with one line if the weights in `path` were trained for another architecture than `name`'s."""
    expected, found = architecture_of_config(architecture), architecture_of_weights(state_dict)
    if found is None or found == expected:
        return
    fitting = [coop for coop, arch in COOP_BACKBONES.items() if architecture_of_config(arch) == found]
    hint = f"set MODEL.BACKBONE.NAME {fitting[0]}" if fitting else "set MODEL.BACKBONE.NAME to their architecture"
    raise BackboneError(
        f"MODEL.BACKBONE.WEIGHTS {path} do not fit MODEL.BACKBONE.NAME {name} ({name} vs the weights: "
        f"{', '.join(expected.differences(found))}): point MODEL.BACKBONE.WEIGHTS to a {name} checkpoint, or {hint}."
    )


def _looks_like_path(weights):
    return os.sep in weights or weights.endswith((".pt", ".pth", ".bin", ".safetensors", ".tar"))


def _load_coop_backbone(name, weights):
    if weights == RANDOM_WEIGHTS:
        # OpenAI's weights were trained with QuickGELU; random weights get the same architecture.
        return _random_clip(COOP_BACKBONES[name] + "-quickgelu")
    if weights and not _looks_like_path(weights):
        return _download_open_clip(COOP_BACKBONES[name], weights)
    path = os.path.expanduser(weights) if weights else openai_checkpoint_path(name)
    if not os.path.isfile(path):
        url = get_pretrained_url(COOP_BACKBONES[name], "openai")
        raise BackboneError(
            f"CLIP weights for {name} not found at {path}: download {url} to that path (OpenAI's clip package "
            "does this on first use), or set MODEL.BACKBONE.WEIGHTS to the file, or to an open_clip tag such as "
            "'openai' to let open_clip download it."
        )
    try:
        model = open_clip.load_openai_model(path, precision="fp32", device="cpu")
    except Exception as error:
        raise BackboneError(f"Cannot read {path} as an OpenAI CLIP checkpoint for {name}: {error}") from None
    # OpenAI's loader builds whatever architecture the file holds: check it is the one the name says.
    check_weights_fit(name, COOP_BACKBONES[name], model.state_dict(), path)
    return model


def _download_open_clip(architecture, tag):
    try:
        return open_clip.create_model(architecture, pretrained=tag)
    except Exception as error:
        raise BackboneError(
            f"open_clip could not load weights {tag!r} for {architecture} ({type(error).__name__}: {error}); "
            "check the tag (open_clip.list_pretrained()) and network access, or point MODEL.BACKBONE.WEIGHTS "
            "to a local checkpoint file."
        ) from None


def _load_open_clip_backbone(architecture, weights):
    if weights == RANDOM_WEIGHTS:
        return _random_clip(architecture)
    if _looks_like_path(weights):
        path = os.path.expanduser(weights)
        if not os.path.isfile(path):
            raise BackboneError(f"MODEL.BACKBONE.WEIGHTS points to {path}, which does not exist.")
        try:
            check_weights_fit(architecture, architecture, load_state_dict(path), path)
            return open_clip.create_model(architecture, pretrained=path)
        except BackboneError:
            raise
        except Exception as error:
            raise BackboneError(f"Cannot load {path} into open_clip's {architecture}: {error}") from None
    if not weights:
        raise BackboneError(
            f"MODEL.BACKBONE.NAME {architecture} needs MODEL.BACKBONE.WEIGHTS: an open_clip tag "
            f"(one of {[tag for arch, tag in open_clip.list_pretrained() if arch == architecture]}), a "
            "checkpoint path, or 'random'."
        )
    return _download_open_clip(architecture, weights)


def load_clip(name, weights=""):
    """An fp32 open_clip CLIP for a backbone name and weights source (see the module docstring).

    Built with the RNG forked: a run draws the same random numbers after it whether its process built the
    backbone or took a copy of one built before (a warm worker), and random weights are the same in every run."""
    with torch.random.fork_rng(devices=[]):
        return _load_clip(name, weights)


def _load_clip(name, weights):
    if name == TINY:
        if weights not in ("", RANDOM_WEIGHTS):
            raise BackboneError("The tiny backbone is randomly initialised: leave MODEL.BACKBONE.WEIGHTS empty.")
        return _random_clip(TINY)
    if name == TINY_DEMO:
        if weights:
            raise BackboneError("The tiny-demo backbone brings its own pretrained weights: leave "
                                "MODEL.BACKBONE.WEIGHTS empty (or use NAME tiny for random weights).")
        model = _random_clip(TINY)
        model.load_state_dict(pretrained_demo_state_dict(model))
        return model
    if name in COOP_BACKBONES:
        return _load_coop_backbone(name, weights)
    if name.startswith("hf-hub:"):
        return _download_open_clip(name, None)
    if name in open_clip.list_models():
        return _load_open_clip_backbone(name, weights)
    raise BackboneError(
        f"Unknown backbone MODEL.BACKBONE.NAME={name!r}: use one of {sorted(COOP_BACKBONES)}, '{TINY}', '{TINY_DEMO}', "
        "an open_clip architecture (open_clip.list_models()), or an hf-hub:org/repo id."
    )


def weights_file(name, weights):
    """The checkpoint file a backbone is read from, or None when it is built or downloaded."""
    if name in COOP_BACKBONES and not weights:
        return openai_checkpoint_path(name)
    if weights and _looks_like_path(weights) and name not in (TINY, TINY_DEMO):
        return os.path.expanduser(weights)
    return None


def frozen_weights_key(name, weights):
    """What identifies a frozen backbone's weights: its name and source, and for a file, the file as it is now."""
    path = weights_file(name, weights)
    return (name, weights) if path is None else (name, weights, path, file_identity(path))


# A warm worker's loaded backbones (fp32, frozen), copied for each run; two fit beside a run's own copy.
FROZEN_BACKBONES = KeyedCache(capacity=2)


def _frozen_clip(name, weights):
    model = load_clip(name, weights).float().eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def build_frozen_clip(cfg):
    """The backbone named by the config, in fp32 eval mode, every parameter frozen: a fresh copy of the frozen
    weights, which the run may convert and adapt (`frozen_weights_key` says which weights they are)."""
    name, weights = cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.WEIGHTS
    key = frozen_weights_key(name, weights)
    model = FROZEN_BACKBONES.copy_of(key, lambda: _frozen_clip(name, weights))
    model.frozen_weights_key = key
    expected = image_size(model)
    if tuple(cfg.INPUT.SIZE) != (expected, expected):
        raise BackboneError(
            f"INPUT.SIZE is {tuple(cfg.INPUT.SIZE)} but backbone {cfg.MODEL.BACKBONE.NAME} takes "
            f"{expected}x{expected} images: set INPUT.SIZE ({expected}, {expected}) in the trainer config."
        )
    return model


def image_size(model):
    size = model.visual.image_size
    return size[0] if isinstance(size, (tuple, list)) else size
