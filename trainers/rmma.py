"""R-MMA (WACV 2026), a recurrent multi-modal adapter, from its poster's equations (see docs/RMMA.md).

One cell, whose weights are reused at every adapted block of both towers, carries a per-token latent from block
to block. At block l, with the block's frozen output tokens i_f (t_f for text), in the poster's notation:
    v_I = W_Iu v^(l-1)                              modality-aware routing (latent -> tower width)
    v~_I = Attention(i_f, v_I)                      alignment with the block's frozen tokens
    v^(l) = W_F [W_Id v~_I ; W_Td v~_T]             down-maps and fusion into the next latent
    i^(l) = i_f + alpha R_I(v^(l))                  injection at the block output (R_I read as the routing map)
and the loss is cross-entropy + lambda L_sep, L_sep = ||W_Iu W_Tu^T||_F + ||W_Id^T W_Td||_F. By default (FUSION tied)
each stream (an image, or a class prompt) only ever meets its own tower's tokens; with FUSION joint each image's
latent also takes in the class prompts' text latent of the same block. Either way no prediction depends on another
image in the batch, and class text features stay cacheable (text never reads the image tower). Where the poster is
silent, the reading taken is stated where it is implemented and each alternative is a TRAINER.RMMA option.
"""
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

from harness.clip.prompts import context_prompts
from harness.clip.towers import num_blocks, text_block, text_width, visual_block, visual_width
from harness.clip_trainer import CLIPAdapterTrainer
from harness.config import register_trainer_node
from harness.engine import TRAINER_REGISTRY
from harness.errors import ConfigError
from trainers.mma import TOWERS

register_trainer_node("RMMA", {
    "TEXT_CTX_INIT": "a photo of a",
    "PREC": "amp",
    # First adapted block (1-based); the cell runs at every block from there to the last.
    "ADAPTER_START": 1,
    "LATENT_DIM": 64,
    # alpha of the injection x + alpha * R(...).
    "ADAPTER_SCALE": 0.1,
    # lambda of L_sep; 0 is the poster's "w/o L_sep".
    "SEPARATION_WEIGHT": 0.6,
    # learned (low-rank single-head), parameter_free, or off (the poster's "w/o attention").
    "ATTENTION": "learned",
    # False: the poster's "w/o routing" (no routing maps; each tower reads the latent through its down-map's transpose).
    "ROUTING": True,
    # tied (one d x d W_F for both towers), untied (the literal 2d x d W_F, absent partner zero), joint (the literal
    # W_F; the image half meets the class prompts' text latent of the same block), or off ("w/o fusion").
    "FUSION": "tied",
    # False: gradients reach the cell through the latent recurrence only, never back through the frozen blocks.
    "BACKBONE_GRADIENT": False,
})

ATTENTION_FORMS = ("learned", "parameter_free", "off")
FUSION_FORMS = ("tied", "untied", "joint", "off")
# The poster's fusion input is [image ; text]: the image stream fills the first half of an untied W_F.
FUSION_HALF = {"visual": 0, "text": 1}


class LowRankAttention(nn.Module):
    """Single-head attention in a `dim`-dimensional space: queries from the frozen tokens, keys and values from
    the routed latent tokens, the result projected back to the tower width."""

    def __init__(self, width, dim):
        super().__init__()
        self.query = nn.Linear(width, dim)
        self.key_value = nn.Linear(width, 2 * dim)
        self.output = nn.Linear(dim, width)

    def forward(self, frozen, routed, causal):
        key, value = self.key_value(routed).chunk(2, dim=-1)
        return self.output(F.scaled_dot_product_attention(self.query(frozen), key, value, is_causal=causal))


def parameter_free_attention(frozen, routed, causal):
    return F.scaled_dot_product_attention(frozen, routed, routed, is_causal=causal)


class RecurrentAdapter(nn.Module):
    """Everything R-MMA trains: one cell shared by all adapted blocks; registered (and saved) as `adapter_learner`.

    The latent is per-forward state: each tower's stream starts at the first adapted block and is handed from
    block to block in `_streams`, which the last block empties, so nothing outlives a forward pass.
    """

    def __init__(self, text_dim, visual_dim, depth, start, dim, scale, attention="learned", routing=True,
                 fusion="tied", backbone_gradient=False):
        super().__init__()
        widths = {"text": text_dim, "visual": visual_dim}
        self.depth = depth
        self.blocks = range(start, depth + 1)
        self.scale = float(scale)
        self.attention_form = attention
        self.backbone_gradient = backbone_gradient
        self.down = nn.ModuleDict({tower: nn.Linear(widths[tower], dim) for tower in TOWERS})
        self.routing = nn.ModuleDict({tower: nn.Linear(dim, widths[tower]) for tower in TOWERS}) if routing else None
        self.attention = (nn.ModuleDict({tower: LowRankAttention(widths[tower], dim) for tower in TOWERS})
                          if attention == "learned" else None)
        self.fusion_form = fusion
        self.fusion = None if fusion == "off" else nn.Linear(dim if fusion == "tied" else 2 * dim, dim)
        # FUSION joint: each prompt's end-of-text position (set_class_prompts), and the class prompts' text latent
        # per block from the latest text pass, which the image pass reads (so a text pass must come first).
        self._end_of_text = None
        self._text_context = {}
        if routing:
            # Zero routing maps inject nothing: training starts from frozen CLIP.
            for layer in self.routing.values():
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
        self._streams = {}

    def branches(self, clip):
        branches = {}
        for k in self.blocks:
            branches[text_block(k)] = partial(self.block_branch, "text", k)
            branches[visual_block(k)] = partial(self.block_branch, "visual", k)
        return branches

    def route(self, tower, latent):
        """W_u v: the latent in the tower's width (without routing: the transpose of the tower's down-map)."""
        if self.routing is None:
            return latent @ self.down[tower].weight
        return self.routing[tower](latent)

    def align(self, tower, frozen, routed):
        """v~ = frozen + Attention(frozen, routed), a cross-attention layer with its residual, so each block's
        frozen tokens enter the latent. Text attends causally, which keeps truncated text encoding exact."""
        if self.attention_form == "off":
            return frozen + routed
        causal = tower == "text"
        if self.attention_form == "learned":
            return frozen + self.attention[tower](frozen, routed, causal)
        return frozen + parameter_free_attention(frozen, routed, causal)

    def set_class_prompts(self, token_ids):
        """FUSION joint reads each class prompt's latent at its end-of-text token, the token CLIP's text feature
        is taken from: tell the adapter where those are."""
        self._end_of_text = token_ids.argmax(dim=-1)

    def text_context(self, k, down_mapped):
        """The class prompts' text latent at block k: W_Td v~_T at each prompt's end-of-text token, averaged over
        the classes (one d-vector, the same for every image)."""
        if self._end_of_text is None:
            raise RuntimeError("R-MMA's FUSION joint needs the class prompts' token ids: call set_class_prompts().")
        end_of_text = self._end_of_text.to(down_mapped.device)
        return down_mapped[torch.arange(len(end_of_text), device=down_mapped.device), end_of_text].mean(dim=0)

    def fuse(self, tower, down_mapped, k=None):
        """v^(l) = W_F [W_Id v~_I ; W_Td v~_T]. tied / untied: each stream fills its own half (the other tower's is
        absent). joint: a text stream fills its half and leaves the class prompts' text latent of block k for the
        image pass, whose streams fill the image half and meet that text latent in the other."""
        if self.fusion_form == "off":
            return down_mapped
        if self.fusion_form == "tied":
            return self.fusion(down_mapped)
        dim = down_mapped.shape[-1]
        half = FUSION_HALF[tower]
        fused = F.linear(down_mapped, self.fusion.weight[:, half * dim:(half + 1) * dim], self.fusion.bias)
        if self.fusion_form != "joint":
            return fused
        if tower == "text":
            self._text_context[k] = self.text_context(k, down_mapped)
            return fused
        if k not in self._text_context:
            raise RuntimeError(f"R-MMA's FUSION joint: no text latent for block {k}; encode the class prompts before "
                               "the images.")
        text_half = self.fusion.weight[:, FUSION_HALF["text"] * dim:(FUSION_HALF["text"] + 1) * dim]
        return fused + F.linear(self._text_context[k].to(fused.dtype), text_half)

    def cell(self, tower, frozen, routed=None, k=None):
        """One step of the recurrence at block k: the next latent, routed into the tower (routed=None: the first
        block, where no latent exists yet, so nothing is routed or aligned)."""
        aligned = frozen if routed is None else self.align(tower, frozen, routed)
        # Normalising before the down-map keeps the latent's scale from compounding over the blocks.
        aligned = F.layer_norm(aligned, aligned.shape[-1:])
        return self.route(tower, self.fuse(tower, self.down[tower](aligned), k))

    def block_branch(self, tower, k, block, x, output):
        # The shared weights see every depth's tokens at the same scale.
        frozen = F.layer_norm(output, output.shape[-1:])
        routed = self.cell(tower, frozen, None if k == self.blocks.start else self._take_stream(tower, k), k)
        if k < self.depth:
            self._streams[tower] = (k, routed)
        adapted = output + self.scale * routed.to(output.dtype)
        if not self.backbone_gradient and k < self.depth:
            # The next blocks see the adapted tokens, but the gradient reaches the cell only through the latent.
            return adapted.detach()
        return adapted

    def _take_stream(self, tower, k):
        block, routed = self._streams.pop(tower, (None, None))
        if block != k - 1:
            raise RuntimeError(f"R-MMA's {tower} latent for block {k} must come from block {k - 1} of the same "
                               f"forward pass (found {block}): run the tower from its first adapted block.")
        return routed

    def separation_loss(self):
        """L_sep: the two towers read (routing) and write (down-maps) orthogonal subspaces of the latent.

        The poster's W_Iu^T W_Tu does not type-check (768 vs 512 rows); the cross-Gram over the latent axis does.
        """
        loss = torch.linalg.matrix_norm(self.down["visual"].weight.t() @ self.down["text"].weight)
        if self.routing is not None:
            loss = loss + torch.linalg.matrix_norm(self.routing["visual"].weight @ self.routing["text"].weight.t())
        return loss


def check_rmma_cfg(node, depth):
    def fail(key, value, fix):
        raise ConfigError(f"TRAINER.RMMA.{key} is {value!r}: {fix}")

    if not 1 <= node.ADAPTER_START <= depth:
        fail("ADAPTER_START", node.ADAPTER_START, f"use a block from 1 to {depth} (1-based).")
    if node.LATENT_DIM < 1:
        fail("LATENT_DIM", node.LATENT_DIM, "use a positive latent size (the poster's is 64).")
    if node.ADAPTER_SCALE <= 0:
        fail("ADAPTER_SCALE", node.ADAPTER_SCALE, "use a positive alpha (the poster's is 0.1).")
    if node.SEPARATION_WEIGHT < 0:
        fail("SEPARATION_WEIGHT", node.SEPARATION_WEIGHT, "use lambda >= 0 (0.6 in the poster; 0 drops L_sep).")
    if node.ATTENTION not in ATTENTION_FORMS:
        fail("ATTENTION", node.ATTENTION, f"choose one of {', '.join(ATTENTION_FORMS)}.")
    if node.FUSION not in FUSION_FORMS:
        fail("FUSION", node.FUSION, f"choose one of {', '.join(FUSION_FORMS)}.")


@TRAINER_REGISTRY.register()
class RMMA(CLIPAdapterTrainer):
    """R-MMA on the shared plumbing; MMA's hand-written class prompts."""

    config_node = "RMMA"

    def class_prompts(self, classnames):
        return context_prompts(self.method_cfg.TEXT_CTX_INIT, classnames)

    def build_adapter(self, clip):
        node = self.method_cfg
        depth = num_blocks(clip)
        check_rmma_cfg(node, depth)
        return RecurrentAdapter(text_width(clip), visual_width(clip), depth, node.ADAPTER_START, node.LATENT_DIM,
                                node.ADAPTER_SCALE, attention=node.ATTENTION, routing=node.ROUTING,
                                fusion=node.FUSION, backbone_gradient=node.BACKBONE_GRADIENT)

    def build_model(self):
        super().build_model()
        self.model.adapter.set_class_prompts(self.model.prompt_tokens)

    def compute_loss(self, image, label):
        loss, summary = super().compute_loss(image, label)
        if self.method_cfg.SEPARATION_WEIGHT > 0:
            separation = self.model.adapter.separation_loss()
            loss = loss + self.method_cfg.SEPARATION_WEIGHT * separation
            summary = {**summary, "loss": loss.item(), "separation": separation.item()}
        return loss, summary
