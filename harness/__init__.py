"""The harness's shared code.

Importing the package imports nothing heavy: result parsing, layouts and protocols work without torch. Modules
that import torchvision (directly, or through open_clip or Dassl) apply harness.torchvision_fix first.
"""
