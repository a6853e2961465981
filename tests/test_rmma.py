"""R-MMA from its poster's equations: one cell at every adapted block, the latent it carries, L_sep, the ablations."""
import pytest
import torch
import torch.nn.functional as F

import trainers.rmma as rmma
from harness.clip.adapted_clip import AdaptedCLIP
from harness.clip.backbones import load_clip
from harness.clip.towers import (
    branches_disabled,
    encode_text,
    image_blocks,
    image_stem,
    num_blocks,
    text_width,
    tokenize,
    visual_block,
    visual_width,
)
from harness.errors import ConfigError
from tests.trainer_helpers import build_test_trainer, trainer_config_file

TRAIN_BASE = ["DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base"]
PROMPTS = ["a photo of a dog.", "a photo of a cat.", "a photo of a very large and rather unusual kind of aircraft."]
# ViT-B/16: text width 512, visual width 768, 12 blocks per tower.
VIT_B16 = (512, 768, 12)
# Trainable parameters for ViT-B/16 shapes, d = 64 (the published count is 0.48M; see docs/RMMA.md).
VIT_B16_PARAMETERS = {"learned": 498_752, "parameter_free": 169_408, "off": 169_408}
# FUSION untied and joint: W_F is 2d x d instead of d x d (+ 64 * 64 weights).
VIT_B16_JOINT_PARAMETERS = 502_848


def count(module):
    return sum(p.numel() for p in module.parameters())


def randomise_routing(adapter):
    """Routing starts at zero (the cell then injects nothing); random maps make every path visible."""
    with torch.no_grad():
        for layer in adapter.routing.values():
            layer.weight.normal_(0, 0.5)
            layer.bias.normal_(0, 0.5)


def adapted_tiny(start=1, **options):
    """The tiny CLIP (frozen, double precision) with an R-MMA cell whose routing maps are random."""
    torch.manual_seed(0)
    clip = load_clip("tiny").double().requires_grad_(False)
    adapter = rmma.RecurrentAdapter(text_width(clip), visual_width(clip), num_blocks(clip), start, 16, 0.1,
                                    **options).double()
    if adapter.routing is not None:
        randomise_routing(adapter)
    model = AdaptedCLIP(clip, PROMPTS, adapter)
    adapter.set_class_prompts(model.prompt_tokens)
    return model


def test_parameter_count_is_the_same_for_4_and_12_adapted_blocks():
    four = rmma.RecurrentAdapter(*VIT_B16, start=9, dim=64, scale=0.1)
    twelve = rmma.RecurrentAdapter(*VIT_B16, start=1, dim=64, scale=0.1)
    assert len(four.branches(None)) == 2 * 4 and len(twelve.branches(None)) == 2 * 12
    assert count(four) == count(twelve) == VIT_B16_PARAMETERS["learned"]


@pytest.mark.parametrize("attention", ["learned", "parameter_free", "off"])
def test_vit_b16_shapes_print_the_trainable_parameters_of_each_attention_form(demo_root, tmp_path, capsys, attention):
    build_test_trainer("RMMA", demo_root, tmp_path, config=trainer_config_file("RMMA", "vit_b16_ep5"),
                       opts=["MODEL.BACKBONE.WEIGHTS", "random", "DATALOADER.NUM_WORKERS", "0",
                             "TRAINER.RMMA.ATTENTION", attention, *TRAIN_BASE])
    assert f"Number of trainable parameters: {VIT_B16_PARAMETERS[attention]}\n" in capsys.readouterr().out


def latent_orthogonal_adapter():
    """Image routing reads, and its down-map writes, latent axes 0-1; the text tower uses axes 2-3."""
    adapter = rmma.RecurrentAdapter(4, 6, 2, 1, 4, 0.1)
    with torch.no_grad():
        for tower, axes in (("visual", slice(0, 2)), ("text", slice(2, 4))):
            adapter.routing[tower].weight.zero_()
            adapter.routing[tower].weight[:, axes].normal_()
            adapter.down[tower].weight.zero_()
            adapter.down[tower].weight[axes, :].normal_()
    return adapter


def test_separation_loss_is_zero_for_orthogonal_maps_and_positive_otherwise():
    adapter = latent_orthogonal_adapter()
    assert adapter.separation_loss().item() == 0

    with torch.no_grad():
        adapter.routing["text"].weight[0, 0] = 1.0
    routing_overlap = torch.outer(adapter.routing["visual"].weight[:, 0], adapter.routing["text"].weight[:, 0])
    assert adapter.separation_loss().item() == pytest.approx(routing_overlap.norm().item(), rel=1e-6)
    with torch.no_grad():
        adapter.down["text"].weight[1, 0] = 1.0
    assert adapter.separation_loss().item() > routing_overlap.norm().item()


def test_training_loss_is_cross_entropy_plus_lambda_separation_and_lambda_zero_drops_it(demo_root, tmp_path):
    image, label = torch.randn(3, 3, 32, 32), torch.tensor([0, 1, 2])
    losses = {}
    for weight in ("0.6", "0.0"):
        trainer = build_test_trainer("RMMA", demo_root, tmp_path / weight,
                                     opts=[*TRAIN_BASE, "TRAINER.RMMA.SEPARATION_WEIGHT", weight])
        randomise_routing(trainer.model.adapter)
        trainer.set_model_mode("train")
        loss, summary = trainer.compute_loss(image, label)
        cross_entropy = F.cross_entropy(trainer.model(image), label)
        losses[weight] = (loss, cross_entropy, trainer.model.adapter.separation_loss(), summary)
    loss, cross_entropy, separation, summary = losses["0.6"]
    assert torch.allclose(loss, cross_entropy + 0.6 * separation) and separation > 0
    assert summary["separation"] == pytest.approx(separation.item())
    loss, cross_entropy, _, summary = losses["0.0"]
    assert torch.equal(loss, cross_entropy) and "separation" not in summary


def test_without_routing_there_are_no_routing_maps_and_each_tower_reads_the_latent_through_its_down_map():
    adapter = rmma.RecurrentAdapter(4, 6, 2, 1, 3, 0.1, routing=False)
    assert not any(name.startswith("routing.") for name in adapter.state_dict())
    assert count(adapter) == count(rmma.RecurrentAdapter(4, 6, 2, 1, 3, 0.1)) - (3 * 4 + 4) - (3 * 6 + 6)
    latent = torch.randn(2, 5, 3)
    assert torch.equal(adapter.route("visual", latent), latent @ adapter.down["visual"].weight)
    down_overlap = adapter.down["visual"].weight.t() @ adapter.down["text"].weight
    assert torch.equal(adapter.separation_loss(), torch.linalg.matrix_norm(down_overlap))


@pytest.mark.parametrize("attention", ["learned", "parameter_free", "off"])
def test_only_attention_mixes_tokens_and_only_learned_attention_has_parameters(attention):
    adapter = rmma.RecurrentAdapter(4, 6, 2, 1, 3, 0.1, attention=attention).double()
    randomise_routing(adapter)
    attention_parameters = [name for name in adapter.state_dict() if name.startswith("attention.")]
    assert bool(attention_parameters) == (attention == "learned")
    frozen, routed = torch.randn(1, 5, 6, dtype=torch.double), torch.randn(1, 5, 6, dtype=torch.double)
    other_routed = routed.clone()
    other_routed[:, 1:] += 1.0
    first_token = adapter.cell("visual", frozen, routed)[:, 0]
    first_token_after_others_change = adapter.cell("visual", frozen, other_routed)[:, 0]
    assert torch.equal(first_token, first_token_after_others_change) == (attention == "off")
    if attention == "off":
        assert torch.equal(adapter.align("visual", frozen, routed), frozen + routed)


@pytest.mark.parametrize("fusion", ["tied", "untied", "off"])
def test_fusion_forms_map_each_towers_down_mapped_vector_as_named(fusion):
    adapter = rmma.RecurrentAdapter(4, 6, 2, 1, 3, 0.1, fusion=fusion)
    image_part, text_part = torch.randn(5, 3), torch.randn(5, 3)
    fused_image, fused_text = adapter.fuse("visual", image_part), adapter.fuse("text", text_part)
    if fusion == "off":
        assert adapter.fusion is None
        assert torch.equal(fused_image, image_part) and torch.equal(fused_text, text_part)
    elif fusion == "tied":
        assert torch.equal(fused_image, adapter.fusion(image_part))
        assert torch.equal(fused_text, adapter.fusion(text_part))
    else:
        # W_F [W_Id v~_I ; W_Td v~_T] with the other tower's half absent (zero).
        zeros = torch.zeros_like(image_part)
        assert torch.allclose(fused_image, adapter.fusion(torch.cat([image_part, zeros], dim=-1)), atol=1e-6)
        assert torch.allclose(fused_text, adapter.fusion(torch.cat([zeros, text_part], dim=-1)), atol=1e-6)


def test_vit_b16_joint_fusion_counts_the_literal_2d_by_d_fusion_map(demo_root, tmp_path, capsys):
    build_test_trainer("RMMA", demo_root, tmp_path, config=trainer_config_file("RMMA", "vit_b16_ep5"),
                       opts=["MODEL.BACKBONE.WEIGHTS", "random", "DATALOADER.NUM_WORKERS", "0",
                             "TRAINER.RMMA.FUSION", "joint", *TRAIN_BASE])
    assert f"Number of trainable parameters: {VIT_B16_JOINT_PARAMETERS}\n" in capsys.readouterr().out
    untied = rmma.RecurrentAdapter(*VIT_B16, start=1, dim=64, scale=0.1, fusion="untied")
    assert count(untied) == VIT_B16_JOINT_PARAMETERS


def test_joint_fusion_lets_the_class_prompts_into_each_images_latent_and_never_images_into_text():
    model = adapted_tiny(fusion="joint").eval()
    untied = adapted_tiny(fusion="untied").eval()
    untied.adapter.load_state_dict(model.adapter.state_dict())
    image = torch.randn(2, 3, 32, 32, dtype=torch.double)
    with torch.no_grad():
        text, image_features = model.encode_text(), model.encode_image(image)
        # The text streams are untied fusion's: no image enters them, so they are cached once at evaluation.
        assert torch.equal(text, untied.encode_text())
        assert not torch.allclose(image_features, untied.encode_image(image))
        # Fewer classes: a different text latent, so a different image latent.
        fewer = AdaptedCLIP(model.clip, PROMPTS[:2])
        model.adapter.set_class_prompts(fewer.prompt_tokens)
        encode_text(model.clip, fewer.prompt_tokens)
        assert not torch.allclose(model.encode_image(image), image_features)


def test_joint_fusion_trains_the_text_tower_from_the_image_features_through_the_class_latent():
    model = adapted_tiny(fusion="joint")
    logits = model(torch.randn(2, 3, 32, 32, dtype=torch.double))
    image_features = model.encode_image(torch.randn(2, 3, 32, 32, dtype=torch.double))
    text_down, = torch.autograd.grad(image_features.sum(), model.adapter.down["text"].weight, retain_graph=True)
    assert text_down.abs().sum() > 0
    F.cross_entropy(logits, torch.tensor([0, 2])).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.adapter.parameters())


def test_joint_fusion_needs_the_class_prompts_before_the_images():
    clip = load_clip("tiny").double().requires_grad_(False)
    adapter = rmma.RecurrentAdapter(text_width(clip), visual_width(clip), num_blocks(clip), 1, 16, 0.1,
                                    fusion="joint").double()
    model = AdaptedCLIP(clip, PROMPTS, adapter)
    with pytest.raises(RuntimeError, match="call set_class_prompts"):
        model.encode_text()
    adapter.set_class_prompts(model.prompt_tokens)
    with pytest.raises(RuntimeError, match="encode the class prompts before the images"):
        model.encode_image(torch.randn(1, 3, 32, 32, dtype=torch.double))


@pytest.mark.parametrize("attention", ["learned", "parameter_free"])
def test_truncated_text_features_equal_the_full_77_token_pass(attention):
    model = adapted_tiny(attention=attention).eval()
    tokens = tokenize(PROMPTS)
    with torch.no_grad():
        truncated = encode_text(model.clip, tokens)
        full = model.clip.encode_text(tokens)
        with branches_disabled(model.clip):
            frozen = encode_text(model.clip, tokens)
    assert int(tokens.argmax(-1).max()) + 1 < 77
    assert torch.allclose(truncated, full, rtol=0, atol=1e-12)
    assert not torch.allclose(truncated, frozen)


@pytest.mark.parametrize("fusion", ["tied", "joint"])
def test_evaluation_logits_of_an_image_do_not_depend_on_the_rest_of_the_batch(fusion):
    model = adapted_tiny(fusion=fusion).eval()
    model.adapter.eval()
    images = torch.randn(5, 3, 32, 32, dtype=torch.double)
    with torch.no_grad():
        batch = model(images)
        alone = torch.cat([model(image[None]) for image in images])
        reordered = model(images.flip(0)).flip(0)
    assert torch.allclose(alone, batch, rtol=0, atol=1e-10)
    assert torch.allclose(reordered, batch, rtol=0, atol=1e-10)


def test_latent_lives_for_one_forward_pass_and_disabled_branches_give_frozen_clip():
    model = adapted_tiny().eval()
    zero_shot = AdaptedCLIP(load_clip("tiny").double().requires_grad_(False), PROMPTS).eval()
    image = torch.randn(2, 3, 32, 32, dtype=torch.double)
    with torch.no_grad():
        first = model.encode_image(image), model.encode_text()
        assert model.adapter._streams == {}
        with branches_disabled(model.clip):
            disabled = model.encode_image(image), model.encode_text()
        again = model.encode_image(image), model.encode_text()
        frozen = zero_shot.encode_image(image), zero_shot.encode_text()
    for tower in range(2):
        assert torch.equal(disabled[tower], frozen[tower])
        assert torch.equal(again[tower], first[tower]) and not torch.allclose(first[tower], disabled[tower])

    tokens = image_stem(model.clip.visual, image)
    with pytest.raises(RuntimeError, match="visual latent for block 3 must come from block 2"):
        image_blocks(model.clip.visual, tokens, first=3)


def test_zero_routing_maps_give_zero_shot_clip_at_initialisation(demo_root, tmp_path):
    trainer = build_test_trainer("RMMA", demo_root, tmp_path, opts=TRAIN_BASE)
    zero_shot = AdaptedCLIP(load_clip(trainer.cfg.MODEL.BACKBONE.NAME), trainer.model.prompts).eval()
    trainer.set_model_mode("eval")
    image = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(trainer.model(image), zero_shot(image))


@pytest.mark.parametrize("backbone_gradient", [False, True])
def test_backbone_gradient_switch_decides_whether_frozen_blocks_are_differentiated(backbone_gradient):
    model = adapted_tiny(backbone_gradient=backbone_gradient)
    differentiated = []
    for k in range(1, 5):
        model.clip.get_submodule(visual_block(k)).module.register_forward_hook(
            lambda module, inputs, output: differentiated.append(inputs[0].requires_grad))
    logits = model(torch.randn(2, 3, 32, 32, dtype=torch.double))
    assert differentiated == [False, backbone_gradient, backbone_gradient, backbone_gradient]
    F.cross_entropy(logits, torch.tensor([0, 2])).backward()
    # Either way the latent recurrence carries a gradient to every weight of the cell.
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.adapter.parameters())


@pytest.mark.parametrize("key, value", [
    ("ATTENTION", "multi_head"), ("FUSION", "concat"), ("ADAPTER_START", "0"), ("ADAPTER_START", "5"),
    ("LATENT_DIM", "0"), ("ADAPTER_SCALE", "0.0"), ("SEPARATION_WEIGHT", "-0.1"),
])
def test_bad_options_fail_with_a_config_error_naming_the_key(demo_root, tmp_path, key, value):
    with pytest.raises(ConfigError, match=rf"^TRAINER\.RMMA\.{key} is "):
        build_test_trainer("RMMA", demo_root, tmp_path, opts=[*TRAIN_BASE, f"TRAINER.RMMA.{key}", value])


@pytest.mark.parametrize("fusion", ["tied", "joint"])
def test_demo_training_beats_zero_shot_on_base_and_evaluates_on_new_classes(demo_root, tmp_path, fusion):
    option = ["TRAINER.RMMA.FUSION", fusion]
    trained = build_test_trainer("RMMA", demo_root, tmp_path / "base", opts=[*TRAIN_BASE, *option])
    trained.train()
    zero_shot = build_test_trainer("ZeroshotCLIP", demo_root, tmp_path / "zs", opts=TRAIN_BASE)
    # The demo backbone is pretrained: zero-shot CLIP is already well above chance on the base classes, and
    # training on them raises it further.
    assert trained.test() > zero_shot.test()

    on_new = build_test_trainer("RMMA", demo_root, tmp_path / "new",
                                opts=["DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "new", *option])
    on_new.load_model(trained.output_dir, epoch=20)
    on_new.test()
    assert on_new.evaluator._total == 50


def test_amp_training_updates_the_adapter(demo_root, tmp_path):
    trainer = build_test_trainer("RMMA", demo_root, tmp_path, opts=[*TRAIN_BASE, "TRAINER.RMMA.PREC", "amp",
                                                                     "OPTIM.MAX_EPOCH", "2"])
    before = {k: v.clone() for k, v in trainer.model.adapter.state_dict().items()}
    trainer.train()
    after = trainer.model.adapter.state_dict()
    assert all(v.dtype == torch.float32 for v in after.values())
    assert all(not torch.equal(v, before[k]) for k, v in after.items() if k.startswith("routing."))
