"""How strongly RMAdapter's reconstruction loss pulls on the shared down-projection, next to cross-entropy.

For each `REC_GRADIENT_SCALE` value, prints the norm of the gradient that lambda1 L_rec^V (lambda2 L_rec^T) and L_ce
send to the adapters' down-projection weights W_down of the visual (text) tower, summed over the adapted blocks,
and their ratio. With "none" the ratio is what the loss weights say modulo MMA's trick, which multiplies only
L_ce's gradient by 1/ADAPTER_SCALE; with "adapter" the reconstruction gradient gets the same factor.
Built like scripts/bench_adapters.py: a protocol config on random weights, N synthetic classes, random images.

    python scripts/bench_rec_gradient.py [--config vit_b16_ep5] [--weights random] [--classes 10] [--batch-size 4]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch
import torch.nn.functional as F
from bench_adapters import benchmark_config, build_model_only

from harness.clip.backbones import image_size
from harness.registration import register_all
from trainers.rmadapter import reconstruction_loss


def down_projection_gradient_norms(trainer, image, label):
    """{tower: (||grad of lambda L_rec||, ||grad of L_ce||)} on that tower's W_down over all adapted blocks."""
    adapter, node = trainer.model.adapter, trainer.method_cfg
    weights = {"visual": node.REC_VISUAL_WEIGHT, "text": node.REC_TEXT_WEIGHT}
    with adapter.recording_reconstruction() as token_errors:
        cross_entropy = F.cross_entropy(trainer.model(image), label)
    rec_losses = {"visual": weights["visual"] * reconstruction_loss(token_errors["visual"]),
                  "text": weights["text"] * reconstruction_loss(token_errors["text"], trainer.text_token_mask)}
    norms = {}
    for tower, rec_loss in rec_losses.items():
        down = [adapter.tower_adapters(tower)[k].down[0].weight for k in adapter.slots]
        rec_grads = torch.autograd.grad(rec_loss, down, retain_graph=True)
        ce_grads = torch.autograd.grad(cross_entropy, down, retain_graph=True)
        norms[tower] = tuple(torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads])).item()
                             for grads in (rec_grads, ce_grads))
    return norms


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="vit_b16_ep5", help="config file name under configs/trainers/RMAdapter/")
    parser.add_argument("--weights", default="random",
                        help="MODEL.BACKBONE.WEIGHTS ('' for the config's own, e.g. the demo's pretrained tiny-demo)")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()

    register_all()
    device = torch.device("cpu")
    classnames = [f"class number {i}" for i in range(args.classes)]
    print(f"config {args.config}, weights {args.weights or 'the backbone default'}, {args.classes} classes, "
          f"batch {args.batch_size}, fp32, seed 0")
    print(f"{'REC_GRADIENT_SCALE':>18} {'tower':>6} {'|grad rec|':>11} {'|grad ce|':>11} {'rec / ce':>10}")
    for choice in ("none", "adapter"):
        cfg = benchmark_config("RMAdapter", args.config, "fp32", ["TRAINER.RMADAPTER.REC_GRADIENT_SCALE", choice],
                               weights=args.weights)
        torch.manual_seed(0)
        trainer = build_model_only("RMAdapter", cfg, classnames, device)
        trainer.set_model_mode("train")
        size = image_size(trainer.model.clip)
        generator = torch.Generator().manual_seed(0)
        image = torch.randn(args.batch_size, 3, size, size, generator=generator)
        label = torch.randint(0, args.classes, (args.batch_size,), generator=generator)
        for tower, (rec, ce) in down_projection_gradient_norms(trainer, image, label).items():
            print(f"{choice:>18} {tower:>6} {rec:>11.4g} {ce:>11.4g} {rec / ce:>10.4g}", flush=True)


if __name__ == "__main__":
    main()
