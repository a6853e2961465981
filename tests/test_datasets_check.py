"""`python -m datasets.check`: one line per dataset, every bad entry listed, the fix named."""
import json
import os
import warnings

import pytest
from dataset_fixtures import build_seeded, dataset_cfg
from dataset_trees import TREES

from datasets import check
from datasets.oxford_pets import OxfordPets


def run_check(capsys, root, *names):
    capsys.readouterr()
    code = check.main(["--root", str(root), *names])
    return code, capsys.readouterr().out


def summary_lines(out):
    return [line for line in out.splitlines() if not line.startswith(" ")]


@pytest.fixture
def demo_root(tmp_path):
    build_seeded(dataset_cfg(tmp_path, "demo"))
    return tmp_path


def test_good_dataset_is_one_ok_line_with_counts(demo_root, capsys):
    code, out = run_check(capsys, demo_root, "demo")
    assert code == 0
    assert out.splitlines() == ["Demo                 OK    train 200 / val 40 / test 100, 10 classes"]


def test_every_missing_and_unreadable_image_is_listed_with_its_entry(demo_root, capsys):
    images = demo_root / "demo" / "images"
    os.remove(images / "blue_square" / "val_01.jpg")
    os.remove(images / "brown_star" / "test_09.jpg")
    (images / "red_circle" / "train_03.jpg").write_bytes(b"\xff\xd8 truncated")
    code, out = run_check(capsys, demo_root, "demo")
    assert code == 1
    listed = [line for line in out.splitlines() if line.startswith("  ")]
    assert f"  missing: {images / 'blue_square' / 'val_01.jpg'}  <- split_zhou_Demo.json val[5] " \
           "['blue_square/val_01.jpg', 1, 'blue square']" in listed
    assert any(line.startswith("  missing:") and "test[99]" in line for line in listed)
    assert any(line.startswith("  unreadable") and "train[3]" in line for line in listed)
    assert len(listed) == 3
    (summary,) = summary_lines(out)
    assert summary.startswith("Demo                 FAIL  2 missing image(s), 1 unreadable image(s)")
    assert f"fix: delete {demo_root / 'demo'}; it is generated again on first use" in summary


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_truncated_image_is_found_by_the_full_decode_and_not_by_quick(demo_root, capsys, jobs):
    path = demo_root / "demo" / "images" / "green_triangle" / "test_04.jpg"
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])  # its header still opens
    code, out = run_check(capsys, demo_root, "--jobs", jobs, "demo")
    assert code == 1
    (listed,) = [line for line in out.splitlines() if line.startswith("  ")]
    assert listed.startswith("  unreadable (OSError: image file is truncated") and f"{path}  <- " in listed
    assert "split_zhou_Demo.json test[24] ['green_triangle/test_04.jpg', 2, 'green triangle']" in listed
    assert run_check(capsys, demo_root, "--quick", "demo")[0] == 0


def test_label_problems_and_foreign_class_names_are_reported(demo_root, capsys):
    split_path = demo_root / "demo" / "split_zhou_Demo.json"
    split = json.loads(split_path.read_text())
    split["test"][0][1:] = [12, "crimson circle"]
    split["val"] = [row for row in split["val"] if row[1] != 2]
    split_path.write_text(json.dumps(split))
    code, out = run_check(capsys, demo_root, "demo")
    assert code == 1
    assert out.splitlines()[:5] == [
        "  label 12 is out of range 0..9 at split_zhou_Demo.json test[0] "
        "['red_circle/test_00.jpg', 12, 'crimson circle']",
        "  train has no images of 1 class(es), e.g. 'crimson circle'",
        "  val has no images of 2 class(es), e.g. 'green triangle'",
        "  11 classes, expected 10",
        "  class names not CoOp's: ['crimson circle']",
    ]


def test_class_count_and_raw_names_are_compared_with_coops(tmp_path, capsys):
    TREES["caltech101"][0](str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build_seeded(dataset_cfg(tmp_path, "caltech101"))
    split_path = tmp_path / "caltech-101" / "split_zhou_Caltech101.json"
    split = json.loads(split_path.read_text())
    for rows in split.values():
        for row in rows:
            row[2] = "airplanes" if row[2] == "airplane" else row[2]
    split_path.write_text(json.dumps(split))
    code, out = run_check(capsys, tmp_path, "caltech101")
    assert code == 1
    assert "  4 classes, expected 100" in out
    assert "  class names not CoOp's: ['airplanes']" in out


def test_fixture_tree_in_real_layout_passes_when_its_class_count_is_expected(tmp_path, capsys, monkeypatch):
    TREES["oxford_pets"][0](str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build_seeded(dataset_cfg(tmp_path, "oxford_pets"))
    monkeypatch.setattr(OxfordPets, "class_count", 3)
    code, out = run_check(capsys, tmp_path, "oxford_pets")
    assert (code, summary_lines(out)) == (0, ["OxfordPets           OK    train 12 / val 3 / test 6, 3 classes"])


def test_flat_imagenet_val_and_malformed_split_say_what_to_do(demo_root, capsys):
    TREES["imagenet"][0](str(demo_root))
    val_dir = demo_root / "imagenet" / "images" / "val"
    for folder in os.listdir(val_dir):
        for name in os.listdir(val_dir / folder):
            os.rename(val_dir / folder / name, val_dir / f"{folder}_{name}")
        os.rmdir(val_dir / folder)
    (demo_root / "demo" / "split_zhou_Demo.json").write_text('{"train": [')
    code, out = run_check(capsys, demo_root)  # no names: every dataset folder present
    assert code == 1
    demo_line, imagenet_line = out.splitlines()
    assert demo_line.startswith("Demo                 FAIL  ") and "malformed JSON at line 1, column 12" in demo_line
    assert imagenet_line.startswith("ImageNet             FAIL  ")
    assert "has no class folders" in imagenet_line and "valprep.sh" in imagenet_line


def test_named_dataset_that_is_absent_fails_with_the_prepare_command(tmp_path, capsys):
    code, out = run_check(capsys, tmp_path, "eurosat")
    assert code == 1
    assert out.strip() == (f"EuroSAT              FAIL  dataset folder {tmp_path / 'eurosat'} not found; "
                           f"fix: python -m datasets.prepare eurosat --root {tmp_path}")


def test_verbose_prints_counts_per_class_and_split(demo_root, capsys):
    check.main(["--root", str(demo_root), "--verbose", "demo"])
    table = capsys.readouterr().out
    assert any(line.split() == ["9", "brown", "star", "20", "4", "10"] for line in table.splitlines())
