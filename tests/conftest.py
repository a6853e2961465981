"""Test session set-up: the torchvision import fix runs before anything imports torchvision, and every
trainer and dataset is registered, as train.py does."""
from harness.torchvision_fix import ensure_torchvision_importable

ensure_torchvision_importable()

from harness.registration import register_all  # noqa: E402

register_all()
