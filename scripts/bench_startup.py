"""Start-up of a run, cold (`python train.py`, a process of its own) and warm (the next run of a warm worker,
harness/sweep/worker.py), for ViT-B/16 (random weights in OpenAI's file layout, read from the CLIP cache folder as
real ones would be) and the demo backbone: seconds from the run's start to its first training step, split into
import / backbone load / dataset / text encoding (the records' startup_s and startup_phases_s). Then the demo grid
(24 runs, `--workers 2`) with `--isolate` and warm, in one run, as a ratio.

    python scripts/bench_startup.py [--runs 3] [--no-grid] [--keep DIR]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from harness.run_clock import PHASES  # noqa: E402

# (label, trainer config, options): one MMA training run per seed, on the demo dataset's base classes.
BACKBONES = {
    "ViT-B/16": ("vit_b16_ep5", ["OPTIM.MAX_EPOCH", "1", "DATASET.NUM_SHOTS", "1", "TRAINER.MMA.PREC", "fp32",
                                 "DATALOADER.TRAIN_X.BATCH_SIZE", "4", "DATALOADER.NUM_WORKERS", "0"]),
    "tiny-demo": ("demo", ["DATASET.NUM_SHOTS", "16"]),
}


def write_random_vit_b16(cache_dir):
    """ViT-B/16 with random weights as OpenAI's clip package stores it: a TorchScript archive of the fp16 model."""
    import torch

    import harness.engine  # noqa: F401  (first: makes torchvision importable)
    from harness.clip.backbones import load_clip, openai_checkpoint_path

    os.environ["CLIP_CACHE_DIR"] = cache_dir
    os.makedirs(cache_dir, exist_ok=True)
    path = openai_checkpoint_path("ViT-B/16")
    model = load_clip("ViT-B/16", "random").half().eval()
    del model._buffers["attn_mask"]
    image = torch.randn(1, 3, 224, 224).half()
    torch.jit.trace_module(model, {"encode_image": (image,)}, check_trace=False).save(path)
    return path


def ensure_demo_data(root):
    from harness.engine import DATASET_REGISTRY
    from harness.registration import register_all

    register_all()
    DATASET_REGISTRY.get("Demo").ensure_split_file(os.path.join(root, "demo"))


def train_arguments(backbone, data_root, output_dir, seed):
    config, options = BACKBONES[backbone]
    return ["--root", data_root, "--seed", str(seed), "--trainer", "MMA", "--dataset-config-file",
            "configs/datasets/demo.yaml", "--config-file", f"configs/trainers/MMA/{config}.yaml", "--output-dir",
            output_dir, *options, "DATASET.SUBSAMPLE_CLASSES", "base"]


def read_startup(output_dir):
    with open(os.path.join(output_dir, "metrics.json")) as file:
        record = json.load(file)
    return record["startup_s"], record["startup_phases_s"]


def cold_runs(backbone, data_root, work, runs, environment):
    startups = []
    for seed in range(1, runs + 1):
        output_dir = os.path.join(work, "cold", backbone.replace("/", "-"), f"seed{seed}")
        result = subprocess.run([sys.executable, "train.py", *train_arguments(backbone, data_root, output_dir, seed)],
                                cwd=REPO_ROOT, env=environment, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"cold run failed ({result.returncode}):\n{result.stderr[-3000:]}")
        startups.append(read_startup(output_dir))
    return startups


def warm_runs(backbone, data_root, work, runs, environment):
    """The runs of one warm worker; its first run is a cold start and is left out."""
    from harness.sweep.worker import WarmWorker

    worker = WarmWorker(sys.executable, environment, REPO_ROOT)
    startups = []
    try:
        with open(os.path.join(work, "warm.out"), "a") as output:
            for seed in range(1, runs + 2):
                output_dir = os.path.join(work, "warm", backbone.replace("/", "-"), f"seed{seed}")
                status = worker.run(train_arguments(backbone, data_root, output_dir, seed), output)
                if status != 0:
                    sys.exit(f"warm run failed ({status}); its output: {os.path.join(work, 'warm.out')}")
                startups.append(read_startup(output_dir))
    finally:
        worker.close()
    return startups[1:]


def median_row(label, mode, startups):
    total = statistics.median(startup for startup, _ in startups)
    phases = {name: statistics.median(phases[name] for _, phases in startups) for name in PHASES}
    other = max(total - sum(phases.values()), 0.0)
    cells = "".join(f"{phases[name]:>9.2f}" for name in PHASES)
    print(f"{label:>10} {mode:>5} {total:>10.2f}{cells}{other:>9.2f}", flush=True)
    return total


def demo_grid_seconds(data_root, work, isolate, environment):
    """The demo grid from scratch: its own copy of the dataset (no few-shot files) and its own test-image cache."""
    grid = os.path.join(work, "grid-isolate" if isolate else "grid-warm")
    grid_data = os.path.join(grid, "data")
    shutil.copytree(data_root, grid_data, ignore=shutil.ignore_patterns("split_fewshot"))
    command = [sys.executable, "-m", "harness.sweep", "launch", "--protocol", "base2new", "--datasets", "demo",
               "--cfg", "demo", "--trainers", "ZeroshotCLIP", "MMA", "RMAdapter", "RMMA", "--launcher", "local",
               "--workers", "2", "--root", grid_data, "--output", os.path.join(grid, "output"),
               *(["--isolate"] if isolate else [])]
    environment = {**environment, "HARNESS_TEST_IMAGE_CACHE": os.path.join(grid, "test-image-cache")}
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"the demo grid failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per backbone and mode (medians are printed)")
    parser.add_argument("--no-grid", action="store_true", help="leave out the demo grid's isolate-vs-warm ratio")
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temporary one, removed)")
    args = parser.parse_args()

    work = args.keep or tempfile.mkdtemp(prefix="bench-startup-")
    os.makedirs(work, exist_ok=True)
    data_root = os.path.join(work, "data")
    try:
        ensure_demo_data(data_root)
        weights = write_random_vit_b16(os.path.join(work, "clip"))
        # One intra-op thread per run, as the demo runs; the test-image cache in the work folder.
        environment = {**os.environ, "CLIP_CACHE_DIR": os.path.dirname(weights), "OMP_NUM_THREADS": "1",
                       "HARNESS_TEST_IMAGE_CACHE": os.path.join(work, "test-image-cache")}
        print(f"Start-up to the first training step (median of {args.runs} runs, seconds; ViT-B/16 weights: "
              f"{os.path.getsize(weights) / 2**20:.0f} MiB file in OpenAI's layout)")
        print(f"{'backbone':>10} {'mode':>5} {'start-up':>10}" + "".join(f"{name:>9}" for name in PHASES)
              + f"{'other':>9}")
        for backbone in BACKBONES:
            cold = median_row(backbone, "cold", cold_runs(backbone, data_root, work, args.runs, environment))
            warm = median_row(backbone, "warm", warm_runs(backbone, data_root, work, args.runs, environment))
            print(f"{backbone:>10} cold / warm start-up: {cold / warm:.1f}x", flush=True)
        if not args.no_grid:
            isolated = demo_grid_seconds(data_root, work, True, environment)
            warm = demo_grid_seconds(data_root, work, False, environment)
            print(f"Demo grid (24 runs, 2 workers): --isolate {isolated:.1f} s, warm {warm:.1f} s: "
                  f"{isolated / warm:.2f}x faster warm")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
