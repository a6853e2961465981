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
