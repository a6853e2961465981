"""CLIP plumbing shared by every method: backbones, tower passes, branch insertion, precision."""
from harness.torchvision_fix import ensure_torchvision_importable

# open_clip imports torchvision.
ensure_torchvision_importable()
