"""The GPU check: every trainer's CUDA path at fp32, fp16 and amp, their agreement, and the cost per image.

1. Every trainer (MMA, RMAdapter, RMMA; ZeroshotCLIP evaluates only) at PREC fp32, fp16 and amp (fp16 autocast
   with a GradScaler on CUDA, bf16 autocast on CPU) for a few training steps, on demo images with the tiny-demo
   backbone and on random images with ViT-B/16 random weights: every loss must be finite. On one fixed batch,
   before any step, amp's logits must agree with fp32's to AMP_TOLERANCE (in cosine units: |logit difference| /
   logit scale), and fp16's to the same.
2. ms/image for training and evaluation per method on ViT-B/16 random weights at the protocol batch sizes
   (training 16, evaluation 100) and each trainer's configured PREC, against R-MMA's published 1.6 vs MMA's
   2.2 ms/image (training, RTX 4090).
3. Evaluation input: scripts/bench_eval_input.py (uncached vs cached test images on synthetic JPEGs at real
   sizes), when it exists.
4. Warm worker memory: 20 demo MMA training runs (seeds 1-20) in one warm worker (harness/sweep/worker.py); each
   run's torch.cuda.max_memory_allocated (its record's peak, reset per run) and the worker's resident memory must
   not grow after the first runs.
Prints one summary table and exits 1 if a check failed. `--cpu` (automatic without CUDA) is a short mode that
runs every path on CPU at small sizes: it shows that the script works, not how fast a GPU is.

    python scripts/gpu_check.py [--cpu]
"""
import argparse
import io
import math
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
import torch
from bench_adapters import benchmark_config, build_model_only, measure
from PIL import Image

from harness.clip.precision import autocast
from harness.data.synthetic_shapes import SHAPE_CLASSES, render
from harness.registration import register_all

TRAINERS = ("ZeroshotCLIP", "MMA", "RMAdapter", "RMMA")
PRECISIONS = ("fp32", "fp16", "amp")
# Agreement with fp32 on one batch, as the largest |logit difference| / logit scale (a difference of cosines).
# fp16 carries 11 significant bits, bf16 (CPU autocast) 8: CLIP's 512-wide dot products keep about 1e-3 and 1e-2.
AMP_TOLERANCE = {"cuda": 5e-3, "cpu": 3e-2}
PUBLISHED_MS_PER_IMAGE = {"MMA": 2.2, "RMMA": 1.6}  # R-MMA's poster, training, RTX 4090
PROTOCOL_CONFIG = {"ZeroshotCLIP": "vit_b16"}
# Zero-shot CLIP reads its prompt template from the dataset: the demo's ("a photo of a {}.") for every batch here.
DATASET = ["DATASET.NAME", "Demo"]


def demo_batch(size, count):
    """`count` demo training images (JPEG round trip, CLIP normalisation) of the 10 demo classes, and labels."""
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1)
    images, labels = [], []
    for index in range(count):
        label = index % len(SHAPE_CLASSES)
        encoded = io.BytesIO()
        render(label, "train", index // len(SHAPE_CLASSES)).resize((size, size)).save(encoded, format="JPEG")
        pixels = np.asarray(Image.open(encoded).convert("RGB"), dtype=np.float32) / 255.0
        images.append((torch.from_numpy(pixels).permute(2, 0, 1) - mean) / std)
        labels.append(label)
    return torch.stack(images), torch.tensor(labels)


def build(trainer_name, config, prec, classnames, device):
    torch.manual_seed(0)
    cfg = benchmark_config(trainer_name, config, prec, DATASET, weights="" if config == "demo" else "random")
    return build_model_only(trainer_name, cfg, classnames, device)


def check_precisions(trainer_name, config, classnames, image, label, steps, device):
    """Rows (trainer, backbone, prec, losses finite, max |logit diff| / scale vs fp32 before training, passed)."""
    rows, reference = [], None
    image, label = image.to(device), label.to(device)
    for prec in PRECISIONS:
        trainer = build(trainer_name, config, prec, classnames, device)
        model = trainer.model
        model.eval()
        # The training step's forward pass (autocast for amp), on the weights before any step.
        with torch.no_grad(), autocast(prec, device):
            logits = model(image).float()
        if prec == "fp32":
            reference = logits
        difference = ((logits - reference).abs().max() / model.logit_scale.float()).item()
        finite = bool(torch.isfinite(logits).all())
        if trainer_name != "ZeroshotCLIP":
            trainer.set_model_mode("train")
            for _ in range(steps):
                finite &= all(math.isfinite(value) for value in trainer.forward_backward(
                    {"img": image, "label": label}).values())
        passed = finite and difference <= AMP_TOLERANCE[device.type]
        rows.append((trainer_name, config, prec, finite, difference, passed))
    return rows


def throughput(trainer_name, num_classes, train_batch, eval_batch, steps, prec, device):
    cfg = benchmark_config(trainer_name, PROTOCOL_CONFIG.get(trainer_name, "vit_b16_ep5"), prec, DATASET)
    train_ms, eval_ms, peak = measure(trainer_name, cfg, num_classes, train_batch, steps, device,
                                      eval_batch_size=eval_batch, train=trainer_name != "ZeroshotCLIP")
    return train_ms, eval_ms, peak


WARM_GROWTH_LIMIT_MIB = {"peak": 1.0, "resident": 50.0}  # from run 5 to the last


def warm_worker_memory(runs):
    """[(seed, record peak MiB, its kind, worker resident MiB)] of `runs` demo MMA runs in one warm worker."""
    import json
    import tempfile

    from harness.engine import DATASET_REGISTRY
    from harness.sweep.worker import WarmWorker

    work = tempfile.mkdtemp(prefix="gpu-check-warm-")
    DATASET_REGISTRY.get("Demo").ensure_split_file(os.path.join(work, "data", "demo"))
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    worker = WarmWorker(sys.executable, {**os.environ, "OMP_NUM_THREADS": "1"}, repo)
    rows = []
    try:
        with open(os.path.join(work, "worker.out"), "a") as output:
            for seed in range(1, runs + 1):
                run_dir = os.path.join(work, f"seed{seed}")
                status = worker.run(["--root", os.path.join(work, "data"), "--seed", str(seed), "--trainer", "MMA",
                                     "--dataset-config-file", "configs/datasets/demo.yaml", "--config-file",
                                     "configs/trainers/MMA/demo.yaml", "--output-dir", run_dir, "OPTIM.MAX_EPOCH", "2",
                                     "DATASET.SUBSAMPLE_CLASSES", "base"], output)
                if status != 0:
                    raise RuntimeError(f"warm run {seed} failed ({status}): see {os.path.join(work, 'worker.out')}")
                with open(os.path.join(run_dir, "metrics.json")) as file:
                    record = json.load(file)
                with open(f"/proc/{worker.pid}/status") as file:
                    resident = next(int(line.split()[1]) for line in file if line.startswith("VmRSS:")) / 1024
                rows.append((seed, record["peak_memory_mib"], record["peak_memory_kind"], resident))
    finally:
        worker.close()
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", help="the short CPU mode (automatic without CUDA)")
    args = parser.parse_args()
    cpu = args.cpu or not torch.cuda.is_available()
    device = torch.device("cpu" if cpu else "cuda")
    if cpu:
        torch.set_num_threads(min(2, torch.get_num_threads()))
    steps, vit_batch = (1, 2) if cpu else (3, 16)
    start = time.perf_counter()
    register_all()
    print(f"GPU check on {torch.cuda.get_device_name() if not cpu else 'CPU (short mode)'}, torch {torch.__version__}")

    rows = []
    demo_names = [name for name, _, _ in SHAPE_CLASSES]
    demo_image, demo_label = demo_batch(32, 16)
    for trainer_name in TRAINERS:
        rows += check_precisions(trainer_name, "demo", demo_names, demo_image, demo_label, steps, device)
    vit_names = [f"class number {i}" for i in range(10)]
    generator = torch.Generator().manual_seed(0)
    vit_image = torch.randn(vit_batch, 3, 224, 224, generator=generator)
    vit_label = torch.randint(0, 10, (vit_batch,), generator=generator)
    vit_trainers = TRAINERS if not cpu else ("MMA", "RMMA")
    for trainer_name in vit_trainers:
        config = PROTOCOL_CONFIG.get(trainer_name, "vit_b16_ep5")
        rows += check_precisions(trainer_name, config, vit_names, vit_image, vit_label, steps, device)

    print(f"\n1. Precisions: {steps} training step(s) each; agreement = max |logit - fp32 logit| / logit scale on one "
          f"batch before training, tolerance {AMP_TOLERANCE[device.type]} ({'bf16' if cpu else 'fp16'} autocast)")
    print(f"{'trainer':>12} {'backbone':>12} {'PREC':>5} {'finite':>7} {'vs fp32':>9} {'result':>7}")
    for trainer_name, config, prec, finite, difference, passed in rows:
        print(f"{trainer_name:>12} {config:>12} {prec:>5} {str(finite):>7} {difference:>9.2e} "
              f"{'ok' if passed else 'FAILED':>7}")

    train_batch, eval_batch = (2, 4) if cpu else (16, 100)
    print(f"\n2. ViT-B/16 random weights, 10 classes, training batch {train_batch}, evaluation batch {eval_batch}, "
          f"each trainer's PREC{' (fp32 on CPU)' if cpu else ''}, median of {steps} step(s)")
    print(f"{'trainer':>12} {'train ms/img':>13} {'eval ms/img':>12} {'peak MiB':>9} {'published train':>16}")
    measured = {}
    for trainer_name in TRAINERS:
        train_ms, eval_ms, peak = throughput(trainer_name, 10, train_batch, eval_batch, steps,
                                             "fp32" if cpu else None, device)
        measured[trainer_name] = train_ms
        published = PUBLISHED_MS_PER_IMAGE.get(trainer_name)
        print(f"{trainer_name:>12} {train_ms:>13.2f} {eval_ms:>12.2f} {peak:>9.0f} "
              f"{f'{published} (RTX 4090)' if published else '-':>16}")
    print(f"R-MMA / MMA training: {measured['RMMA'] / measured['MMA']:.2f} here, "
          f"{PUBLISHED_MS_PER_IMAGE['RMMA'] / PUBLISHED_MS_PER_IMAGE['MMA']:.2f} published")

    bench = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_eval_input.py")
    print("\n3. Evaluation input, cached vs uncached test images (scripts/bench_eval_input.py)")
    if os.path.isfile(bench):
        short = ["--images", "200", "--batch-size", "20"] if cpu else []  # the benchmark's defaults on the device
        result = subprocess.run([sys.executable, bench, *short], capture_output=True, text=True)
        print(result.stdout.rstrip() if result.returncode == 0 else f"skipped: it failed ({result.stderr.strip()})")
    else:
        print("skipped: scripts/bench_eval_input.py does not exist in this checkout")

    warm_runs = 6 if cpu else 20
    print(f"\n4. Warm worker memory: {warm_runs} demo MMA runs (2 epochs) in one worker")
    memory = warm_worker_memory(warm_runs)
    print(f"{'run':>4} {'record peak MiB':>16} {'kind':>18} {'worker RSS MiB':>15}")
    for seed, peak, kind, resident in memory:
        print(f"{seed:>4} {peak:>16.1f} {kind:>18} {resident:>15.0f}")
    settled = memory[min(4, len(memory) - 1):]
    growth = {"peak": settled[-1][1] - settled[0][1], "resident": settled[-1][3] - settled[0][3]}
    memory_ok = all(growth[name] <= limit for name, limit in WARM_GROWTH_LIMIT_MIB.items())
    print(f"growth from run {settled[0][0]} to run {settled[-1][0]}: peak {growth['peak']:+.1f} MiB, worker RSS "
          f"{growth['resident']:+.0f} MiB (limits {WARM_GROWTH_LIMIT_MIB}): {'ok' if memory_ok else 'FAILED'}")

    failed = [row for row in rows if not row[-1]]
    print(f"\n{'FAILED' if failed or not memory_ok else 'PASSED'}: {len(rows) - len(failed)} of {len(rows)} "
          f"precision checks, warm memory {'ok' if memory_ok else 'FAILED'}, "
          f"{time.perf_counter() - start:.0f} s in all")
    return 1 if failed or not memory_ok else 0


if __name__ == "__main__":
    sys.exit(main())
