"""Estimate of the whole base-to-novel grid's cost, from the protocol definition, CoOp's dataset sizes and
per-image costs: measured here (`--measure`, ViT-B/16 random weights through scripts/bench_adapters.py), or given.

    python scripts/bench_grid.py                       # the GPU estimate, from the stated per-image costs
    python scripts/bench_grid.py --measure             # this machine: per-image costs measured first
    python scripts/bench_grid.py --train-ms MMA=1.9 RMAdapter=2.4 RMMA=1.4 --eval-ms 0.8 --startup-s 12
    python scripts/bench_grid.py --isolate             # every run in a process of its own (harness.sweep --isolate)

The model: a run costs its start-up (a cold one for each worker's first run, or for every run with --isolate; a
warm one otherwise, see harness/sweep/worker.py), plus (training runs) epochs x training images x the trainer's
training cost per image, plus its test images x the evaluation cost per image. Training images are 16 shots per
base class; test images are half of each dataset's test split (base or new classes). Zero-shot CLIP only evaluates.
"""
import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness.protocols import BASE2NEW, PROTOCOL_SHOTS, Selection, expand, max_epoch, trains_nothing

# CoOp's datasets: (classes, test images), as in CoOp's dataset table.
DATASET_SIZES = {
    "imagenet": (1000, 50000), "caltech101": (100, 2465), "oxford_pets": (37, 3669),
    "stanford_cars": (196, 8041), "oxford_flowers": (102, 2463), "food101": (101, 30300),
    "fgvc_aircraft": (100, 3333), "sun397": (397, 19850), "dtd": (47, 1692), "eurosat": (10, 8100),
    "ucf101": (101, 3783),
}
TRAINERS = ("ZeroshotCLIP", "MMA", "RMAdapter", "RMMA")
# Assumed GPU costs (ms per image, ViT-B/16): training as published for MMA and R-MMA on an RTX 4090 (R-MMA's
# poster: 2.2 and 1.6), RMAdapter at MMA x 1.32 (scripts/bench_adapters.py's measured step ratio); evaluation about
# 1 ms per image for the frozen forward with cached text features.
ASSUMED_TRAIN_MS = {"MMA": 2.2, "RMAdapter": 2.2 * 1.32, "RMMA": 1.6}
ASSUMED_EVAL_MS = 1.0
ASSUMED_STARTUP_S = 15.0
# A warm worker's later runs: 0.33 s measured for ViT-B/16 on a 2-core CPU machine (scripts/bench_startup.py: a
# copy of the frozen backbone, the dataset, cached text prefixes), plus the copy to the GPU.
ASSUMED_WARM_STARTUP_S = 0.5


def parse_costs(pairs):
    costs = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        costs[name] = float(value)
    return costs


def measured_costs(trainers, batch_size, steps):
    """({trainer: training ms/image}, evaluation ms/image) measured on random ViT-B/16 weights at 10 classes."""
    import torch
    from bench_adapters import benchmark_config, measure

    from harness.registration import register_all

    register_all()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    train, evaluation = {}, []
    for name in trainers:
        cfg = benchmark_config(name, "vit_b16_ep5", None if device.type == "cuda" else "fp32")
        train_ms, eval_ms, _ = measure(name, cfg, 10, batch_size, steps, device)
        train[name] = train_ms
        evaluation.append(eval_ms)
        print(f"measured {name}: train {train_ms:.1f} ms/image, eval {eval_ms:.1f} ms/image", flush=True)
    return train, min(evaluation)


def grid_seconds(train_ms, eval_ms, startup_s, seeds, warm_startup_s=None, workers=1):
    """{trainer: (runs, seconds)} over the base-to-novel grid: every run starts cold (`startup_s`), or, with
    `warm_startup_s`, only the first run of each of the `workers` warm workers does."""
    selection = Selection(BASE2NEW, TRAINERS, tuple(DATASET_SIZES), tuple(seeds))
    totals, cold_starts = {}, 0
    for job in expand(selection):
        classes, test_images = DATASET_SIZES[job.runs[0].dataset]
        runs, seconds = totals.get(job.trainer, (0, 0.0))
        for run in job.runs:
            cold = warm_startup_s is None or cold_starts < workers
            cold_starts += cold
            seconds += (startup_s if cold else warm_startup_s) + test_images / 2 * eval_ms / 1000
            if not run.eval_only:
                images = PROTOCOL_SHOTS * math.ceil(classes / 2)
                seconds += max_epoch(run.trainer, run.config) * images * train_ms[run.trainer] / 1000
        totals[job.trainer] = (runs + len(job.runs), seconds)
    return totals


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measure", action="store_true", help="measure per-image costs on this machine first")
    parser.add_argument("--train-ms", nargs="+", default=[], metavar="TRAINER=MS")
    parser.add_argument("--eval-ms", type=float)
    parser.add_argument("--startup-s", type=float, default=ASSUMED_STARTUP_S,
                        help="a cold start-up (process, CLIP, data)")
    parser.add_argument("--warm-startup-s", type=float, default=ASSUMED_WARM_STARTUP_S,
                        help="a warm worker's later runs")
    parser.add_argument("--workers", type=int, default=1, help="warm workers (one per GPU); each starts cold once")
    parser.add_argument("--isolate", action="store_true", help="every run starts cold (a process per run)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()

    train_ms, eval_ms = dict(ASSUMED_TRAIN_MS), ASSUMED_EVAL_MS
    source = "assumed GPU costs (see ASSUMED_* in this script)"
    if args.measure:
        train_ms, eval_ms = measured_costs([t for t in TRAINERS if not trains_nothing(t)], args.batch_size,
                                           args.steps)
        source = "costs measured on this machine"
    if args.train_ms or args.eval_ms is not None:
        source += ", overridden on the command line"
    train_ms.update(parse_costs(args.train_ms))
    eval_ms = args.eval_ms if args.eval_ms is not None else eval_ms
    warm_startup_s = None if args.isolate else args.warm_startup_s
    totals = grid_seconds(train_ms, eval_ms, args.startup_s, args.seeds, warm_startup_s, args.workers)
    startups = (f"start-up {args.startup_s:.0f} s per run (--isolate)" if args.isolate else
                f"start-up {args.startup_s:.0f} s cold (once per worker, {args.workers}), {args.warm_startup_s:.2f} s "
                "warm")
    print(f"Base-to-novel grid, 11 datasets x seeds {' '.join(map(str, args.seeds))}; {source}: training "
          f"{', '.join(f'{k} {v:.2f}' for k, v in train_ms.items())} ms/image, evaluation {eval_ms:.2f} ms/image, "
          f"{startups}")
    print(f"{'trainer':>12} {'runs':>6} {'hours':>9}")
    for trainer, (runs, seconds) in totals.items():
        print(f"{trainer:>12} {runs:>6} {seconds / 3600:>9.2f}")
    runs = sum(runs for runs, _ in totals.values())
    hours = sum(seconds for _, seconds in totals.values()) / 3600
    cold = runs if args.isolate else min(args.workers, runs)
    startup_hours = (cold * args.startup_s + (runs - cold) * args.warm_startup_s) / 3600
    print(f"{'all':>12} {runs:>6} {hours:>9.2f}   (start-up alone: {startup_hours:.2f} h)")


if __name__ == "__main__":
    main()
