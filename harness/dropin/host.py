"""What a host checkout's train.py imports first (docs/DROP_IN.md): importing it makes torchvision importable
(harness/torchvision_fix.py) and registers the MMA, RMAdapter and RMMA trainers copied into the host's trainers/;
`extend_host_cfg(cfg)`, called at the end of the host's extend_cfg, adds their config nodes and the harness's
keys the host lacks.

The host's own datasets and trainers (its ZeroshotCLIP included) are the ones registered: nothing of ours with a
name the host uses is imported.
"""
import importlib

from harness.torchvision_fix import ensure_torchvision_importable

ensure_torchvision_importable()

from harness.config import extend_host_cfg  # noqa: E402,F401  (re-exported: the call the host's extend_cfg makes)
from harness.dropin import DROP_IN_TRAINERS  # noqa: E402

for _module in DROP_IN_TRAINERS:
    importlib.import_module(f"trainers.{_module}")
