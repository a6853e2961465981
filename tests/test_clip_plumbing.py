"""Building CLIP, encoding text with exact truncation, and inserting branches into the towers."""
import copy

import open_clip
import pytest
import torch
import torch.nn as nn

import harness.clip.backbones as backbones
from harness.clip.backbones import architecture_of_config, check_weights_fit, load_clip, openai_checkpoint_path
from harness.clip.towers import (
    branches_disabled,
    encode_image,
    encode_text,
    insert_branches,
    text_block,
    tokenize,
    visual_block,
)
from harness.errors import BackboneError

PROMPTS = ["a photo of a dog.", "cat", "a photo of a very large and rather unusual kind of aircraft."]


@pytest.fixture(scope="module")
def tiny():
    return load_clip("tiny").eval()


def test_tiny_backbone_is_the_same_model_in_every_run(tiny):
    again = load_clip("tiny")
    for (name, p), (_, q) in zip(tiny.state_dict().items(), again.state_dict().items()):
        assert torch.equal(p, q), name
    assert tiny.logit_scale.exp().item() == pytest.approx(100.0)


def test_truncated_text_encoding_equals_the_full_77_token_pass(tiny):
    model = load_clip("tiny").double().eval()
    tokens = tokenize(PROMPTS)
    with torch.no_grad():
        full = model.encode_text(tokens)
        truncated = encode_text(model, tokens)
    assert int(tokens.argmax(-1).max()) + 1 < 77
    assert torch.allclose(truncated, full, rtol=0, atol=1e-12)


def test_image_encoding_equals_open_clip_visual_forward(tiny):
    image = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(encode_image(tiny.visual, image), tiny.visual(image))


class ZeroInitBranch(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.linear = nn.Linear(width, width)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def __call__(self, block, x, output):
        return output + self.linear(block.ln_1(x))


def test_zero_initialised_branches_leave_clip_unchanged_and_receive_gradients():
    clip = load_clip("tiny").eval()
    image, tokens = torch.randn(2, 3, 32, 32), tokenize(PROMPTS)
    with torch.no_grad():
        image_before, text_before = encode_image(clip.visual, image), encode_text(clip, tokens)
    text_branch, visual_branch = ZeroInitBranch(64), ZeroInitBranch(64)
    insert_branches(clip, {text_block(2): text_branch.__call__, visual_block(3): visual_branch.__call__})

    image_after, text_after = encode_image(clip.visual, image), encode_text(clip, tokens)
    assert torch.equal(image_after, image_before)
    assert torch.equal(text_after, text_before)
    (image_after.sum() + text_after.sum()).backward()
    assert text_branch.linear.weight.grad.abs().sum() > 0
    assert visual_branch.linear.weight.grad.abs().sum() > 0
    assert not any(name.endswith("linear.weight") for name, _ in clip.named_parameters())


def test_disabled_branches_give_the_plain_model():
    clip = load_clip("tiny").eval()
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain = encode_image(clip.visual, image)
        insert_branches(clip, {visual_block(1): lambda block, x, output: output + 1.0})
        assert not torch.equal(encode_image(clip.visual, image), plain)
        with branches_disabled(clip):
            assert torch.equal(encode_image(clip.visual, image), plain)


def write_openai_torchscript_checkpoint(model, path):
    """OpenAI's format: a TorchScript archive of the whole fp16 model, whose state dict has no attn_mask."""
    model = model.half().eval()
    del model._buffers["attn_mask"]
    traced = torch.jit.trace_module(model, {"encode_image": (torch.randn(1, 3, 32, 32).half(),)}, check_trace=False)
    traced.save(str(path))


def test_openai_torchscript_checkpoint_loads_from_the_clip_cache(tmp_path, monkeypatch):
    # A real ViT-B/16 file is 335 MB: the loader is checked on a tiny one named as ViT-B/16, so ViT-B/16 has to stand
    # for the tiny architecture here (the architecture check itself is tested below).
    monkeypatch.setattr(backbones, "architecture_of_config", lambda architecture: architecture_of_config("tiny"))
    source = load_clip("tiny")
    monkeypatch.setenv("CLIP_CACHE_DIR", str(tmp_path))
    path = openai_checkpoint_path("ViT-B/16")
    assert path == str(tmp_path / "ViT-B-16.pt")
    write_openai_torchscript_checkpoint(load_clip("tiny"), path)

    loaded = load_clip("ViT-B/16").eval()
    assert next(loaded.parameters()).dtype == torch.float32
    reference = source.half().float().eval()
    image, tokens = torch.randn(2, 3, 32, 32), tokenize(PROMPTS)
    with torch.no_grad():
        assert torch.allclose(encode_image(loaded.visual, image), encode_image(reference.visual, image), atol=1e-5)
        assert torch.allclose(encode_text(loaded, tokens), encode_text(reference, tokens), atol=1e-5)


def test_missing_openai_checkpoint_names_the_file_and_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIP_CACHE_DIR", str(tmp_path))
    with pytest.raises(BackboneError) as error:
        load_clip("ViT-B/16")
    message = str(error.value)
    assert str(tmp_path / "ViT-B-16.pt") in message
    assert "openaipublic.azureedge.net" in message and "MODEL.BACKBONE.WEIGHTS" in message


def clip_state_dict(architecture, device="cpu", **changes):
    """The state dict of an open_clip CLIP of `architecture` with some config fields changed (meta: shapes only)."""
    config = copy.deepcopy(open_clip.get_model_config(architecture))
    for path, value in changes.items():
        tower, _, field = path.rpartition(".")
        (config[tower] if tower else config)[field] = value
    with torch.device(device):
        return open_clip.model.CLIP(**config).state_dict()


@pytest.mark.parametrize("change, difference", [
    ({"vision_cfg.width": 128}, "vision width 64 vs 128"),
    ({"vision_cfg.layers": 2}, "vision blocks 4 vs 2"),
    ({"vision_cfg.patch_size": 4}, "patch size 8 vs 4"),
    ({"vision_cfg.image_size": 64}, "image size 32 vs 64"),
    ({"text_cfg.width": 32}, "text width 64 vs 32"),
    ({"text_cfg.layers": 3}, "text blocks 4 vs 3"),
    ({"embed_dim": 48}, "embedding size 64 vs 48"),
])
def test_weights_of_another_architecture_are_refused_naming_the_backbone_the_file_and_the_difference(
        change, difference):
    check_weights_fit("tiny", "tiny", clip_state_dict("tiny", "meta"), "same.pt")
    with pytest.raises(BackboneError) as error:
        check_weights_fit("tiny", "tiny", clip_state_dict("tiny", "meta", **change), "other.pt")
    message = str(error.value)
    assert "MODEL.BACKBONE.NAME tiny" in message and "MODEL.BACKBONE.WEIGHTS other.pt" in message
    assert difference in message and "\n" not in message


def test_a_coop_name_with_weights_of_another_coop_backbone_suggests_that_name():
    with pytest.raises(BackboneError, match=r"patch size 16 vs 32.*set MODEL.BACKBONE.NAME ViT-B/32\.$"):
        check_weights_fit("ViT-B/16", "ViT-B-16", clip_state_dict("ViT-B-32", "meta"), "vit_b32.pt")


@pytest.mark.parametrize("name", ["ViT-B/16", "ViT-B-16"])
def test_loading_a_checkpoint_file_of_another_architecture_stops_before_any_weights_are_used(tmp_path, name):
    path = tmp_path / "tiny_clip.pt"
    torch.save(clip_state_dict("tiny"), path)
    expected = rf"WEIGHTS {path} do not fit MODEL.BACKBONE.NAME {name} .*vision width 768 vs 64"
    with pytest.raises(BackboneError, match=expected):
        load_clip(name, str(path))


def test_unknown_backbone_lists_the_choices():
    with pytest.raises(BackboneError, match="Unknown backbone.*ViT-B/16.*tiny"):
        load_clip("ViT-B/17")


def test_cached_text_features_follow_the_branches_state():
    from harness.clip.adapted_clip import AdaptedCLIP

    class ShiftText(nn.Module):
        def branches(self, clip):
            return {text_block(1): lambda block, x, output: output + 1.0}

    model = AdaptedCLIP(load_clip("tiny"), PROMPTS, ShiftText()).eval()
    with torch.no_grad():
        adapted = model.text_features()
        with branches_disabled(model.clip):
            frozen = model.text_features()
            plain = encode_text(model.clip, model.prompt_tokens)
            assert torch.equal(frozen, torch.nn.functional.normalize(plain, dim=-1))
        assert not torch.equal(frozen, adapted)
        assert torch.equal(model.text_features(), adapted)
