"""Checkpoint faults: every read is weights-only and a file that cannot be loaded is one line naming it and why;
checkpoints written by Dassl itself (pickled schedulers) still load for evaluation; writes are atomic and follow
the umask."""
import os
from collections import OrderedDict

import pytest
import torch

from harness.bundled.torchtools import load_checkpoint, save_checkpoint
from harness.errors import CheckpointError
from tests.trainer_helpers import build_test_trainer


class RunsCode:
    """A pickle that would run a shell command when loaded with a plain pickle."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def mma_trainer(demo_root, tmp_path_factory):
    return build_test_trainer("MMA", demo_root, tmp_path_factory.mktemp("mma"))


def save_adapter(trainer, folder, epoch, **extra):
    """A checkpoint of the trainer's adapter in Dassl's layout, as this harness writes it."""
    trainer.save_model(epoch - 1, str(folder))
    path = folder / "adapter_learner" / f"model.pth.tar-{epoch}"
    if extra:
        checkpoint = torch.load(path, weights_only=True)
        torch.save({**checkpoint, **extra}, path)
    return path


def test_a_pickle_that_could_run_code_is_refused_without_running_it(tmp_path):
    path, marker = tmp_path / "model.pth.tar-1", tmp_path / "ran"
    torch.save({"state_dict": {}, "epoch": 1, "payload": RunsCode(marker)}, path)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(str(path))
    assert str(error.value).startswith(f"{path}: not loaded because it could run code: it pickles posix.system")
    assert "\n" not in str(error.value) and not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "empty", "not_a_checkpoint"])
def test_a_damaged_checkpoint_is_one_line_naming_the_file(mma_trainer, tmp_path, damage):
    path = save_adapter(mma_trainer, tmp_path, epoch=1)
    content = {"truncated": path.read_bytes()[: path.stat().st_size // 2], "empty": b"",
               "not_a_checkpoint": b"<html>not found</html>"}[damage]
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        mma_trainer.load_model(str(tmp_path), epoch=1)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert "damaged" in message and "could run code" not in message


def test_a_checkpoint_of_another_trainer_is_refused_by_name(mma_trainer, demo_root, tmp_path):
    save_adapter(mma_trainer, tmp_path, epoch=1)
    rmadapter = build_test_trainer("RMAdapter", demo_root, tmp_path / "rmadapter")
    with pytest.raises(CheckpointError, match=r"model\.pth\.tar-1 was written by the MMA trainer, not RMAdapter"):
        rmadapter.load_model(str(tmp_path), epoch=1)


def test_resuming_with_another_adapter_config_is_one_line(mma_trainer, demo_root, tmp_path):
    save_adapter(mma_trainer, tmp_path, epoch=1)
    smaller = build_test_trainer("MMA", demo_root, tmp_path, opts=["TRAINER.MMA.ADAPTER_DIM", "8"])
    with pytest.raises(CheckpointError, match=r"model\.pth\.tar-1 does not match the MMA adapter built from this "
                                              r"config \(Error\(s\) in loading state_dict"):
        smaller.resume_model_if_exist(str(tmp_path))


def test_a_checkpoint_written_by_dassl_with_a_pickled_scheduler_loads_for_evaluation(mma_trainer, tmp_path):
    """Dassl's warmup scheduler saves its successor object (holding its optimizer), as the official MMA code's
    checkpoints do; the weights load, nothing else of the pickle is used."""
    adapter = mma_trainer._models["adapter_learner"]
    trained = OrderedDict((key, torch.randn_like(value)) for key, value in adapter.state_dict().items())
    optimizer = torch.optim.SGD(adapter.parameters(), lr=0.1, momentum=0.9)
    successor = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 5.0)
    for parameter in adapter.parameters():
        parameter.grad = torch.ones_like(parameter)
    optimizer.step()  # a momentum buffer per parameter: the optimizer's state is a filled defaultdict
    dassl_scheduler_state = {"successor": successor, "warmup_epoch": 1, "cons_lr": 1e-5, "last_epoch": 5}
    folder = tmp_path / "adapter_learner"
    folder.mkdir()
    torch.save({"state_dict": {**trained, "token_embedding": torch.zeros(3)}, "epoch": 5,
                "optimizer": optimizer.state_dict(), "scheduler": dassl_scheduler_state, "val_result": None},
               folder / "model.pth.tar-5")
    mma_trainer.load_model(str(tmp_path), epoch=5)
    assert all(torch.equal(adapter.state_dict()[key], value) for key, value in trained.items())


def test_a_dassl_checkpoint_resumes_with_a_warning_that_batches_will_differ(mma_trainer, tmp_path, capsys):
    path = save_adapter(mma_trainer, tmp_path, epoch=1)
    checkpoint = torch.load(path, weights_only=True)
    del checkpoint["run_state"]
    torch.save(checkpoint, path)
    assert mma_trainer.resume_model_if_exist(str(tmp_path)) == 1
    assert "holds no random-number states" in capsys.readouterr().err
    assert mma_trainer.resumed_rng_states is None


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_checkpoints_follow_the_umask_and_leave_no_temporary_file(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        save_checkpoint({"state_dict": {"w": torch.ones(2)}, "epoch": 1}, str(tmp_path / "adapter_learner"))
    finally:
        os.umask(previous)
    folder = tmp_path / "adapter_learner"
    assert sorted(os.listdir(folder)) == ["checkpoint", "model.pth.tar-1"]
    assert {(folder / name).stat().st_mode & 0o777 for name in os.listdir(folder)} == {mode}
