"""The frozen text prefix: the text blocks before the first adapted one run once per class list, device and
precision, and every text pass that starts after them gives exactly the features of the full pass."""
import pytest
import torch
import torch.nn.functional as F

from harness.clip.adapted_clip import AdaptedCLIP
from harness.clip.backbones import load_clip
from harness.clip.towers import encode_text, frozen_blocks, tokenize
from trainers.mma import MultiModalAdapter

PROMPTS = ["a photo of a dog.", "a photo of a cat.", "a photo of a very large and rather unusual kind of aircraft."]


def adapted_tiny(start, dtype=torch.float64):
    """The frozen tiny CLIP with MMA's adapters in blocks start..4, their up-projections random (not zero)."""
    torch.manual_seed(0)
    clip = load_clip("tiny").to(dtype).requires_grad_(False).eval()
    adapter = MultiModalAdapter(64, 64, 4, start, 4, 8, 0.1).to(dtype)
    with torch.no_grad():
        for k in adapter.slots:
            adapter.text_adapter[k].up.weight.normal_()
    return AdaptedCLIP(clip, PROMPTS, adapter)


def count_block_runs(model, k):
    runs = []
    model.clip.transformer.resblocks[k - 1].register_forward_hook(lambda *args: runs.append(k))
    return runs


@pytest.mark.parametrize("start, frozen", [(0, None), (1, 0), (3, 2)])
def test_the_frozen_prefix_is_the_text_blocks_before_the_first_adapted_one(start, frozen):
    assert frozen_blocks(adapted_tiny(start).clip, "text") == frozen


def test_text_features_and_gradients_equal_the_uncached_pass_in_float64():
    cached, uncached = adapted_tiny(3), adapted_tiny(3)
    uncached.cache_frozen_text_prefix = False
    results = []
    for model in (cached, uncached):
        model.adapter.train()
        features = [model.encode_text() for _ in range(2)]  # the second pass reads the cached prefix
        F.normalize(features[1], dim=-1).sum().backward()
        results.append((features, [p.grad for p in model.adapter.parameters() if p.grad is not None]))
    (cached_features, cached_grads), (uncached_features, uncached_grads) = results
    assert all(torch.equal(c, u) for c, u in zip(cached_features, uncached_features))
    assert len(cached_grads) == len(uncached_grads) > 0
    assert all(torch.equal(c, u) for c, u in zip(cached_grads, uncached_grads))
    with torch.no_grad():
        full_77_tokens = cached.clip.encode_text(tokenize(PROMPTS))
    assert torch.allclose(cached_features[1], full_77_tokens, rtol=0, atol=1e-12)


def test_frozen_blocks_run_once_across_training_steps_and_adapted_blocks_every_step():
    model = adapted_tiny(3)
    model.adapter.train()
    frozen_runs, adapted_runs = count_block_runs(model, 2), count_block_runs(model, 3)
    for _ in range(3):
        model.encode_text()
    assert len(frozen_runs) == 1 and len(adapted_runs) == 3


def test_the_prefix_is_recomputed_for_another_precision():
    model = adapted_tiny(3, dtype=torch.float32)
    model.adapter.train()
    frozen_runs = count_block_runs(model, 1)
    model.encode_text()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model.encode_text()
        model.encode_text()
    model.encode_text()
    assert len(frozen_runs) == 3
    assert torch.equal(model.encode_text(), encode_text(model.clip, model.prompt_tokens))
