"""MMA as the official code defines it: parameter count, placement, gradient-scale trick, checkpoints."""
import pytest
import torch

import trainers.mma as mma
from harness.clip.adapted_clip import AdaptedCLIP
from harness.clip.backbones import load_clip
from harness.errors import CheckpointError
from tests.trainer_helpers import build_test_trainer, trainer_config_file

TRAIN_BASE = ["DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base"]


def official_keys(start, end):
    """State-dict keys of an official MMA checkpoint's adapters (class-dependent buffers aside)."""
    keys = set()
    for k in range(start, end + 1):
        for tower in ("text_adapter", "visual_adapter"):
            keys |= {f"{tower}.{k}.down.0.weight", f"{tower}.{k}.down.0.bias", f"{tower}.{k}.up.weight",
                     f"{tower}.{k}.up.bias"}
        keys |= {f"shared_adapter.{k}.0.weight", f"shared_adapter.{k}.0.bias"}
    return keys


@pytest.fixture(scope="module")
def trained(demo_root, tmp_path_factory):
    """MMA trained on the demo's base classes (tiny backbone)."""
    trainer = build_test_trainer("MMA", demo_root, tmp_path_factory.mktemp("mma"), opts=TRAIN_BASE)
    trainer.train()
    return trainer


def test_vit_b16_shapes_give_the_official_674560_trainable_parameters(demo_root, tmp_path, capsys):
    trainer = build_test_trainer(
        "MMA", demo_root, tmp_path, config=trainer_config_file("MMA", "vit_b16_ep5"),
        opts=["MODEL.BACKBONE.WEIGHTS", "random", "DATALOADER.NUM_WORKERS", "0", *TRAIN_BASE],
    )
    assert "Number of trainable parameters: 674560\n" in capsys.readouterr().out
    assert set(trainer.model.adapter.state_dict()) == official_keys(5, 12)


def test_zeroed_up_projections_give_zero_shot_clip_logits(demo_root, tmp_path):
    trainer = build_test_trainer("MMA", demo_root, tmp_path, opts=TRAIN_BASE)
    adapter = trainer.model.adapter
    with torch.no_grad():
        for k in adapter.slots:
            for tower in ("text", "visual"):
                adapter.tower_adapters(tower)[k].up.weight.zero_()
                adapter.tower_adapters(tower)[k].up.bias.zero_()
    zero_shot = AdaptedCLIP(load_clip(trainer.cfg.MODEL.BACKBONE.NAME), trainer.model.prompts).eval()
    adapter.eval()
    image = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(trainer.model(image), zero_shot(image))


def branch_gradients(block, adapter, x):
    x = x.detach().requires_grad_(True)
    output = adapter.block_branch("visual", 2, block, x, block(x))
    (output * torch.linspace(-1, 1, output.numel()).view_as(output)).sum().backward()
    grads = {name: p.grad.clone() for name, p in adapter.named_parameters() if p.grad is not None}
    adapter.zero_grad()
    return x.grad, grads


def test_gradient_scale_trick_scales_adapter_gradients_by_one_over_s_and_keeps_the_residual_gradient(monkeypatch):
    clip = load_clip("tiny").double()
    block = clip.visual.transformer.resblocks[1]
    adapter = mma.MultiModalAdapter(64, 64, 4, 2, 4, 8, scale=0.001).double()
    x = torch.randn(2, 17, 64, dtype=torch.double)

    input_grad, adapter_grads = branch_gradients(block, adapter, x)
    monkeypatch.setattr(mma, "scale_gradient", lambda tensor, scale: tensor)
    plain_input_grad, plain_adapter_grads = branch_gradients(block, adapter, x)

    assert torch.allclose(input_grad, plain_input_grad, rtol=1e-10, atol=0)
    assert set(adapter_grads) == set(plain_adapter_grads) and len(adapter_grads) == 6
    for name, grad in adapter_grads.items():
        assert torch.allclose(grad, plain_adapter_grads[name] / 0.001, rtol=1e-8, atol=0), name


def test_checkpoint_round_trip_restores_the_adapter_exactly(trained, demo_root, tmp_path):
    trained.save_model(0, str(tmp_path))
    fresh = build_test_trainer("MMA", demo_root, tmp_path / "fresh", seed=2, opts=TRAIN_BASE)
    fresh.load_model(str(tmp_path), epoch=1)
    for key, value in trained.model.adapter.state_dict().items():
        assert torch.equal(fresh.model.adapter.state_dict()[key], value), key
    image = torch.randn(3, 3, 32, 32)
    trained.set_model_mode("eval")
    fresh.set_model_mode("eval")
    with torch.no_grad():
        assert torch.equal(fresh.model(image), trained.model(image))


def test_official_checkpoints_with_class_buffers_load_and_partial_ones_are_refused(trained, demo_root, tmp_path):
    state = dict(trained.model.adapter.state_dict())
    # The official checkpoint also stores the training classes' prompt embeddings and tokens.
    official = {**state, "token_embedding": torch.zeros(5, 77, 64), "tokenized_prompts": torch.zeros(5, 77).long()}
    folder = tmp_path / "official" / "adapter_learner"
    folder.mkdir(parents=True)
    torch.save({"state_dict": official, "epoch": 5, "optimizer": None, "scheduler": None}, folder / "model.pth.tar-5")
    evaluator = build_test_trainer("MMA", demo_root, tmp_path / "eval", opts=["DATASET.SUBSAMPLE_CLASSES", "new"])
    evaluator.load_model(str(tmp_path / "official"), epoch=5)
    assert all(torch.equal(evaluator.model.adapter.state_dict()[k], v) for k, v in state.items())

    del official["visual_adapter.3.up.weight"]
    torch.save({"state_dict": official, "epoch": 5, "optimizer": None, "scheduler": None}, folder / "model.pth.tar-5")
    with pytest.raises(CheckpointError, match=r"missing keys \['visual_adapter\.3\.up\.weight'\]"):
        evaluator.load_model(str(tmp_path / "official"), epoch=5)


def test_demo_training_beats_zero_shot_on_base_and_evaluates_on_new_classes(trained, demo_root, tmp_path):
    zero_shot = build_test_trainer("ZeroshotCLIP", demo_root, tmp_path / "zs", opts=TRAIN_BASE)
    # The demo backbone is pretrained: zero-shot CLIP is already well above chance on the base classes, and
    # training on them raises it further.
    assert trained.test() > zero_shot.test()

    on_new = build_test_trainer("MMA", demo_root, tmp_path / "new",
                                opts=["DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "new"])
    on_new.load_model(trained.output_dir, epoch=20)
    assert on_new.dm.dataset.classnames == ["orange ring", "cyan stripe", "pink frame", "white hourglass", "brown star"]
    on_new.test()
    assert on_new.evaluator._total == 50


@pytest.mark.parametrize("precision", ["amp", "fp16"])
def test_reduced_precisions_train(demo_root, tmp_path, precision):
    trainer = build_test_trainer("MMA", demo_root, tmp_path, opts=[*TRAIN_BASE, "TRAINER.MMA.PREC", precision,
                                                                   "OPTIM.MAX_EPOCH", "2"])
    before = {k: v.clone() for k, v in trainer.model.adapter.state_dict().items()}
    trainer.train()
    expected_dtype = torch.float16 if precision == "fp16" else torch.float32
    assert all(v.dtype == expected_dtype for v in trainer.model.adapter.state_dict().values())
    assert any(not torch.equal(v, before[k]) for k, v in trainer.model.adapter.state_dict().items())
