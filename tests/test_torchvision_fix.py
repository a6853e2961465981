"""The torchvision import fix makes torchvision's Python parts usable here and does nothing where its ops load."""
import subprocess
import sys
import textwrap

import pytest

from tests.trainer_helpers import REPO_ROOT


def run_python(code, extra_path=None):
    path = [str(extra_path)] if extra_path else []
    script = f"import sys; sys.path[:0] = {path!r} + [{REPO_ROOT!r}]\n" + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("entry", ["harness.engine", "harness.clip"])
def test_transforms_datasets_and_models_import_after_the_modules_that_need_them(entry):
    result = run_python(f"""
        import {entry}
        from torchvision.transforms import v2
        from torchvision import transforms, models
        from torchvision.datasets import ImageFolder
        import open_clip
        print("imported")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"


def test_results_layouts_and_protocols_import_without_torch():
    result = run_python("""
        import harness, harness.results.leaderboard, harness.results.collect, harness.results.record
        import harness.protocols, parse_test_res
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "open_clip")))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def fake_torchvision(tmp_path, init_source):
    package = tmp_path / "torchvision"
    package.mkdir()
    (package / "__init__.py").write_text(init_source)
    return tmp_path


def test_nothing_is_declared_where_torchvision_imports_by_itself(tmp_path):
    result = run_python("""
        from harness import torchvision_fix
        torchvision_fix.ensure_torchvision_importable()
        print(torchvision_fix._schema_library)
    """, extra_path=fake_torchvision(tmp_path, "LOADED = True\n"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"


def test_other_import_errors_are_not_hidden(tmp_path):
    result = run_python("""
        from harness import torchvision_fix
        torchvision_fix.ensure_torchvision_importable()
    """, extra_path=fake_torchvision(tmp_path, "raise RuntimeError('CUDA driver too old')\n"))
    assert result.returncode != 0
    assert "CUDA driver too old" in result.stderr
