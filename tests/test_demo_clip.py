"""The tiny-demo backbone: the tiny CLIP pretrained on the demo's kind of images knows the demo's words, the same
weights come out of every pretraining, and the cache holding them is keyed and safe to fill concurrently."""
import os
import subprocess
import sys

import pytest
import torch

import harness.clip.demo_pretraining as demo_pretraining
from harness.clip.backbones import TINY, load_clip
from harness.data.synthetic_shapes import SHAPE_CLASSES
from harness.errors import BackboneError
from tests.trainer_helpers import REPO_ROOT, build_test_trainer

CHANCE = 100 / 5  # the demo's base and new halves have 5 classes each


def test_pretraining_pairs_use_every_word_of_the_demo_but_none_of_its_classes():
    pairs = demo_pretraining.pretraining_pairs()
    assert len(pairs) > len(SHAPE_CLASSES)
    assert not any(colour == shape for colour, shape in pairs)
    assert {colour for colour, _ in pairs} == {shape for _, shape in pairs} == set(range(len(SHAPE_CLASSES)))
    captions = set(demo_pretraining.captions(pairs, demo_pretraining.RECIPE))
    assert not captions & {f"a photo of a {name}." for name, _, _ in SHAPE_CLASSES}


def test_pretraining_gives_the_same_weights_twice(tmp_path, monkeypatch):
    weights = []
    for run in ("first", "second"):
        monkeypatch.setenv(demo_pretraining.CACHE_VARIABLE, str(tmp_path / run))
        weights.append(demo_pretraining.pretrained_demo_state_dict(load_clip(TINY)))
    first, second = weights
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert not torch.equal(first["visual.conv1.weight"], load_clip(TINY).visual.conv1.weight)


def test_zero_shot_clip_on_the_demos_new_classes_is_at_least_twice_chance(demo_root, tmp_path):
    for subsample in ("base", "new"):
        zero_shot = build_test_trainer("ZeroshotCLIP", demo_root, tmp_path / subsample,
                                       opts=["DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", subsample])
        assert zero_shot.cfg.MODEL.BACKBONE.NAME == "tiny-demo"
        assert zero_shot.test() >= 2 * CHANCE, subsample


def test_any_change_of_the_recipe_changes_the_cache_key():
    changed = {**demo_pretraining.RECIPE, "steps": demo_pretraining.RECIPE["steps"] + 1}
    assert demo_pretraining.recipe_key(changed) != demo_pretraining.recipe_key()
    assert demo_pretraining.recipe_key() == demo_pretraining.recipe_key(dict(demo_pretraining.RECIPE))


def test_concurrent_first_uses_pretrain_once_and_load_the_same_weights(tmp_path):
    script = ("import sys, torch; import harness.clip; from harness.clip.backbones import load_clip; "
              "torch.save(load_clip('tiny-demo').state_dict(), sys.argv[1])")
    env = {**os.environ, demo_pretraining.CACHE_VARIABLE: str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    processes = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / f"{k}.pt")], cwd=REPO_ROOT, env=env,
                                  stdout=subprocess.PIPE, text=True) for k in range(2)]
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0]
    assert sum(output.count("Pretraining the tiny-demo CLIP") for output in outputs) == 1
    cached = [name for name in os.listdir(tmp_path / "cache") if name.endswith(".pt")]
    assert cached == [f"tiny-demo-{demo_pretraining.recipe_key()}.pt"]
    first, second = (torch.load(tmp_path / f"{k}.pt", weights_only=True) for k in range(2))
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_tiny_demo_takes_no_weights_setting():
    with pytest.raises(BackboneError, match="tiny-demo backbone brings its own pretrained weights"):
        load_clip("tiny-demo", "random")
