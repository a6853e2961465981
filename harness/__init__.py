"""The harness's shared code. Importing any part of it first makes `import torchvision` work (see
torchvision_fix): every entry point imports from `harness` before anything that imports torchvision."""
from harness.torchvision_fix import ensure_torchvision_importable

ensure_torchvision_importable()
