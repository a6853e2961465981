"""Test session set-up: importing the harness first makes torchvision importable, and every trainer and dataset
is registered, as train.py does."""
from harness.registration import register_all

register_all()

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    """A data root holding the generated demo dataset (generated once per test session)."""
    from harness.engine import DATASET_REGISTRY

    root = tmp_path_factory.mktemp("data")
    DATASET_REGISTRY.get("Demo").ensure_split_file(str(root / "demo"))
    return root



@pytest.fixture(scope="session")
def serial_sweep(demo_root, tmp_path_factory):
    """The base-to-novel loop of the protocol scripts for zero-shot CLIP and MMA on the demo data, seeds 1-2: the
    reference every launcher's results are compared with. (output folder, the scripts' environment)"""
    from tests.sweep_helpers import run_serial_reference

    return run_serial_reference(demo_root, tmp_path_factory.mktemp("serial") / "output")
