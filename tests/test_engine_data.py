"""Data loading as Dassl does it: DatasetWrapper items, samplers, drop_last, and the train/test transforms."""
import torch
from torchvision import transforms as T

from harness.engine import DataManager
from tests.trainer_helpers import make_cfg


def demo_data_manager(demo_root, tmp_path, capsys, **opts):
    cfg = make_cfg("MMA", demo_root, tmp_path, opts=["DATASET.NUM_SHOTS", "16", *sum(opts.items(), ())])
    capsys.readouterr()
    return DataManager(cfg), capsys.readouterr().out


def test_items_carry_dassl_keys_and_loaders_use_dassl_samplers(demo_root, tmp_path, capsys):
    dm, _ = demo_data_manager(demo_root, tmp_path, capsys)
    batch = next(iter(dm.train_loader_x))
    assert set(batch) == {"img", "label", "domain", "impath", "index"}
    assert batch["img"].shape == (16, 3, 32, 32) and batch["img"].dtype == torch.float32
    assert isinstance(dm.train_loader_x.sampler, torch.utils.data.RandomSampler)
    assert isinstance(dm.test_loader.sampler, torch.utils.data.SequentialSampler)
    test_batch = next(iter(dm.test_loader))
    assert test_batch["index"].tolist() == list(range(len(test_batch["index"])))
    assert dm.num_classes == 10 and len(dm.dataset.train_x) == 160


def test_train_loader_drops_the_last_partial_batch_only_when_a_full_batch_exists(demo_root, tmp_path, capsys):
    dm, _ = demo_data_manager(demo_root, tmp_path, capsys, **{"DATALOADER.TRAIN_X.BATCH_SIZE": "48"})
    assert dm.train_loader_x.drop_last and len(dm.train_loader_x) == 160 // 48
    assert not dm.test_loader.drop_last
    dm, _ = demo_data_manager(demo_root, tmp_path, capsys, **{"DATALOADER.TRAIN_X.BATCH_SIZE": "200"})
    assert not dm.train_loader_x.drop_last and len(dm.train_loader_x) == 1


def test_transforms_are_dassls_random_resized_crop_flip_normalize_and_resize_center_crop(demo_root, tmp_path, capsys):
    dm, printed = demo_data_manager(demo_root, tmp_path, capsys)
    train_steps = dm.train_loader_x.dataset.transform.transforms
    test_steps = dm.test_loader.dataset.transform.transforms
    assert [type(step) for step in train_steps] == [T.RandomResizedCrop, T.RandomHorizontalFlip, T.ToTensor,
                                                    T.Normalize]
    assert train_steps[0].interpolation == T.InterpolationMode.BICUBIC and train_steps[0].scale == (0.08, 1.0)
    assert [type(step) for step in test_steps] == [T.Resize, T.CenterCrop, T.ToTensor, T.Normalize]
    assert test_steps[0].size == 32 and test_steps[0].interpolation == T.InterpolationMode.BICUBIC
    assert ("Building transform_train\n+ random resized crop (size=(32, 32), scale=(0.08, 1.0))\n+ random flip\n"
            in printed)
    assert "Building transform_test\n+ resize the smaller edge to 32\n+ 32x32 center crop\n" in printed


def test_the_harness_loaders_draw_the_engines_batches_for_a_seed(demo_root, tmp_path, capsys):
    import random

    from harness.data.loaders import build_data_manager

    cfg = make_cfg("MMA", demo_root, tmp_path, opts=["DATASET.NUM_SHOTS", "4", "DATASET.TEST_IMAGE_CACHE",
                                                     str(tmp_path / "cache")])
    drawn = []
    for build in (DataManager, build_data_manager):
        random.seed(1)
        torch.manual_seed(1)
        dm = build(cfg)
        loaders = (dm.train_loader_x, dm.train_loader_x, dm.val_loader, dm.test_loader)  # two epochs of training
        drawn.append([(batch["index"], batch["label"], batch["img"]) for loader in loaders for batch in loader])
    engine, harness = drawn
    assert len(engine) == len(harness)
    for (index, label, img), (h_index, h_label, h_img) in zip(engine, harness, strict=True):
        assert torch.equal(index, h_index) and torch.equal(label, h_label) and torch.equal(img, h_img)
