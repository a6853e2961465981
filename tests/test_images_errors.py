"""An image that cannot be decoded stops a run with one line naming the file, its split entry and the fix, in
the main process and in DataLoader workers alike, and nothing that looks finished is written."""
import pickle

import pytest
import torch
from PIL import Image, ImageFile

from harness.data.errors import DatasetError
from harness.data.loaders import build_data_manager
from tests.trainer_helpers import make_cfg, run_train_py, train_py_args


def truncate(path, keep=0.5):
    content = path.read_bytes()
    path.write_bytes(content[: int(len(content) * keep)])


@pytest.fixture
def data_root(tmp_path):
    """A fresh demo dataset (the tests damage its images)."""
    from harness.engine import DATASET_REGISTRY

    DATASET_REGISTRY.get("Demo").ensure_split_file(str(tmp_path / "data" / "demo"))
    return tmp_path / "data"


def images(root, classname="red_circle"):
    return root / "demo" / "images" / classname


def error_lines(output):
    return [line for line in output.splitlines() if line.startswith("Error:")]


def test_a_truncated_jpeg_is_refused_although_its_header_reads(data_root):
    path = images(data_root) / "test_03.jpg"
    truncate(path)
    with Image.open(path) as image:
        assert image.size == (32, 32)  # the header alone does not show it
    with pytest.raises(OSError, match="truncated"):
        Image.open(path).convert("RGB")


@pytest.mark.parametrize("workers", [0, 2])
def test_truncated_test_image_is_one_line_naming_file_entry_and_fix_and_no_record(data_root, tmp_path, workers):
    truncate(images(data_root) / "test_03.jpg")
    output_dir = tmp_path / "out"
    result = run_train_py(train_py_args("ZeroshotCLIP", data_root, output_dir, extra=["--eval-only"],
                                        opts=["DATALOADER.NUM_WORKERS", workers]))
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "Traceback" not in output
    (line,) = error_lines(output)
    assert f"image {images(data_root) / 'test_03.jpg'} is unreadable (OSError: image file is truncated" in line
    assert "from split_zhou_Demo.json test[3] ['red_circle/test_03.jpg', 0, 'red circle']" in line
    assert f"fix: delete {data_root / 'demo'}; it is generated again on first use" in line
    assert f"python -m datasets.check --root {data_root} demo" in line
    assert not (output_dir / "metrics.json").exists()


def test_truncated_training_image_stops_training_with_one_line_and_no_record(data_root, tmp_path):
    for path in images(data_root).glob("train_*.jpg"):  # every one, so the few-shot draw holds some
        truncate(path)
    output_dir = tmp_path / "out"
    result = run_train_py(train_py_args("MMA", data_root, output_dir,
                                        opts=["DATASET.NUM_SHOTS", 4, "OPTIM.MAX_EPOCH", 1]))
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "Traceback" not in output
    (line,) = error_lines(output)
    assert "image file is truncated" in line and "split_zhou_Demo.json train[" in line
    assert not (output_dir / "metrics.json").exists()


def test_a_file_in_another_format_than_an_image_is_named(data_root, tmp_path, capsys):
    dm = build_data_manager(make_cfg("ZeroshotCLIP", data_root, tmp_path))
    path = images(data_root) / "test_05.jpg"
    path.write_bytes(b"<html><body>Quota exceeded</body></html>")
    with pytest.raises(DatasetError) as raised:
        next(iter(dm.test_loader))
    assert f"image {path} is unreadable (UnidentifiedImageError" in str(raised.value)
    assert "test[5]" in str(raised.value)


def test_truncated_images_stay_refused_when_a_library_allows_them(data_root, tmp_path, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    dm = build_data_manager(make_cfg("ZeroshotCLIP", data_root, tmp_path, opts=["DATASET.TEST_IMAGE_CACHE", "off"]))
    truncate(images(data_root) / "test_00.jpg")
    with pytest.raises(DatasetError, match="image file is truncated"):
        next(iter(dm.test_loader))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_a_workers_dataset_error_reads_as_its_own_message():
    from torch._utils import ExceptionWrapper

    try:
        raise DatasetError("image x.jpg is unreadable; fix: re-extract it")
    except DatasetError:
        wrapped = ExceptionWrapper(where="in DataLoader worker process 1")
    with pytest.raises(DatasetError) as raised:
        wrapped.reraise()
    assert str(raised.value) == "image x.jpg is unreadable; fix: re-extract it"
    assert str(pickle.loads(pickle.dumps(raised.value))) == str(raised.value)


def test_an_error_that_is_not_the_images_fault_keeps_its_traceback(data_root, tmp_path):
    dm = build_data_manager(make_cfg("ZeroshotCLIP", data_root, tmp_path, opts=["DATASET.TEST_IMAGE_CACHE", "off"]))

    def broken_transform(image):
        raise ZeroDivisionError("a bug in a transform")

    dm.test_loader.dataset.transform = broken_transform
    with pytest.raises(ZeroDivisionError):
        next(iter(dm.test_loader))
    assert isinstance(next(iter(dm.train_loader_x))["img"], torch.Tensor)
