"""The engine's surface: what a CoOp-family config or trainer can reach works, every key of Dassl's defaults merges,
and what the chosen engine cannot do stops with one line naming the key before any data is loaded.

Runs on the engine the environment chooses; with the real Dassl installed, run it again with DASSL_ENGINE=dassl.
"""
import importlib.util
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import harness.engine as engine
from harness.bundled.supported import OPTIMIZERS, TRANSFORMS, TRANSFORMS_BROKEN_ON_DASSL, TRANSFORMS_ONLY_ON_DASSL
from harness.config import extend_cfg
from harness.errors import ConfigError
from tests.trainer_helpers import build_test_trainer, make_cfg, run_train_py, train_py_args

ON_DASSL = engine.ENGINE == "dassl"
TRAIN_BASE = ["DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base"]


def default_cfg(opts=()):
    cfg = extend_cfg(engine.get_cfg_default())
    cfg.merge_from_list(list(opts))
    return cfg


def leaf_keys(node, prefix=""):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from leaf_keys(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def refusal(opts):
    """The one-line message check_supported gives for a default config with `opts` merged."""
    with pytest.raises(ConfigError) as caught:
        engine.check_supported(default_cfg(opts))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_every_dassl_default_key_merges_and_the_defaults_are_supported(tmp_path):
    defaults = engine.get_cfg_default()
    keys = list(leaf_keys(defaults))
    assert len(keys) > 100
    cfg = default_cfg()
    for key, value in keys:
        cfg.merge_from_list([key, repr(value) if isinstance(value, str) else str(value)])
    assert cfg.dump() == default_cfg().dump()
    engine.check_supported(cfg)


@pytest.mark.skipif(importlib.util.find_spec("dassl") is None, reason="the real Dassl is not installed")
def test_the_bundled_default_tree_is_dassls():
    from dassl.config import get_cfg_default as dassl_defaults

    from harness.bundled.config import get_cfg_default as bundled_defaults

    assert bundled_defaults().dump() == dassl_defaults().dump()


@pytest.mark.parametrize("policy", TRANSFORMS_BROKEN_ON_DASSL)
def test_policies_broken_on_this_numpy_are_refused_on_both_engines_without_pointing_to_dassl(policy):
    message = refusal(["INPUT.TRANSFORMS", f"['random_flip', '{policy}']"])
    assert message.startswith(f"INPUT.TRANSFORMS = '{policy}' is not supported") and "np.int" in message
    assert "install Dassl" not in message and "random_resized_crop" in message


@pytest.mark.parametrize("policy", TRANSFORMS_ONLY_ON_DASSL)
def test_policies_that_work_on_dassl_run_there_and_are_refused_by_the_bundled_engine(policy):
    opts = ["INPUT.TRANSFORMS", f"['{policy}', 'normalize']", "INPUT.SIZE", "(32, 32)"]
    if ON_DASSL:
        engine.check_supported(default_cfg(opts))
        image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
        assert engine.build_transform(default_cfg(opts), is_train=True)(image).shape == (3, 32, 32)
    else:
        message = refusal(opts)
        assert message.startswith(f"INPUT.TRANSFORMS = '{policy}' is not supported (only the real Dassl provides")
        assert "install Dassl" in message


def test_samplers_only_dassl_has_are_refused_by_the_bundled_engine():
    opts = ["DATALOADER.TRAIN_X.SAMPLER", "RandomDomainSampler"]
    if ON_DASSL:
        engine.check_supported(default_cfg(opts))
    else:
        assert refusal(opts).startswith("DATALOADER.TRAIN_X.SAMPLER = 'RandomDomainSampler' is not supported (only")


def test_an_unlabelled_loader_setting_is_refused_by_the_bundled_engine_it_would_be_ignored_by():
    opts = ["DATALOADER.TRAIN_U.SAME_AS_X", "False"]
    if ON_DASSL:
        engine.check_supported(default_cfg(opts))
    else:
        assert refusal(opts).startswith("DATALOADER.TRAIN_U.SAME_AS_X = False is not supported")


@pytest.mark.parametrize("opts, start, supported", [
    (["INPUT.TRANSFORMS", "['random_flip', 'mixup']"], "INPUT.TRANSFORMS = 'mixup'", "gaussian_blur"),
    (["INPUT.INTERPOLATION", "lanczos"], "INPUT.INTERPOLATION = 'lanczos'", "bicubic"),
    (["DATALOADER.TEST.SAMPLER", "WeightedSampler"], "DATALOADER.TEST.SAMPLER = 'WeightedSampler'",
     "SequentialSampler"),
    (["OPTIM.NAME", "lamb"], "OPTIM.NAME = 'lamb'", "adamw"),
    (["OPTIM.LR_SCHEDULER", "exponential"], "OPTIM.LR_SCHEDULER = 'exponential'", "cosine"),
    (["OPTIM.WARMUP_EPOCH", "1", "OPTIM.WARMUP_TYPE", "exp"], "OPTIM.WARMUP_TYPE = 'exp'", "constant"),
    (["OPTIM.STEPSIZE", "(2.5,)"], "OPTIM.STEPSIZE = (2.5,)", "one integer"),
    (["TEST.EVALUATOR", "Retrieval"], "TEST.EVALUATOR = 'Retrieval'", "Classification"),
    (["INPUT.NO_TRANSFORM", "True"], "INPUT.NO_TRANSFORM = True", "INPUT.TRANSFORMS"),
])
def test_what_neither_engine_has_is_refused_in_one_line_naming_key_value_and_choices(opts, start, supported):
    message = refusal(opts)
    assert message.startswith(start) and supported in message


def test_a_trainer_refuses_before_loading_any_data(demo_root, tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"^INPUT\.TRANSFORMS = 'imagenet_policy' is not supported"):
        build_test_trainer("MMA", demo_root, tmp_path, opts=["INPUT.TRANSFORMS", "['imagenet_policy']"])
    assert "Loading dataset" not in capsys.readouterr().out


def test_train_py_prints_the_refusal_as_one_error_line(demo_root, tmp_path):
    result = run_train_py(train_py_args("MMA", demo_root, tmp_path, opts=["OPTIM.NAME", "lamb", *TRAIN_BASE]))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"Error: OPTIM.NAME = 'lamb' is not supported; supported: "
                                                  f"{', '.join(OPTIMIZERS)}."]


def test_every_supported_transform_builds_and_runs():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8))
    for choice in TRANSFORMS:
        cfg = default_cfg(["INPUT.TRANSFORMS", f"['{choice}']", "INPUT.SIZE", "(32, 32)"])
        for is_train in (True, False):
            output = engine.build_transform(cfg, is_train=is_train)(image)
            assert output.shape == (3, 32, 32), (choice, is_train)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_name_builds_its_torch_optimizer(name):
    optim_cfg = default_cfg(["OPTIM.NAME", name]).OPTIM
    optimizer = engine.build_optimizer(torch.nn.Linear(2, 2), optim_cfg)
    expected = {"adam": "Adam", "amsgrad": "Adam", "sgd": "SGD", "rmsprop": "RMSprop", "radam": "RAdam",
                "adamw": "AdamW"}[name]
    assert type(optimizer).__name__ == expected  # Dassl brings its own RAdam class
    assert optimizer.param_groups[0].get("amsgrad", False) == (name == "amsgrad")


def test_staged_lr_gives_the_base_layers_a_multiple_of_the_rate():
    model = torch.nn.Sequential()
    model.add_module("backbone", torch.nn.Linear(2, 2))
    model.add_module("head", torch.nn.Linear(2, 1))
    optim_cfg = default_cfg(["OPTIM.STAGED_LR", "True", "OPTIM.NEW_LAYERS", "('head',)", "OPTIM.LR", "0.1",
                             "OPTIM.BASE_LR_MULT", "0.5"]).OPTIM
    base, new = engine.build_optimizer(model, optim_cfg).param_groups
    assert base["lr"] == pytest.approx(0.05) and new["lr"] == pytest.approx(0.1)
    assert len(base["params"]) == 2 and new["params"][0] is model.head.weight


@pytest.mark.parametrize("opts, expected", [
    (["OPTIM.LR_SCHEDULER", "single_step", "OPTIM.STEPSIZE", "(2,)"], [1.0, 1.0, 0.1, 0.1]),
    (["OPTIM.LR_SCHEDULER", "single_step"], [1.0, 1.0, 1.0, 1.0]),  # a step <= 0 means MAX_EPOCH
    (["OPTIM.LR_SCHEDULER", "multi_step", "OPTIM.STEPSIZE", "(1, 3)"], [1.0, 0.1, 0.1, 0.01]),
    (["OPTIM.LR_SCHEDULER", "single_step", "OPTIM.STEPSIZE", "(1,)", "OPTIM.WARMUP_EPOCH", "2",
      "OPTIM.WARMUP_TYPE", "linear", "OPTIM.WARMUP_MIN_LR", "0.2"], [0.2, 0.5, 1.0, 0.1]),  # recounted after warmup
])
def test_step_schedules_follow_stepsize_and_gamma(opts, expected):
    optim_cfg = default_cfg(["OPTIM.NAME", "sgd", "OPTIM.LR", "1.0", "OPTIM.MAX_EPOCH", "4", *opts]).OPTIM
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = engine.build_optimizer([parameter], optim_cfg)
    scheduler = engine.build_lr_scheduler(optimizer, optim_cfg)
    rates = []
    for _ in range(4):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx(expected)


def test_per_class_results_and_the_confusion_matrix(tmp_path, capsys):
    cfg = default_cfg(["TEST.PER_CLASS_RESULT", "True", "TEST.COMPUTE_CMAT", "True", "OUTPUT_DIR", str(tmp_path)])
    evaluator = engine.build_evaluator(cfg, lab2cname={0: "cat", 1: "dog"})
    evaluator.process(F.one_hot(torch.tensor([0, 0, 1, 0]), 2).float(), torch.tensor([0, 0, 1, 1]))
    results = evaluator.evaluate()
    printed = capsys.readouterr().out
    assert "=> per-class result\n* class: 0 (cat)\ttotal: 2\tcorrect: 2\tacc: 100.0%\n" in printed
    assert "* class: 1 (dog)\ttotal: 2\tcorrect: 1\tacc: 50.0%\n* average: 75.0%\n" in printed
    assert results["perclass_accuracy"] == pytest.approx(75.0)
    # Dassl saves a numpy array (a pickle): this test reads back the file it just had written.
    cmat = torch.load(tmp_path / "cmat.pt", weights_only=False)
    assert np.allclose(cmat, [[1.0, 0.0], [0.5, 0.5]])


def test_items_hold_k_augmented_views_and_the_untransformed_image(demo_root, tmp_path):
    cfg = make_cfg("MMA", demo_root, tmp_path, opts=[*TRAIN_BASE, "DATALOADER.K_TRANSFORMS", "2",
                                                     "DATALOADER.RETURN_IMG0", "True"])
    dm = engine.DataManager(cfg)
    item = dm.train_loader_x.dataset[0]
    assert len(item["img"]) == 2 and item["img"][0].shape == (3, 32, 32)
    assert item["img0"].shape == (3, 32, 32)
    assert dm.test_loader.dataset[0]["img"].shape == (3, 32, 32)  # one view at test time


def test_an_unknown_dataset_name_is_dassls_error_with_a_suggestion(demo_root, tmp_path):
    cfg = make_cfg("MMA", demo_root, tmp_path)
    cfg.defrost()
    cfg.DATASET.NAME = "Demoo"
    with pytest.raises(ValueError, match=r"do you mean \[Demo\]"):
        engine.build_dataset(cfg)


def test_init_weights_load_every_tensor_whose_name_and_shape_match(tmp_path, capsys):
    source = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    weights = {f"module.{key}": value for key, value in source.state_dict().items()}
    weights["module.1.weight"] = torch.zeros(5, 5)  # a shape the model does not have: discarded
    torch.save({"state_dict": weights}, tmp_path / "weights.pth")
    target = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    engine.load_pretrained_weights(target, str(tmp_path / "weights.pth"))
    assert torch.equal(target[0].weight, source[0].weight) and torch.equal(target[1].bias, source[1].bias)
    assert not torch.equal(target[1].weight, source[1].weight)
    assert "Layers discarded due to unmatched keys or size: ['1.weight']" in capsys.readouterr().out


class PlainTrainer(engine.TrainerX):
    """A CoOp-shaped trainer that keeps Dassl's own checkpoint, resume and model-loading steps."""

    def build_model(self):
        self.model = torch.nn.Linear(3 * 32 * 32, self.num_classes).to(self.device)
        self.optim = engine.build_optimizer(self.model, self.cfg.OPTIM)
        self.sched = engine.build_lr_scheduler(self.optim, self.cfg.OPTIM)
        self.register_model("linear", self.model, self.optim, self.sched)

    def model_inference(self, image):
        return self.model(image.flatten(1))

    def forward_backward(self, batch):
        image, label, _ = self.parse_batch_train(batch)
        loss = F.cross_entropy(self.model_inference(image), label)
        self.model_backward_and_update(loss)
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return {"loss": loss.item()}


def test_dassls_own_trainer_steps_train_keep_the_best_val_model_and_resume(demo_root, tmp_path, capsys):
    opts = [*TRAIN_BASE, "TEST.FINAL_MODEL", "best_val"]
    PlainTrainer(make_cfg("MMA", demo_root, tmp_path, opts=[*opts, "OPTIM.MAX_EPOCH", "1"])).train()
    printed = capsys.readouterr().out
    assert "No checkpoint found, train from scratch" in printed and "Evaluate on the *val* set" in printed
    assert "Deploy the model with the best val performance" in printed
    folder = tmp_path / "linear"
    assert {"model.pth.tar-1", "model-best.pth.tar", "checkpoint"} <= set(os.listdir(folder))
    assert f"Load {folder / 'model-best.pth.tar'} to linear (epoch=1, val_result=" in printed

    resumed = PlainTrainer(make_cfg("MMA", demo_root, tmp_path, opts=[*opts, "OPTIM.MAX_EPOCH", "2"]))
    resumed.train()
    printed = capsys.readouterr().out
    assert f"Found checkpoint at {tmp_path} (will resume training)" in printed and "Previous epoch: 1" in printed
    assert "epoch [2/2]" in printed and "epoch [1/2]" not in printed
    assert os.path.exists(folder / "model.pth.tar-2")
