"""Per-epoch learning rates as Dassl steps its schedulers (DASSL_COOP.md §1.7)."""
import math

import pytest
import torch

from harness.config import extend_cfg
from harness.engine import build_lr_scheduler, build_optimizer, get_cfg_default


def epoch_learning_rates(opts):
    cfg = extend_cfg(get_cfg_default())
    cfg.merge_from_list(opts)
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = build_optimizer([parameter], cfg.OPTIM)
    scheduler = build_lr_scheduler(optimizer, cfg.OPTIM)
    rates = []
    for _ in range(cfg.OPTIM.MAX_EPOCH):
        rates.append(optimizer.param_groups[0]["lr"])
        parameter.grad = torch.zeros(1)
        optimizer.step()
        scheduler.step()  # once per epoch, after the epoch's last optimizer step
    return rates


def test_mma_schedule_is_cosine_without_warmup():
    rates = epoch_learning_rates(["OPTIM.NAME", "sgd", "OPTIM.LR", "0.0015", "OPTIM.MAX_EPOCH", "5",
                                  "OPTIM.LR_SCHEDULER", "cosine", "OPTIM.WARMUP_EPOCH", "0"])
    assert rates == pytest.approx([0.0015 * (1 + math.cos(math.pi * e / 5)) / 2 for e in range(5)], abs=1e-12)
    assert rates == pytest.approx([0.0015, 0.001357, 0.000982, 0.000518, 0.000143], abs=5e-7)


def test_maple_schedule_has_one_constant_warmup_epoch_then_shifted_cosine():
    rates = epoch_learning_rates(["OPTIM.NAME", "sgd", "OPTIM.LR", "0.0035", "OPTIM.MAX_EPOCH", "5",
                                  "OPTIM.LR_SCHEDULER", "cosine", "OPTIM.WARMUP_EPOCH", "1",
                                  "OPTIM.WARMUP_TYPE", "constant", "OPTIM.WARMUP_CONS_LR", "1e-5"])
    expected = [1e-5] + [0.0035 * (1 + math.cos(math.pi * (e - 1) / 5)) / 2 for e in range(1, 5)]
    assert rates == pytest.approx(expected, abs=1e-12)
    assert rates == pytest.approx([1e-5, 0.0035, 0.003166, 0.002291, 0.001209], abs=5e-7)


def test_warmup_scheduler_state_round_trips_without_pickled_objects(tmp_path):
    cfg = extend_cfg(get_cfg_default())
    cfg.merge_from_list(["OPTIM.NAME", "sgd", "OPTIM.LR_SCHEDULER", "cosine", "OPTIM.MAX_EPOCH", "4",
                         "OPTIM.WARMUP_EPOCH", "1", "OPTIM.WARMUP_TYPE", "linear"])
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = build_optimizer([parameter], cfg.OPTIM)
    scheduler = build_lr_scheduler(optimizer, cfg.OPTIM)
    for _ in range(2):
        optimizer.step()
        scheduler.step()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    restored_optimizer = build_optimizer([torch.nn.Parameter(torch.zeros(1))], cfg.OPTIM)
    restored = build_lr_scheduler(restored_optimizer, cfg.OPTIM)
    restored_optimizer.load_state_dict(state["optimizer"])
    restored.load_state_dict(state["scheduler"])
    for _ in range(2):
        optimizer.step()
        scheduler.step()
        restored_optimizer.step()
        restored.step()
        assert restored.get_last_lr() == pytest.approx(scheduler.get_last_lr())
