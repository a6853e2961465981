"""RMAdapter: parameter arithmetic, the reconstruction branch and its locality, the consistency targets, each
ablation switch, evaluation without the reconstruction branch, and the demo run."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from harness.clip.adapted_clip import AdaptedCLIP
from harness.clip.backbones import load_clip
from harness.errors import ConfigError
from tests.trainer_helpers import build_test_trainer, make_cfg, trainer_config_file
from trainers.mma import MultiModalAdapter
from trainers.rmadapter import ReconstructionAdapter, prompt_token_mask, reconstruction_loss

TRAIN_BASE = ["DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base"]
PROMPTS = ["a photo of a red circle.", "a photo of a very large and rather unusual kind of aircraft.", "a dog."]
LOSS_TERMS = ("loss_rec_visual", "loss_rec_text", "loss_con_image", "loss_con_text")
# ViT-B/16: text width 512, visual width 768, 12 blocks; adapters in blocks 5..12 with r = 32.
VIT_B16 = {"text_dim": 512, "visual_dim": 768, "depth": 12, "start": 5, "end": 12, "dim": 32, "scale": 0.001}


def rmadapter(demo_root, tmp_path, *opts, seed=1):
    return build_test_trainer("RMAdapter", demo_root, tmp_path, seed=seed, opts=[*TRAIN_BASE, *opts])


def tiny_model(**options):
    """The frozen tiny CLIP carrying a ReconstructionAdapter in blocks 2..4 (r = 8)."""
    clip = load_clip("tiny").requires_grad_(False).eval()
    return AdaptedCLIP(clip, PROMPTS, ReconstructionAdapter(64, 64, 4, 2, 4, 8, 0.1, **options))


def batch(num_classes=5, size=8):
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(size, 3, 32, 32, generator=generator)
    return image, torch.randint(0, num_classes, (size,), generator=generator)


@pytest.fixture(scope="module")
def trained(demo_root, tmp_path_factory):
    """RMAdapter (demo config, the paper's full model) trained on the demo's base classes."""
    trainer = rmadapter(demo_root, tmp_path_factory.mktemp("rmadapter"))
    trainer.train()
    return trainer


def test_vit_b16_defaults_print_354816_reconstruction_parameters_on_top_of_mmas_674560(demo_root, tmp_path, capsys):
    trainer = build_test_trainer(
        "RMAdapter", demo_root, tmp_path, config=trainer_config_file("RMAdapter", "vit_b16_ep5"),
        opts=["MODEL.BACKBONE.WEIGHTS", "random", "DATALOADER.NUM_WORKERS", "0", *TRAIN_BASE],
    )
    out = capsys.readouterr().out
    assert "Number of reconstruction parameters (RMAdapter's extra over MMA): 354816\n" in out
    assert f"Number of trainable parameters: {674560 + 354816}\n" in out
    keys = set(trainer.model.adapter.state_dict())
    mma_keys = set(MultiModalAdapter(**VIT_B16).state_dict())
    assert {key for key in keys if not key.startswith("reconstruction.")} == mma_keys


# Extra parameters over MMA for blocks 5..12 of ViT-B/16 (8 blocks, r = 32), per tower and block:
#   hidden layers r x r:         (depth - 1) * (32*32 + 32)            = (depth - 1) * 1,056
#   own up-projection r -> d:    unless the up-projection is shared:  32*d + d   (24,576+768 | 16,384+512)
#   own down-projection d -> r:  unless the down-projection is shared: d*32 + 32  (24,576+32  | 16,384+32)
@pytest.mark.parametrize("towers, shared, depth, extra", [
    (("text", "visual"), "down", 2, 8 * (26_400 + 17_952)),                  # 354,816: the paper's full model
    (("text", "visual"), "down", 1, 8 * (25_344 + 16_896)),                  # 337,920
    (("text", "visual"), "down", 3, 8 * (27_456 + 19_008)),                  # 371,712
    (("text", "visual"), "up", 2, 8 * (24_608 + 1_056 + 16_416 + 1_056)),    # 345,088
    (("text", "visual"), "none", 2, 8 * (24_608 + 26_400 + 16_416 + 17_952)),  # 683,008
    (("visual",), "down", 2, 8 * 26_400),                                    # 211,200
    (("text",), "down", 2, 8 * 17_952),                                      # 143,616
    ((), "down", 2, 0),
])
def test_parameter_count_of_each_variant(towers, shared, depth, extra):
    adapter = ReconstructionAdapter(**VIT_B16, towers=towers, shared_projection=shared, rec_depth=depth)
    assert adapter.reconstruction_parameters() == extra
    assert sum(p.numel() for p in adapter.parameters()) == 674_560 + extra


@pytest.mark.parametrize("shared", ["down", "up", "none"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_reconstruction_branch_is_the_papers_equation(shared, depth):
    adapter = ReconstructionAdapter(**VIT_B16, shared_projection=shared, rec_depth=depth).double()
    z = torch.randn(2, 5, 768, dtype=torch.double)
    own, mma_adapter = adapter.reconstruction["visual"][7], adapter.visual_adapter[7]
    down = mma_adapter.down[0] if shared == "down" else own.down[0]
    up = mma_adapter.up if shared == "up" else own.up
    hidden = [layer for layer in own.hidden if isinstance(layer, nn.Linear)]
    assert len(hidden) == depth - 1
    # x_down = act(z W_down + b); depth 2: rec = act(x_down W_1 + b_1) W_2 + b_2
    h = F.relu(F.linear(z, down.weight, down.bias))
    for layer in hidden:
        h = F.relu(F.linear(h, layer.weight, layer.bias))
    expected = F.linear(h, up.weight, up.bias)
    assert torch.allclose(adapter.reconstruct("visual", 7, z), expected, rtol=1e-12, atol=0)


def trained_by(loss, model):
    """Names of the adapter parameters (and 'image') that `loss` sends a nonzero gradient to."""
    names, tensors = zip(*model.adapter.named_parameters())
    grads = torch.autograd.grad(loss, [*tensors, model.image], allow_unused=True)
    return {name for name, grad in zip([*names, "image"], grads) if grad is not None and grad.abs().sum() > 0}


@pytest.mark.parametrize("shared, own_parts, adapter_part", [
    ("down", {"hidden", "up"}, "down.0"),
    ("up", {"down", "hidden"}, "up"),
    ("none", {"down", "hidden", "up"}, None),
])
def test_each_blocks_reconstruction_loss_trains_only_that_blocks_reconstruction_and_shared_projection(
        shared, own_parts, adapter_part):
    model = tiny_model(shared_projection=shared)
    model.image = torch.randn(2, 3, 32, 32, requires_grad=True)
    with model.adapter.recording_reconstruction() as token_errors:
        model.encode_text()
        model.encode_image(model.image)
    for tower in ("text", "visual"):
        assert len(token_errors[tower]) == 3
        for k, error in zip((2, 3, 4), token_errors[tower]):
            branch = model.adapter.reconstruction[tower][k]
            own = {f"reconstruction.{tower}.{k}.{name}" for name, _ in branch.named_parameters()}
            assert {name.split(".")[3] for name in own} == own_parts
            shared_parameters = {f"{tower}_adapter.{k}.{adapter_part}.{p}" for p in ("weight", "bias")
                                 if adapter_part}
            # Nothing in other blocks, the other tower, the shared cross-modal layer or the image.
            assert trained_by(error.mean(), model) == own | shared_parameters, (tower, k)


def test_text_reconstruction_loss_counts_each_prompts_own_tokens_whatever_the_padding():
    model = tiny_model()
    with torch.no_grad(), model.adapter.recording_reconstruction() as together:
        model.encode_text()
    mask = prompt_token_mask(model.prompt_tokens)
    assert mask.sum(dim=1).tolist() == [int(end) + 1 for end in model.prompt_tokens.argmax(dim=-1)]
    batched = reconstruction_loss(together["text"], mask)

    # Each prompt alone has no padding at all: the loss is the token-weighted mean of its per-prompt errors.
    alone_errors = []
    for prompt in PROMPTS:
        single = AdaptedCLIP(model.clip, [prompt])  # model.clip carries the adapter's branches
        with torch.no_grad(), model.adapter.recording_reconstruction() as errors:
            single.encode_text()
        alone_errors.append(torch.stack(errors["text"]))
    tokens = sum(errors.shape[-1] for errors in alone_errors)
    expected = sum(errors.sum() for errors in alone_errors) / tokens
    assert torch.allclose(batched, expected, rtol=1e-5, atol=0)


def down_projection_gradients(model, image, label):
    """The gradients that L_rec^V and L_ce send to the visual adapters' W_down (one tensor each, all blocks)."""
    adapter = model.adapter
    with adapter.recording_reconstruction() as token_errors:
        cross_entropy = F.cross_entropy(model(image), label)
    rec_loss = reconstruction_loss(token_errors["visual"])
    down = [adapter.visual_adapter[k].down[0].weight for k in adapter.slots]
    return [torch.cat([g.flatten() for g in torch.autograd.grad(loss, down, retain_graph=True)])
            for loss in (rec_loss, cross_entropy)], rec_loss


def test_reconstruction_gradient_scale_adapter_multiplies_the_rec_to_ce_gradient_ratio_by_one_over_s():
    image, label = batch(num_classes=len(PROMPTS))
    results = {}
    for choice in ("none", "adapter"):
        torch.manual_seed(0)
        model = tiny_model(rec_gradient_scale=choice).train()
        results[choice] = down_projection_gradients(model, image, label)
    ((rec_none, ce_none), loss_none), ((rec_adapter, ce_adapter), loss_adapter) = results["none"], results["adapter"]
    assert torch.equal(loss_adapter, loss_none) and torch.equal(ce_adapter, ce_none)
    ratio_none, ratio_adapter = (rec.norm() / ce.norm() for rec in (rec_none, rec_adapter) for ce in (ce_none,))
    scale = model.adapter.scale
    assert ratio_adapter.item() == pytest.approx(ratio_none.item() / scale, rel=1e-5)
    assert torch.allclose(rec_adapter, rec_none / scale, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rec_loss", ["l2", "l1", "cosine"])
def test_reconstruction_loss_choice_sets_the_per_token_error(rec_loss):
    model = tiny_model(rec_loss=rec_loss)
    nn.init.normal_(model.adapter.reconstruction["visual"][3].up.bias)  # no all-zero reconstruction (cosine)
    block = model.clip.visual.transformer.resblocks[2].module
    x = torch.randn(2, 17, 64)
    with torch.no_grad(), model.adapter.recording_reconstruction() as token_errors:
        model.adapter.block_branch("visual", 3, block, x, block(x))
        z = block.ln_1(x)
        r = model.adapter.reconstruct("visual", 3, z)
    expected = {
        "l2": ((r - z) ** 2).mean(dim=-1),
        "l1": (r - z).abs().mean(dim=-1),
        "cosine": 1 - (r * z).sum(-1) / (r.norm(dim=-1) * z.norm(dim=-1)),
    }[rec_loss]
    assert token_errors["visual"][0].shape == (2, 17)
    assert torch.allclose(token_errors["visual"][0], expected, rtol=1e-5, atol=1e-6)


def test_gelu_activation_replaces_every_relu_of_the_adapter():
    relu, gelu = tiny_model().adapter, tiny_model(activation="gelu").adapter
    assert not any(isinstance(m, nn.GELU) for m in relu.modules())
    assert not any(isinstance(m, nn.ReLU) for m in gelu.modules())
    # Per slot: text down, visual down, shared layer, one hidden layer per tower's reconstruction (depth 2).
    assert sum(isinstance(m, nn.GELU) for m in gelu.modules()) == 3 * 5
    z = torch.randn(3, 64)
    down = gelu.visual_adapter[2].down
    assert torch.allclose(down(z), F.gelu(down[0](z)))


@pytest.mark.parametrize("opts, terms", [
    ([], LOSS_TERMS),
    (["TRAINER.RMADAPTER.REC_TOWERS", "visual"], ("loss_rec_visual", "loss_con_image", "loss_con_text")),
    (["TRAINER.RMADAPTER.REC_TOWERS", "text"], ("loss_rec_text", "loss_con_image", "loss_con_text")),
    (["TRAINER.RMADAPTER.REC_TOWERS", "none"], ("loss_con_image", "loss_con_text")),
    (["TRAINER.RMADAPTER.CONSISTENCY", "False"], ("loss_rec_visual", "loss_rec_text")),
])
def test_tower_and_consistency_switches_choose_the_loss_terms_and_modules(demo_root, tmp_path, opts, terms):
    trainer = rmadapter(demo_root, tmp_path, *opts)
    trainer.set_model_mode("train")
    loss, summary = trainer.compute_loss(*batch())
    assert set(summary) == {"loss", "acc", "loss_ce", *terms}
    assert summary["loss"] == pytest.approx(sum(summary[k] for k in ("loss_ce", *terms)), rel=1e-6)
    assert set(trainer.model.adapter.reconstruction) == {t.split("_")[-1] for t in terms if "_rec_" in t}


def test_reconstruction_losses_sum_each_blocks_mean_token_error(demo_root, tmp_path):
    trainer = rmadapter(demo_root, tmp_path)
    trainer.set_model_mode("train")
    image, label = batch()
    _, summary = trainer.compute_loss(image, label)
    with torch.no_grad(), trainer.model.adapter.recording_reconstruction() as token_errors:
        trainer.model.encode_text()
        trainer.model.encode_image(image)
    mask = prompt_token_mask(trainer.model.prompt_tokens)
    assert len(token_errors["visual"]) == len(token_errors["text"]) == 3
    assert summary["loss_rec_visual"] == pytest.approx(sum(e.mean().item() for e in token_errors["visual"]), rel=1e-6)
    assert summary["loss_rec_text"] == pytest.approx(
        sum(((e * mask).sum() / mask.sum()).item() for e in token_errors["text"]), rel=1e-6)


def test_loss_weights_scale_their_terms(demo_root, tmp_path):
    default = rmadapter(demo_root, tmp_path / "default")
    weighted = rmadapter(demo_root, tmp_path / "weighted",
                         "TRAINER.RMADAPTER.REC_VISUAL_WEIGHT", "2.0", "TRAINER.RMADAPTER.REC_TEXT_WEIGHT", "3.0",
                         "TRAINER.RMADAPTER.CONSISTENCY_IMAGE_WEIGHT", "4.0",
                         "TRAINER.RMADAPTER.CONSISTENCY_TEXT_WEIGHT", "5.0")
    weighted.model.adapter.load_state_dict(default.model.adapter.state_dict())
    for trainer in (default, weighted):
        trainer.set_model_mode("train")
    _, base = default.compute_loss(*batch())
    _, scaled = weighted.compute_loss(*batch())
    assert scaled["loss_ce"] == base["loss_ce"]
    for term, lambda_default, lambda_set in zip(LOSS_TERMS, (1, 1, 10, 25), (2, 3, 4, 5)):
        assert scaled[term] == pytest.approx(base[term] * lambda_set / lambda_default, rel=1e-5), term


def test_without_reconstruction_and_consistency_logits_and_gradients_equal_mmas(demo_root, tmp_path):
    mma = build_test_trainer("MMA", demo_root, tmp_path / "mma", opts=TRAIN_BASE)
    rm = rmadapter(demo_root, tmp_path / "rm", "TRAINER.RMADAPTER.REC_TOWERS", "none",
                   "TRAINER.RMADAPTER.CONSISTENCY", "False", seed=2)
    mma.model.adapter.load_state_dict(rm.model.adapter.state_dict())
    image, label = batch()
    results = []
    for trainer in (mma, rm):
        trainer.set_model_mode("train")
        loss, _ = trainer.compute_loss(image, label)
        loss.backward()
        grads = {name: p.grad for name, p in trainer.model.adapter.named_parameters()}
        results.append((trainer.model(image), loss, grads))
    (mma_logits, mma_loss, mma_grads), (rm_logits, rm_loss, rm_grads) = results
    assert torch.equal(rm_logits, mma_logits)
    assert torch.equal(rm_loss, mma_loss)
    assert set(rm_grads) == set(mma_grads)
    for name, grad in mma_grads.items():
        assert grad.abs().sum() > 0 and torch.equal(rm_grads[name], grad), name


@pytest.mark.parametrize("start", [0, 1, 2])
def test_consistency_targets_are_frozen_clip_on_the_same_batch_and_the_adapted_pass_is_unchanged(
        demo_root, tmp_path, start):
    trainer = rmadapter(demo_root, tmp_path, "TRAINER.RMADAPTER.ADAPTER_START", str(start))
    trainer.set_model_mode("train")
    model, adapter = trainer.model, trainer.model.adapter
    zero_shot = AdaptedCLIP(load_clip(trainer.cfg.MODEL.BACKBONE.NAME), model.prompts).eval()
    image, _ = batch()

    with adapter.recording_reconstruction() as token_errors:
        adapted, frozen = trainer.image_features_and_frozen_target(image)
    assert len(token_errors["visual"]) == len(adapter.slots)  # the frozen pass runs no adapter branch
    with torch.no_grad():
        assert torch.equal(frozen, zero_shot.encode_image(image))
    plain = model.encode_image(image)
    assert torch.equal(adapted, plain)
    weights = torch.randn_like(plain)
    shared_grads = torch.autograd.grad((adapted * weights).sum(), list(adapter.parameters()), allow_unused=True)
    plain_grads = torch.autograd.grad((plain * weights).sum(), list(adapter.parameters()), allow_unused=True)
    for shared_grad, plain_grad in zip(shared_grads, plain_grads):
        assert (shared_grad is None) == (plain_grad is None)
        assert shared_grad is None or torch.equal(shared_grad, plain_grad)


def test_frozen_text_target_is_zero_shot_clip_computed_once(demo_root, tmp_path):
    trainer = rmadapter(demo_root, tmp_path)
    trainer.set_model_mode("train")
    trainer.batch_idx, trainer.num_batches = 0, 2
    image, label = batch()
    trainer.forward_backward({"img": image, "label": label})
    target = trainer.frozen_text_features()
    trainer.forward_backward({"img": image, "label": label})
    assert trainer.frozen_text_features() is target
    zero_shot = AdaptedCLIP(load_clip(trainer.cfg.MODEL.BACKBONE.NAME), trainer.model.prompts).eval()
    assert torch.equal(target, zero_shot.text_features())


def test_adapters_that_add_nothing_give_zero_consistency_loss(demo_root, tmp_path):
    trainer = rmadapter(demo_root, tmp_path)
    with torch.no_grad():
        for k in trainer.model.adapter.slots:
            for tower in ("text", "visual"):
                trainer.model.adapter.tower_adapters(tower)[k].up.weight.zero_()
                trainer.model.adapter.tower_adapters(tower)[k].up.bias.zero_()
    trainer.set_model_mode("train")
    _, summary = trainer.compute_loss(*batch())
    assert summary["loss_con_image"] == 0 and summary["loss_con_text"] == 0
    assert summary["loss_rec_visual"] > 0 and summary["loss_rec_text"] > 0


@pytest.mark.parametrize("precision", ["amp", "fp16"])
def test_training_step_in_reduced_precision_updates_the_adapter(demo_root, tmp_path, precision):
    trainer = rmadapter(demo_root, tmp_path, "TRAINER.RMADAPTER.PREC", precision)
    trainer.set_model_mode("train")
    trainer.batch_idx, trainer.num_batches = 0, 2
    before = {k: v.clone() for k, v in trainer.model.adapter.state_dict().items()}
    image, label = batch()
    summary = trainer.forward_backward({"img": image, "label": label})
    assert all(math.isfinite(value) for value in summary.values())
    after = trainer.model.adapter.state_dict()
    assert any(not torch.equal(after[k], v) for k, v in before.items() if k.startswith("reconstruction."))
    assert any(not torch.equal(after[k], v) for k, v in before.items() if k.startswith("visual_adapter."))


def test_evaluation_never_runs_the_reconstruction_branch_and_gives_mmas_logits(trained, monkeypatch):
    mma_adapter = MultiModalAdapter(64, 64, 4, 2, 4, 32, 0.1)
    mma_adapter.load_state_dict({k: v for k, v in trained.model.adapter.state_dict().items()
                                 if not k.startswith("reconstruction.")})
    as_mma = AdaptedCLIP(load_clip(trained.cfg.MODEL.BACKBONE.NAME), trained.model.prompts, mma_adapter).eval()

    def fail(*args):
        raise AssertionError("the reconstruction branch ran at evaluation")

    monkeypatch.setattr(ReconstructionAdapter, "reconstruct", fail)
    trained.set_model_mode("eval")
    image, _ = batch()
    with torch.no_grad():
        assert torch.equal(trained.model(image), as_mma(image))
    assert trained.test() > 0


def test_demo_run_learns_the_base_classes_and_its_checkpoint_evaluates_new_classes(trained, demo_root, tmp_path):
    zero_shot = build_test_trainer("ZeroshotCLIP", demo_root, tmp_path / "zs", opts=TRAIN_BASE)
    # The demo backbone is pretrained: zero-shot CLIP is already well above chance on the base classes, and
    # training on them raises it further.
    assert trained.test() > zero_shot.test()

    on_new = build_test_trainer("RMAdapter", demo_root, tmp_path / "new",
                                opts=["DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "new"])
    on_new.load_model(trained.output_dir, epoch=20)
    for key, value in trained.model.adapter.state_dict().items():
        assert torch.equal(on_new.model.adapter.state_dict()[key], value), key
    on_new.test()
    assert on_new.evaluator._total == 50


def test_vit_b16_configs_run_the_full_model_on_mmas_protocols(demo_root, tmp_path):
    defaults = make_cfg("RMAdapter", demo_root, tmp_path, config=trainer_config_file("MMA", "vit_b16_ep5"),
                        opts=["TRAINER.NAME", "RMAdapter"]).TRAINER.RMADAPTER
    for name, batch_size, epochs, blocks in [("vit_b16_ep5", 16, 5, (5, 12)), ("vit_b16_ep5_imnet", 128, 5, (5, 12)),
                                             ("vit_b16_ep1_cross_datasets", 128, 1, (9, 12))]:
        cfg = make_cfg("RMAdapter", demo_root, tmp_path, config=trainer_config_file("RMAdapter", name))
        mma = make_cfg("MMA", demo_root, tmp_path, config=trainer_config_file("MMA", name))
        node = cfg.TRAINER.RMADAPTER
        assert blocks == (node.ADAPTER_START, node.ADAPTER_END)
        assert (batch_size, epochs) == (cfg.DATALOADER.TRAIN_X.BATCH_SIZE, cfg.OPTIM.MAX_EPOCH)
        assert {k: v for k, v in node.items() if not k.startswith("ADAPTER_")} == \
            {k: v for k, v in defaults.items() if not k.startswith("ADAPTER_")}
        assert all(node[k] == v for k, v in mma.TRAINER.MMA.items())
        assert cfg.OPTIM == mma.OPTIM and cfg.INPUT == mma.INPUT and cfg.DATALOADER == mma.DATALOADER


@pytest.mark.parametrize("key, value, message", [
    ("REC_TOWERS", "image", "TRAINER.RMADAPTER.REC_TOWERS is 'image'; choose one of both, visual, text, none"),
    ("REC_SHARED_PROJECTION", "both", "REC_SHARED_PROJECTION is 'both'; choose one of down, up, none"),
    ("REC_DEPTH", "4", "TRAINER.RMADAPTER.REC_DEPTH is 4; choose one of 1, 2, 3"),
    ("REC_LOSS", "mse", "TRAINER.RMADAPTER.REC_LOSS is 'mse'; choose one of l2, l1, cosine"),
    ("ACTIVATION", "silu", "TRAINER.RMADAPTER.ACTIVATION is 'silu'; choose one of relu, gelu"),
    ("REC_GRADIENT_SCALE", "ce", "TRAINER.RMADAPTER.REC_GRADIENT_SCALE is 'ce'; choose one of none, adapter"),
    ("CONSISTENCY_TEXT_WEIGHT", "-1.0", "TRAINER.RMADAPTER.CONSISTENCY_TEXT_WEIGHT is -1.0; loss weights must be >= 0"),
    ("ADAPTER_END", "5", "TRAINER.RMADAPTER.ADAPTER_START/END are 2/5, but the backbone has 4 blocks"),
])
def test_bad_values_are_config_errors_naming_the_key(demo_root, tmp_path, key, value, message):
    with pytest.raises(ConfigError) as error:
        rmadapter(demo_root, tmp_path, f"TRAINER.RMADAPTER.{key}", value)
    assert message in str(error.value) and "\n" not in str(error.value)
