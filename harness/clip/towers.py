"""Forward passes through CLIP's two towers, and the insertion of a method's branches into them.

Written against open_clip's modules, which are batch-first (N, L, D). A method never forks these
modules: it wraps some of them (`insert_branches`) so that each wrapped module's output is passed
through a branch of the method's own.

Block numbering, everywhere in this project: the blocks of a tower are numbered 1..depth, as in the papers
and in every ADAPTER_START / ADAPTER_END key, and 0 stands for the embeddings (MMA's slot 0). Every function
here that takes a block number uses it, and block ranges are inclusive (`first..last`), as the config keys
are. Only this module turns a block number into an index of open_clip's `resblocks`.
"""
from contextlib import contextmanager

import open_clip
import torch
import torch.nn as nn

from harness.errors import BackboneError

TEXT_EMBEDDING = "token_embedding"
VISUAL_EMBEDDING_NORM = "visual.ln_pre"


def text_block(k):
    """Module path of the text tower's block k (1-based)."""
    return f"transformer.resblocks.{k - 1}"


def visual_block(k):
    """Module path of the visual tower's block k (1-based)."""
    return f"visual.transformer.resblocks.{k - 1}"


def _blocks(resblocks, first, last):
    return resblocks[first - 1:last]


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


def text_stem(clip, token_ids):
    """Token and positional embeddings, cut after the longest prompt's end-of-text token: the input of block 1.

    With the causal mask, the feature at a prompt's end-of-text token depends only on the tokens up to it,
    so cutting the padding after the longest prompt gives the same features at a fraction of the cost.
    """
    length = int(token_ids.argmax(dim=-1).max()) + 1
    cast_dtype = clip.transformer.get_cast_dtype()
    x = clip.token_embedding(token_ids[:, :length]).to(cast_dtype)
    return x + clip.positional_embedding[:length].to(cast_dtype)


def text_blocks(clip, x, first=1, last=None):
    """Run the text hidden states `x` (the input of block `first`) through blocks first..last."""
    length = x.shape[1]
    for block in _blocks(clip.transformer.resblocks, first, last):
        x = block(x, attn_mask=clip.attn_mask[:length, :length])
    return x


def text_head(clip, x, token_ids):
    """ln_final on each prompt's end-of-text token, then the projection into the joint embedding space."""
    x = clip.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), token_ids.argmax(dim=-1)]
    return _project(x, clip.text_projection)


def encode_text(clip, token_ids, prefix=None):
    """Text features of tokenized prompts, computed only up to the longest prompt's end-of-text token.

    `prefix`, if given, is (k, the hidden states after block k) from `frozen_text_prefix`: the pass then starts at
    block k + 1.
    """
    done, x = prefix if prefix is not None else (0, text_stem(clip, token_ids))
    return text_head(clip, text_blocks(clip, x, done + 1), token_ids)


def frozen_blocks(clip, tower):
    """How many leading blocks of a tower carry no branch (the frozen prefix, the same at every step); None when
    the tower's embedding itself is branched (MMA's slot 0), so that not even the stem is frozen."""
    embedding = clip.token_embedding if tower == "text" else clip.visual.ln_pre
    if isinstance(embedding, BranchedModule):
        return None
    resblocks = clip.transformer.resblocks if tower == "text" else clip.visual.transformer.resblocks
    return next((k for k, block in enumerate(resblocks) if isinstance(block, BranchedModule)), len(resblocks))


def frozen_text_prefix(clip, token_ids, blocks):
    """(blocks, the hidden states after text blocks 1..blocks), computed without grad: the part of the text pass
    that no adapter changes, for `encode_text(..., prefix=...)`."""
    with torch.no_grad():
        return blocks, text_blocks(clip, text_stem(clip, token_ids), 1, blocks)


def image_stem(visual, image):
    """Patch embedding, class token, positional embedding and ln_pre: the tokens entering block 1."""
    return visual._embeds(image)


def image_blocks(visual, tokens, first=1, last=None):
    """Run the image tokens (the input of block `first`) through blocks first..last."""
    for block in _blocks(visual.transformer.resblocks, first, last):
        tokens = block(tokens)
    return tokens


def image_head(visual, tokens):
    """ln_post on the class token, then the projection into the joint embedding space."""
    pooled, _ = visual._pool(tokens)
    return _project(pooled, visual.proj)


def encode_image(visual, image):
    return image_head(visual, image_blocks(visual, image_stem(visual, image)))


def frozen_and_adapted_image_block(visual, k, tokens):
    """(frozen output, adapted output) of image block k on the same input tokens, the frozen block run once:
    a branched block's output is its frozen output passed through the branch (an unbranched block gives its
    output twice)."""
    block = visual.transformer.resblocks[k - 1]
    if not isinstance(block, BranchedModule):
        output = block(tokens)
        return output, output
    with torch.no_grad():
        frozen = block.module(tokens)
    return frozen, block.branch(block.module, tokens, frozen) if block.enabled else frozen


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
