"""Frozen CLIP carrying a method's trainable adapter; `forward(image)` gives logits over the class prompts."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from harness import run_clock
from harness.clip.towers import (
    branches_enabled,
    check_supported,
    encode_image,
    encode_text,
    frozen_blocks,
    frozen_text_prefix,
    insert_branches,
    tokenize,
)
from harness.process_cache import KeyedCache

# A warm worker's frozen text prefixes, by frozen weights, prompts, frozen blocks, device and dtypes.
FROZEN_TEXT_PREFIXES = KeyedCache(capacity=8)


def weights_version(module):
    """Changes whenever a parameter or buffer of `module` is modified in place or replaced."""
    return tuple((t.data_ptr(), t._version, t.dtype) for t in [*module.parameters(), *module.buffers()])


class AdaptedCLIP(nn.Module):
    """CLIP (frozen) + `adapter` (all trainable parameters; None for zero-shot CLIP).

    The adapter says where it plugs into CLIP: `adapter.branches(clip)` returns {module path: branch}
    (see towers.insert_branches). Class text features are recomputed at every training step and cached at
    evaluation; the cache is keyed on the adapter's weights, so any optimizer step or checkpoint load
    recomputes them. The text blocks before the first adapted one give the same hidden states at every step:
    they run once per device, weight dtype and autocast setting (the frozen text prefix), and each text pass
    starts after them (`cache_frozen_text_prefix = False` runs every pass from the start, for comparison).
    """

    def __init__(self, clip, prompts, adapter=None):
        super().__init__()
        check_supported(clip)
        self.clip = clip
        self.adapter = adapter
        self.prompts = list(prompts)
        if adapter is not None:
            insert_branches(clip, adapter.branches(clip))
        self.register_buffer("prompt_tokens", tokenize(self.prompts), persistent=False)
        self._text_cache_key = None
        self._text_cache = None
        self.cache_frozen_text_prefix = True
        self._frozen_text_blocks = frozen_blocks(clip, "text")
        self._text_prefix_key = None
        self._text_prefix = None

    @property
    def dtype(self):
        return self.clip.visual.conv1.weight.dtype

    @property
    def logit_scale(self):
        return self.clip.logit_scale.exp()

    def encode_text(self):
        return encode_text(self.clip, self.prompt_tokens, self.frozen_text_prefix())

    def frozen_text_prefix(self):
        """The class prompts' hidden states after the frozen text blocks, or None where there are none."""
        if not (self.cache_frozen_text_prefix and self._frozen_text_blocks):
            return None
        device = self.prompt_tokens.device
        autocast_dtype = torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else None
        key = (device, self.clip.token_embedding.weight.dtype, autocast_dtype)
        if key != self._text_prefix_key:
            self._text_prefix = self._shared_text_prefix(key)
            self._text_prefix_key = key
        return self._text_prefix

    def _shared_text_prefix(self, key):
        """The prefix from a warm worker's earlier run of the same frozen weights and prompts, else computed."""
        def compute():
            with run_clock.current().phase("text"):
                return frozen_text_prefix(self.clip, self.prompt_tokens, self._frozen_text_blocks)

        weights = getattr(self.clip, "frozen_weights_key", None)
        if weights is None:  # a CLIP not built by build_frozen_clip: nothing says which weights it holds
            return compute()
        return FROZEN_TEXT_PREFIXES.get((weights, tuple(self.prompts), self._frozen_text_blocks, *key), compute)

    def encode_image(self, image):
        return encode_image(self.clip.visual, image.to(self.dtype))

    def text_features(self):
        """L2-normalised class text features."""
        if self.adapter is not None and self.adapter.training:
            return F.normalize(self.encode_text(), dim=-1)
        key = (self.prompt_tokens.device, weights_version(self.adapter) if self.adapter is not None else (),
               branches_enabled(self.clip))
        if key != self._text_cache_key:
            with torch.no_grad():
                self._text_cache = F.normalize(self.encode_text(), dim=-1)
            self._text_cache_key = key
        return self._text_cache

    def logits(self, image_features, text_features):
        image_features = F.normalize(image_features, dim=-1)
        return self.logit_scale * image_features @ text_features.t().to(image_features.dtype)

    def forward(self, image):
        # Text first: an adapter may let the image pass read what the class prompts' pass left (R-MMA's FUSION joint).
        text_features = self.text_features()
        return self.logits(self.encode_image(image), text_features)
