"""MMA's training step with and without the frozen text prefix (harness/clip/adapted_clip.py), in one run.

MMA adapts text blocks 5-12: blocks 1-4 give the same hidden states for the same class prompts at every step,
and with the prefix they run once instead of at every step. Built like scripts/bench_adapters.py (the protocol
config on random ViT-B/16 weights, N synthetic class names, random images); the two settings alternate step by
step on one trainer. On CPU a step is timed in process CPU time (one thread: waiting for a core shared with other
jobs is not counted), on CUDA in wall time.

    python scripts/bench_text_prefix.py [--classes 10 500] [--batch-size 4] [--steps 3] [--prec fp32]
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch
from bench_adapters import benchmark_config, build_model_only

from harness.clip.backbones import image_size
from harness.clip.towers import frozen_blocks
from harness.registration import register_all


def step_seconds(trainer, batch, device):
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = clock()
    trainer.forward_backward(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return clock() - start


def main():
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trainer", default="MMA")
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 500])
    parser.add_argument("--batch-size", type=int, default=16 if cuda else 4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--prec", default=None if cuda else "fp32", help="override the trainer's PREC")
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    args = parser.parse_args()

    register_all()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    cfg = benchmark_config(args.trainer, "vit_b16_ep5", args.prec)
    print(f"{args.trainer}, device {device}, batch {args.batch_size}, median of {args.steps} alternating steps, "
          f"PREC {args.prec or 'from config'}, torch threads {torch.get_num_threads()}")
    print(f"{'classes':>8} {'frozen blocks':>14} {'uncached ms/step':>17} {'prefix ms/step':>15} "
          f"{'prefix / uncached':>18}")
    for num_classes in args.classes:
        trainer = build_model_only(args.trainer, cfg, [f"class number {i}" for i in range(num_classes)], device)
        size = image_size(trainer.model.clip)
        batch = {"img": torch.randn(args.batch_size, 3, size, size, device=device),
                 "label": torch.randint(0, num_classes, (args.batch_size,), device=device)}
        trainer.set_model_mode("train")
        times = {True: [], False: []}
        for step in range(args.steps + 1):
            for cached in (True, False):
                trainer.model.cache_frozen_text_prefix = cached
                seconds = step_seconds(trainer, batch, device)
                if step:  # the first round warms up (and fills the prefix)
                    times[cached].append(seconds)
        uncached, cached = (1000 * statistics.median(times[flag]) for flag in (False, True))
        print(f"{num_classes:>8} {frozen_blocks(trainer.model.clip, 'text'):>14} {uncached:>17.0f} "
              f"{cached:>15.0f} {cached / uncached:>17.2f}x", flush=True)


if __name__ == "__main__":
    main()
