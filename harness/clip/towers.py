"""Forward passes through CLIP's two towers, and the insertion of a method's branches into them.

Written against open_clip's modules, which are batch-first (N, L, D). A method never forks these
modules: it wraps some of them (`insert_branches`) so that each wrapped module's output is passed
through a branch of the method's own.
"""
from contextlib import contextmanager

import open_clip
import torch
import torch.nn as nn

from harness.errors import BackboneError

TEXT_EMBEDDING = "token_embedding"
VISUAL_EMBEDDING_NORM = "visual.ln_pre"


def text_block(index):
    """Module path of the text tower's block `index` (0-based)."""
    return f"transformer.resblocks.{index}"


def visual_block(index):
    """Module path of the visual tower's block `index` (0-based)."""
    return f"visual.transformer.resblocks.{index}"


def text_width(clip):
    return clip.transformer.width


def visual_width(clip):
    return clip.visual.transformer.width


def num_blocks(clip):
    """Blocks per tower; the methods here need both towers equally deep (as in every CLIP ViT)."""
    text_blocks, visual_blocks = len(clip.transformer.resblocks), len(clip.visual.transformer.resblocks)
    if text_blocks != visual_blocks:
        raise BackboneError(f"The text tower has {text_blocks} blocks and the visual tower {visual_blocks}; "
                            "the adapters here need towers of equal depth.")
    return text_blocks


def check_supported(clip):
    """The forward passes below assume OpenAI-style CLIP: argmax text pooling, batch-first, class-token pooling."""
    if getattr(clip, "text_pool_type", None) != "argmax" or not clip.transformer.batch_first:
        raise BackboneError("Only OpenAI-style CLIP text towers (argmax end-of-text pooling) are supported.")
    if clip.visual.attn_pool is not None or clip.visual.pool_type != "tok":
        raise BackboneError("Only class-token ViT image towers are supported.")


def tokenize(texts):
    """CLIP's BPE tokens, 77 per text: start token, text, end-of-text (the largest id), zero padding."""
    return open_clip.tokenize(texts)


def encode_text(clip, token_ids):
    """Text features of tokenized prompts, computed only up to the longest prompt's end-of-text token.

    With the causal mask, the feature at a prompt's end-of-text token depends only on the tokens up to it,
    so cutting the padding after the longest prompt gives the same features at a fraction of the cost.
    """
    end_of_text = token_ids.argmax(dim=-1)
    length = int(end_of_text.max()) + 1
    cast_dtype = clip.transformer.get_cast_dtype()
    x = clip.token_embedding(token_ids[:, :length]).to(cast_dtype)
    x = x + clip.positional_embedding[:length].to(cast_dtype)
    x = clip.transformer(x, attn_mask=clip.attn_mask[:length, :length])
    x = clip.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), end_of_text]
    return _project(x, clip.text_projection)


def image_stem(visual, image):
    """Patch embedding, class token, positional embedding and ln_pre: the tokens entering block 0."""
    return visual._embeds(image)


def image_blocks(visual, tokens, start=0, stop=None):
    """Run the image tokens through blocks start..stop-1 (0-based)."""
    for block in visual.transformer.resblocks[start:stop]:
        tokens = block(tokens)
    return tokens


def image_head(visual, tokens):
    """ln_post on the class token, then the projection into the joint embedding space."""
    pooled, _ = visual._pool(tokens)
    return _project(pooled, visual.proj)


def encode_image(visual, image):
    return image_head(visual, image_blocks(visual, image_stem(visual, image)))


def _project(x, projection):
    if projection is None:
        return x
    return projection(x) if isinstance(projection, nn.Linear) else x @ projection


class BranchedModule(nn.Module):
    """A frozen CLIP module followed by a method's branch: output = branch(module, input, module(input)).

    The branch is a plain callable (typically a bound method of the method's adapter module), so its
    parameters stay out of CLIP's module tree and are owned, saved and optimised by the adapter alone.
    """

    def __init__(self, module, branch):
        super().__init__()
        self.module = module
        self.branch = branch
        self.enabled = True

    def __getattr__(self, name):
        # open_clip reads attributes of the modules it owns (the text tower asks block 0 for get_weight_dtype):
        # the wrapper passes them through to the wrapped module.
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":
                raise
            return getattr(self.module, name)

    def forward(self, x, *args, **kwargs):
        output = self.module(x, *args, **kwargs)
        return self.branch(self.module, x, output) if self.enabled else output


def insert_branches(clip, branches):
    """Wrap each module named in `branches` ({module path: branch}) in a BranchedModule, in place."""
    for path, branch in branches.items():
        parent_path, _, name = path.rpartition(".")
        parent = clip.get_submodule(parent_path) if parent_path else clip
        module = parent.get_submodule(name)
        if isinstance(module, BranchedModule):
            raise ValueError(f"{path} already carries a branch")
        setattr(parent, name, BranchedModule(module, branch))


def branches_enabled(clip):
    """Which inserted branches currently run (a tuple of flags, in module order)."""
    return tuple(module.enabled for module in clip.modules() if isinstance(module, BranchedModule))


@contextmanager
def branches_disabled(clip):
    """Run the plain frozen CLIP inside this block (every inserted branch bypassed)."""
    wrapped = [module for module in clip.modules() if isinstance(module, BranchedModule)]
    for module in wrapped:
        module.enabled = False
    try:
        yield
    finally:
        for module in wrapped:
            module.enabled = True
