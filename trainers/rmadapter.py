"""RMAdapter, the reconstruction-based multi-modal adapter (AAAI 2026, arXiv 2512.06811).

MMA's adapters (trainers/mma.py) with a second branch per adapted block. The adapter's down-projection
`x_down = act(z W_down + b)` (z: the tensor the block's down-projection reads, ln_1 of the block input) feeds
  (a) the adaptation branch, added to the block output exactly as in MMA (scale, gradient-scale trick, shared
      cross-modal layer), and
  (b) the reconstruction branch `rec(z) = act(x_down W_1 + b_1) W_2 + b_2` (depth 2), which only feeds the loss
      and is never run at evaluation.
Loss: L = L_ce + L_con + lambda1 L_rec^V + lambda2 L_rec^T. docs/RMAdapter.md maps each equation to the code
below and lists the values the paper leaves open, with their config keys.
"""
from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F

from harness.clip.towers import (
    branches_disabled,
    frozen_and_adapted_image_block,
    image_blocks,
    image_head,
    image_stem,
    num_blocks,
    text_width,
    visual_width,
)
from harness.config import register_trainer_node
from harness.engine import TRAINER_REGISTRY, compute_accuracy
from harness.errors import ConfigError
from trainers.mma import (
    MMA,
    MMA_DEFAULTS,
    MultiModalAdapter,
    adapter_slots,
    check_adapter_range,
    init_linear_layers,
    scale_gradient,
)

register_trainer_node("RMADAPTER", {
    **MMA_DEFAULTS,  # placement, scale, prompt and precision as MMA
    "ACTIVATION": "relu",
    "REC_TOWERS": "both",
    "REC_SHARED_PROJECTION": "down",
    "REC_DEPTH": 2,
    "REC_LOSS": "l2",
    "REC_VISUAL_WEIGHT": 1.0,
    "REC_TEXT_WEIGHT": 1.0,
    # How the reconstruction gradient meets MMA's gradient-scale trick (docs/RMAdapter.md, choice 17): "none" leaves
    # it as the loss gives it, "adapter" multiplies it by 1/ADAPTER_SCALE as the trick does the adaptation branch's.
    "REC_GRADIENT_SCALE": "none",
    "CONSISTENCY": True,
    "CONSISTENCY_IMAGE_WEIGHT": 10.0,
    "CONSISTENCY_TEXT_WEIGHT": 25.0,
})

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}
RECONSTRUCTED_TOWERS = {"both": ("text", "visual"), "visual": ("visual",), "text": ("text",), "none": ()}
SHARED_PROJECTIONS = ("down", "up", "none")
REC_DEPTHS = (1, 2, 3)
REC_GRADIENT_SCALES = ("none", "adapter")


def squared_error(reconstruction, target):
    return (reconstruction - target).pow(2).mean(dim=-1)


def absolute_error(reconstruction, target):
    return (reconstruction - target).abs().mean(dim=-1)


def cosine_error(reconstruction, target):
    return 1 - F.cosine_similarity(reconstruction, target, dim=-1)


# Per-token reconstruction errors (mean over features): the paper's L2 and its L1 / cosine ablation.
RECONSTRUCTION_ERRORS = {"l2": squared_error, "l1": absolute_error, "cosine": cosine_error}


def replace_relus(module, activation):
    """Swap every ReLU under `module` for a fresh `activation()` (MMA's modules hard-wire ReLU)."""
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU):
            setattr(module, name, activation())
        else:
            replace_relus(child, activation)


def reconstruction_branch(width, dim, depth, shared_projection, activation):
    """The reconstruction layers one tower owns at one block.

    `down` (width -> dim, act) unless the adapter's down-projection is shared; `hidden`, depth - 1 layers
    dim -> dim (act); `up` (dim -> width) unless the adapter's up-projection is shared.
    """
    branch = nn.Module()
    if shared_projection != "down":
        branch.down = nn.Sequential(nn.Linear(width, dim), activation())
    branch.hidden = nn.Sequential(*[layer for _ in range(depth - 1) for layer in (nn.Linear(dim, dim), activation())])
    if shared_projection != "up":
        branch.up = nn.Linear(dim, width)
    return branch


class ReconstructionAdapter(MultiModalAdapter):
    """MMA's adapter (same modules and state-dict keys) plus `reconstruction.<tower>.<slot>` branches."""

    def __init__(self, text_dim, visual_dim, depth, start, end, dim, scale, activation="relu",
                 towers=("text", "visual"), shared_projection="down", rec_depth=2, rec_loss="l2",
                 rec_gradient_scale="none"):
        super().__init__(text_dim, visual_dim, depth, start, end, dim, scale)
        activation = ACTIVATIONS[activation]
        replace_relus(self, activation)
        widths = {"text": text_dim, "visual": visual_dim}
        self.shared_projection = shared_projection
        self.reconstruction_error = RECONSTRUCTION_ERRORS[rec_loss]
        self.rec_gradient_multiplier = 1.0 / self.scale if rec_gradient_scale == "adapter" else 1.0
        self.reconstruction = nn.ModuleDict({
            tower: adapter_slots(self.slots, depth + 1, lambda width=widths[tower]: reconstruction_branch(
                width, dim, rec_depth, shared_projection, activation))
            for tower in towers
        })
        init_linear_layers(self.reconstruction)
        self._token_errors = None

    def reconstruction_parameters(self):
        return sum(p.numel() for p in self.reconstruction.parameters())

    @contextmanager
    def recording_reconstruction(self):
        """Inside, each adapted slot of a reconstructed tower appends its per-token reconstruction error
        (shape: batch x tokens) to the yielded {tower: [error per slot, in forward order]}. Outside (at
        evaluation in particular) the reconstruction branch is never run."""
        self._token_errors = {tower: [] for tower in self.reconstruction}
        try:
            yield self._token_errors
        finally:
            self._token_errors = None

    def reconstruct(self, tower, k, z):
        """rec(z) = act(x_down W_1 + b_1) W_2 + b_2 with x_down = act(z W_down + b) (paper, rec branch)."""
        branch, adapter = self.reconstruction[tower][k], self.tower_adapters(tower)[k]
        down = adapter.down if self.shared_projection == "down" else branch.down
        up = adapter.up if self.shared_projection == "up" else branch.up
        return up(branch.hidden(down(z)))

    def recording(self, tower):
        return self._token_errors is not None and tower in self._token_errors

    def record_reconstruction(self, tower, k, z):
        # z is detached: the loss reaches only this slot's reconstruction weights and the projection it shares,
        # never earlier blocks ("computed locally within each layer, without cross-layer backpropagation").
        reconstruction = self.reconstruct(tower, k, z)
        if self.rec_gradient_multiplier != 1.0:
            reconstruction = scale_gradient(reconstruction, self.rec_gradient_multiplier)
        error = self.reconstruction_error(reconstruction.float(), z.float())
        self._token_errors[tower].append(error)

    def block_branch(self, tower, k, block, x, output):
        if self.recording(tower):
            with torch.no_grad():
                z = block.ln_1(x)
            self.record_reconstruction(tower, k, z)
        return super().block_branch(tower, k, block, x, output)

    def embedding_branch(self, tower, module, x, embedding):
        if self.recording(tower):
            self.record_reconstruction(tower, 0, embedding.detach())
        return super().embedding_branch(tower, module, x, embedding)


def reconstruction_loss(token_errors, token_mask=None):
    """One tower's L_rec: the sum over its adapted slots of the mean per-token error, over the tokens that
    `token_mask` (batch x tokens) marks, or all tokens."""
    errors = torch.stack(token_errors)
    if token_mask is None:
        return errors.mean(dim=(1, 2)).sum()
    return (errors * token_mask).sum() / token_mask.sum()


def prompt_token_mask(prompt_tokens):
    """1 for each prompt's own tokens (start through end-of-text) among the positions the text tower computes
    (up to the longest prompt's end-of-text token, see towers.encode_text), 0 for padding."""
    end_of_text = prompt_tokens.argmax(dim=-1)
    positions = torch.arange(int(end_of_text.max()) + 1, device=prompt_tokens.device)
    return (positions[None, :] <= end_of_text[:, None]).float()


def check_rmadapter_cfg(node):
    choices = {
        "ACTIVATION": tuple(ACTIVATIONS),
        "REC_TOWERS": tuple(RECONSTRUCTED_TOWERS),
        "REC_SHARED_PROJECTION": SHARED_PROJECTIONS,
        "REC_DEPTH": REC_DEPTHS,
        "REC_LOSS": tuple(RECONSTRUCTION_ERRORS),
        "REC_GRADIENT_SCALE": REC_GRADIENT_SCALES,
    }
    for key, allowed in choices.items():
        if node[key] not in allowed:
            raise ConfigError(
                f"TRAINER.RMADAPTER.{key} is {node[key]!r}; choose one of {', '.join(map(str, allowed))}.")
    for key in ("REC_VISUAL_WEIGHT", "REC_TEXT_WEIGHT", "CONSISTENCY_IMAGE_WEIGHT", "CONSISTENCY_TEXT_WEIGHT"):
        if node[key] < 0:
            raise ConfigError(
                f"TRAINER.RMADAPTER.{key} is {node[key]}; loss weights must be >= 0 (0 removes the term from the loss)."
            )


@TRAINER_REGISTRY.register()
class RMAdapter(MMA):
    config_node = "RMADAPTER"

    def check_cfg(self, cfg):
        super().check_cfg(cfg)
        check_rmadapter_cfg(cfg.TRAINER.RMADAPTER)

    def build_adapter(self, clip):
        node = self.method_cfg
        depth = num_blocks(clip)
        check_adapter_range(node, self.config_node, depth)
        adapter = ReconstructionAdapter(
            text_width(clip), visual_width(clip), depth, node.ADAPTER_START, node.ADAPTER_END, node.ADAPTER_DIM,
            node.ADAPTER_SCALE, activation=node.ACTIVATION, towers=RECONSTRUCTED_TOWERS[node.REC_TOWERS],
            shared_projection=node.REC_SHARED_PROJECTION, rec_depth=node.REC_DEPTH, rec_loss=node.REC_LOSS,
            rec_gradient_scale=node.REC_GRADIENT_SCALE,
        )
        extra = adapter.reconstruction_parameters()
        print(f"Number of reconstruction parameters (RMAdapter's extra over MMA): {extra}")
        return adapter

    def build_model(self):
        super().build_model()
        self.text_token_mask = prompt_token_mask(self.model.prompt_tokens)
        self._frozen_text_features = None

    def frozen_text_features(self):
        """Frozen CLIP's normalised class text features: the text consistency target, computed once (on first
        use, so in the training step's precision)."""
        if self._frozen_text_features is None:
            with torch.no_grad(), branches_disabled(self.model.clip):
                self._frozen_text_features = F.normalize(self.model.encode_text(), dim=-1)
        return self._frozen_text_features

    def image_features_and_frozen_target(self, image):
        """Adapted and frozen-CLIP image features of the same batch.

        Nothing below the first adapted block is trainable, so the stem and those blocks run once, without
        grad, for both passes; so does the first adapted block's frozen computation, since the adapted block's
        output is its frozen output plus the adapter branch. With slot 0 (the embedding adapter) the stem itself
        is adapted: two full passes.
        """
        clip, visual = self.model.clip, self.model.clip.visual
        first = self.model.adapter.slots[0]
        if first == 0:
            adapted = self.model.encode_image(image)
            with torch.no_grad(), branches_disabled(clip):
                return adapted, self.model.encode_image(image)
        with torch.no_grad():
            tokens = image_blocks(visual, image_stem(visual, image.to(self.model.dtype)), 1, first - 1)
        frozen_tokens, adapted_tokens = frozen_and_adapted_image_block(visual, first, tokens)
        adapted = image_head(visual, image_blocks(visual, adapted_tokens, first + 1))
        with torch.no_grad(), branches_disabled(clip):
            return adapted, image_head(visual, image_blocks(visual, frozen_tokens, first + 1))

    def compute_loss(self, image, label):
        node = self.method_cfg
        with self.model.adapter.recording_reconstruction() as token_errors:
            text_features = self.model.text_features()
            if node.CONSISTENCY:
                image_features, frozen_image_features = self.image_features_and_frozen_target(image)
            else:
                image_features = self.model.encode_image(image)
        logits = self.model.logits(image_features, text_features)
        # L = L_ce + L_con + lambda1 L_rec^V + lambda2 L_rec^T
        terms = {"loss_ce": F.cross_entropy(logits, label)}
        if "visual" in token_errors:
            terms["loss_rec_visual"] = node.REC_VISUAL_WEIGHT * reconstruction_loss(token_errors["visual"])
        if "text" in token_errors:
            terms["loss_rec_text"] = node.REC_TEXT_WEIGHT * reconstruction_loss(token_errors["text"],
                                                                                 self.text_token_mask)
        if node.CONSISTENCY:
            # L_con = lambda3 |x^a - x| + lambda4 |w^a - w|: mean L1 between L2-normalised features (PromptSRC).
            image_consistency = F.l1_loss(F.normalize(image_features, dim=-1),
                                          F.normalize(frozen_image_features, dim=-1))
            terms["loss_con_image"] = node.CONSISTENCY_IMAGE_WEIGHT * image_consistency
            terms["loss_con_text"] = node.CONSISTENCY_TEXT_WEIGHT * F.l1_loss(text_features,
                                                                              self.frozen_text_features())
        loss = sum(terms.values())
        # One synchronisation for every logged value.
        values = torch.stack([loss.float(), *(term.float() for term in terms.values())]).tolist()
        summary = dict(zip(["loss", *terms], values))
        summary["acc"] = compute_accuracy(logits, label)[0].item()
        return loss, summary
