"""Cost of CLIP's text encoder for class prompts, with and without truncation to the longest prompt.

Methods that adapt the text tower re-encode every class prompt at every training step, so this is the dominant
cost on datasets with many classes. Both variants are timed in the same run on ViT-B/16-shaped random weights and
printed as ratios; the features are checked to agree.

    python scripts/bench_text_encoder.py [--classes 10 500] [--repeats 3] [--backbone ViT-B/16] [--device cpu]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch
from timing import median_seconds

from harness.clip.backbones import load_clip  # harness.clip makes torchvision importable first
from harness.clip.towers import encode_text, tokenize

# Class names of typical length (ImageNet-style), cycled to the requested class count.
CLASS_NAMES = ["golden retriever", "tabby cat", "red fox", "african elephant", "hummingbird", "fire truck",
               "espresso maker", "grand piano", "mountain bike", "sea anemone", "monarch butterfly", "lighthouse"]



def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 500])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backbone", default="ViT-B/16")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    device = torch.device(args.device)
    clip = load_clip(args.backbone, "random").eval().to(device)
    print(f"backbone {args.backbone} (random weights), device {device}, torch threads {torch.get_num_threads()}")
    print(f"{'classes':>8} {'tokens':>7} {'full 77 (s)':>12} {'truncated (s)':>14} {'speed-up':>9} {'max |diff|':>11}")
    for num_classes in args.classes:
        prompts = [f"a photo of a {CLASS_NAMES[i % len(CLASS_NAMES)]}." for i in range(num_classes)]
        tokens = tokenize(prompts).to(device)
        with torch.no_grad():
            full = median_seconds(lambda tokens=tokens: clip.encode_text(tokens), args.repeats, device)
            truncated = median_seconds(lambda tokens=tokens: encode_text(clip, tokens), args.repeats, device)
            difference = (clip.encode_text(tokens) - encode_text(clip, tokens)).abs().max().item()
        length = int(tokens.argmax(-1).max()) + 1
        print(f"{num_classes:>8} {length:>7} {full:>12.3f} {truncated:>14.3f} {full / truncated:>8.1f}x "
              f"{difference:>11.2e}")


if __name__ == "__main__":
    main()
