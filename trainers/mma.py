"""MMA, the Multi-Modal Adapter (Yang et al., CVPR 2024), as its official code implements it.

Per adapted block k (START..END, numbered as in harness/clip/towers.py: 1..depth, 0 the embeddings) of both
towers: a text adapter (down d->r + ReLU, up r->d), a visual adapter (same with the visual width) and a shared
r->r layer + ReLU used by both towers at that block. Each adapter is a parallel branch that reads the block's own
(frozen) ln_1 of the block input and is added to the block output on every token, scaled by s = ADAPTER_SCALE.
Slot 0, used only when START is 0, adapts the embeddings: the raw token embeddings (text) and the output of ln_pre
(visual), without the gradient-scale trick. State-dict keys match the official checkpoints
(`text_adapter.{k}.down.0.weight`, ...).
"""
from collections import OrderedDict
from functools import partial

import torch
import torch.nn as nn

from harness.clip.prompts import context_prompts
from harness.clip.towers import (
    TEXT_EMBEDDING,
    VISUAL_EMBEDDING_NORM,
    num_blocks,
    text_block,
    text_width,
    visual_block,
    visual_width,
)
from harness.clip_trainer import CLIPAdapterTrainer
from harness.config import register_trainer_node
from harness.engine import TRAINER_REGISTRY
from harness.errors import ConfigError

MMA_DEFAULTS = {
    "TEXT_CTX_INIT": "a photo of a",
    "PREC": "amp",
    "ADAPTER_START": 5,
    "ADAPTER_END": 12,
    "ADAPTER_DIM": 32,
    "ADAPTER_SCALE": 0.001,
}
register_trainer_node("MMA", MMA_DEFAULTS)

TOWERS = ("text", "visual")


class GradientScale(torch.autograd.Function):
    """Identity in the forward pass; multiplies the gradient by `scale` in the backward pass."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * ctx.scale, None


def scale_gradient(x, scale):
    return GradientScale.apply(x, scale)


def bottleneck(width, dim):
    """down (Linear + ReLU) then up (Linear): one tower's adapter at one block."""
    return nn.Sequential(OrderedDict([
        ("down", nn.Sequential(nn.Linear(width, dim), nn.ReLU())),
        ("up", nn.Linear(dim, width)),
    ]))


def init_linear_layers(module):
    """The official initialisation: Kaiming normal (fan_out, ReLU) weights, zero biases."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(layer.bias)


def adapter_slots(slots, num_slots, build):
    """A ModuleList with `build()` at each slot in `slots` and None elsewhere (the official layout)."""
    return nn.ModuleList([build() if k in slots else None for k in range(num_slots)])


class MultiModalAdapter(nn.Module):
    """Everything MMA trains; registered (and saved) as `adapter_learner`."""

    def __init__(self, text_dim, visual_dim, depth, start, end, dim, scale):
        super().__init__()
        self.slots = range(start, end + 1)
        self.scale = float(scale)
        self.text_adapter = adapter_slots(self.slots, depth + 1, lambda: bottleneck(text_dim, dim))
        self.visual_adapter = adapter_slots(self.slots, depth + 1, lambda: bottleneck(visual_dim, dim))
        self.shared_adapter = adapter_slots(self.slots, depth + 1,
                                            lambda: nn.Sequential(nn.Linear(dim, dim), nn.ReLU()))
        init_linear_layers(self)

    def tower_adapters(self, tower):
        return self.text_adapter if tower == "text" else self.visual_adapter

    def branches(self, clip):
        branches = {}
        for k in self.slots:
            if k == 0:
                branches[TEXT_EMBEDDING] = partial(self.embedding_branch, "text")
                branches[VISUAL_EMBEDDING_NORM] = partial(self.embedding_branch, "visual")
            else:
                branches[text_block(k)] = partial(self.block_branch, "text", k)
                branches[visual_block(k)] = partial(self.block_branch, "visual", k)
        return branches

    def adaptation(self, tower, k, hidden):
        """The adapter's contribution at slot k from the down-projected features `hidden`."""
        return self.tower_adapters(tower)[k].up(self.shared_adapter[k](hidden)) * self.scale

    def block_branch(self, tower, k, block, x, output):
        # Gradient scaling by s before and 1/s after: adapter weights get gradients as if s were 1, while the
        # gradient sent back into the residual stream is that of the plain s-scaled branch.
        z = block.ln_1(scale_gradient(x, self.scale))
        y = self.adaptation(tower, k, self.tower_adapters(tower)[k].down(z))
        return output + scale_gradient(y, 1.0 / self.scale)

    def embedding_branch(self, tower, module, x, embedding):
        return embedding + self.adaptation(tower, 0, self.tower_adapters(tower)[0].down(embedding))


def check_adapter_range(cfg_node, node_name, depth):
    start, end = cfg_node.ADAPTER_START, cfg_node.ADAPTER_END
    if not 0 <= start <= end <= depth:
        raise ConfigError(
            f"TRAINER.{node_name}.ADAPTER_START/END are {start}/{end}, but the backbone has {depth} blocks: "
            f"use 0 <= START <= END <= {depth} (1-based blocks; 0 adapts the embeddings)."
        )


@TRAINER_REGISTRY.register()
class MMA(CLIPAdapterTrainer):
    config_node = "MMA"

    def class_prompts(self, classnames):
        return context_prompts(self.method_cfg.TEXT_CTX_INIT, classnames)

    def build_adapter(self, clip):
        node = self.method_cfg
        depth = num_blocks(clip)
        check_adapter_range(node, self.config_node, depth)
        return MultiModalAdapter(text_width(clip), visual_width(clip), depth, node.ADAPTER_START, node.ADAPTER_END,
                                 node.ADAPTER_DIM, node.ADAPTER_SCALE)
