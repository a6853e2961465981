"""Training-step and evaluation cost per image of the adapter trainers, and their ratios to MMA, in one run.

Each trainer is built from its protocol config (`configs/trainers/<TRAINER>/<config>.yaml`) on random weights of
the config's backbone (ViT-B/16), with N synthetic class names and random images, so only the model's step is timed
(no data loading). The ratios compare steps measured in the same process, one after the other.

    python scripts/bench_adapters.py [--trainers MMA RMAdapter RMMA] [--classes 10 500] [--batch-size 4]
                                     [--steps 3] [--prec fp32] [--device cpu] [--opts KEY VALUE ...]
"""
import argparse
import contextlib
import io
import os
import sys
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch
from timing import median_seconds

from harness.clip.backbones import image_size
from harness.config import extend_cfg
from harness.engine import TRAINER_REGISTRY, TrainerBase, get_cfg_default
from harness.registration import register_all

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = "MMA"


def benchmark_config(trainer_name, config_name, prec, opts=(), weights="random"):
    cfg = extend_cfg(get_cfg_default())
    cfg.merge_from_file(os.path.join(REPO_ROOT, "configs", "trainers", trainer_name, f"{config_name}.yaml"))
    node = cfg.TRAINER[TRAINER_REGISTRY.get(trainer_name).config_node]
    cfg.merge_from_list(["TRAINER.NAME", trainer_name, "MODEL.BACKBONE.WEIGHTS", weights, *opts])
    if prec:
        node.PREC = prec
    cfg.freeze()
    return cfg


def build_model_only(trainer_name, cfg, classnames, device):
    """The trainer with its model, optimizer and scheduler, but no dataset or data loaders."""
    trainer_class = TRAINER_REGISTRY.get(trainer_name)
    trainer = trainer_class.__new__(trainer_class)
    TrainerBase.__init__(trainer)
    trainer.check_cfg(cfg)
    trainer.cfg, trainer.device, trainer.output_dir = cfg, device, ""
    trainer.start_epoch = trainer.epoch = 0
    trainer.max_epoch = cfg.OPTIM.MAX_EPOCH
    trainer.dm = SimpleNamespace(dataset=SimpleNamespace(classnames=classnames))
    with contextlib.redirect_stdout(io.StringIO()):  # the build log is not part of the benchmark's report
        trainer.build_model()
    trainer.batch_idx, trainer.num_batches = 0, sys.maxsize  # never the epoch's last batch: no LR step
    return trainer


def measure(trainer_name, cfg, num_classes, batch_size, steps, device, eval_batch_size=None, train=True):
    """(training ms/image, evaluation ms/image, peak training MiB on CUDA); `train=False` times evaluation only."""
    classnames = [f"class number {i}" for i in range(num_classes)]
    trainer = build_model_only(trainer_name, cfg, classnames, device)
    size = image_size(trainer.model.clip)
    eval_batch_size = eval_batch_size or batch_size
    batch = {"img": torch.randn(batch_size, 3, size, size, device=device),
             "label": torch.randint(0, num_classes, (batch_size,), device=device)}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    train_seconds = peak_memory = float("nan")
    if train:
        trainer.set_model_mode("train")
        train_seconds = median_seconds(lambda: trainer.forward_backward(batch), steps, device)
        if device.type == "cuda":
            peak_memory = torch.cuda.max_memory_allocated() / 2**20
    trainer.set_model_mode("eval")
    eval_images = torch.randn(eval_batch_size, 3, size, size, device=device)
    with torch.no_grad():
        eval_seconds = median_seconds(lambda: trainer.model_inference(eval_images), steps, device)
    return 1000 * train_seconds / batch_size, 1000 * eval_seconds / eval_batch_size, peak_memory


def main():
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trainers", nargs="+", default=["MMA", "RMAdapter", "RMMA"])
    parser.add_argument("--config", default="vit_b16_ep5", help="config file name under configs/trainers/<TRAINER>/")
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 500])
    parser.add_argument("--batch-size", type=int, default=16 if cuda else 4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--prec", default=None if cuda else "fp32", help="override each trainer's PREC")
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument("--opts", nargs="*", default=[], help="KEY VALUE config options for every trainer")
    args = parser.parse_args()

    register_all()
    device = torch.device(args.device)
    trainers = [name for name in args.trainers if name in TRAINER_REGISTRY.registered_names()]
    print(f"device {device}, batch {args.batch_size}, median of {args.steps} steps, "
          f"config {args.config}, PREC {args.prec or 'from config'}, torch threads {torch.get_num_threads()}, "
          f"options {' '.join(args.opts) or 'none'}")
    print(f"{'trainer':>10} {'classes':>8} {'train ms/img':>13} {'eval ms/img':>12} {'train / MMA':>12} "
          f"{'eval / MMA':>11} {'peak MiB':>9}")
    for num_classes in args.classes:
        reference = None
        for name in trainers:
            cfg = benchmark_config(name, args.config, args.prec, args.opts)
            train_ms, eval_ms, peak = measure(name, cfg, num_classes, args.batch_size, args.steps, device)
            if name == REFERENCE:
                reference = (train_ms, eval_ms)
            ratios = (f"{train_ms / reference[0]:>11.2f}x {eval_ms / reference[1]:>10.2f}x" if reference
                      else f"{'-':>12} {'-':>11}")
            print(f"{name:>10} {num_classes:>8} {train_ms:>13.1f} {eval_ms:>12.1f} {ratios} {peak:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
