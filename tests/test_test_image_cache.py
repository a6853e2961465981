"""The shared test-image cache: exact (the same tensors, logits and accuracy as without it), keyed on the image and
the transform, rebuilt when an entry is stale or corrupt, safe to fill from several processes at once."""
import io
import os
import subprocess
import sys

import pytest
import torch
from PIL import Image

from harness.data.loaders import build_data_manager
from harness.data.test_image_cache import CACHE_VARIABLE, cache_size
from tests.trainer_helpers import REPO_ROOT, build_test_trainer, make_cfg, train_py_args

TRAINERS = ("ZeroshotCLIP", "MMA", "RMAdapter", "RMMA")


@pytest.fixture
def data_root(tmp_path):
    """A fresh demo dataset (some tests change its images)."""
    from harness.engine import DATASET_REGISTRY

    DATASET_REGISTRY.get("Demo").ensure_split_file(str(tmp_path / "data" / "demo"))
    return tmp_path / "data"


def cache_opts(folder):
    return ["DATASET.TEST_IMAGE_CACHE", str(folder)]


def loader_of(root, tmp_path, cache):
    return build_data_manager(make_cfg("ZeroshotCLIP", root, tmp_path / "out", opts=cache_opts(cache))).test_loader


def images_of(root, tmp_path, cache):
    return torch.cat([batch["img"] for batch in loader_of(root, tmp_path, cache)])


def entry_files(folder):
    return sorted(os.path.join(d, name) for d, _, names in os.walk(folder) for name in names if name.endswith(".img"))


def test_cached_test_images_are_the_uncached_tensors_bit_for_bit(data_root, tmp_path, capsys):
    uncached = images_of(data_root, tmp_path, "off")
    cold = images_of(data_root, tmp_path, tmp_path / "cache")
    assert len(entry_files(tmp_path / "cache")) == 100
    warm = images_of(data_root, tmp_path, tmp_path / "cache")
    assert torch.equal(cold, uncached) and torch.equal(warm, uncached)
    assert " is corrupt " not in capsys.readouterr().out


@pytest.mark.parametrize("trainer_name", TRAINERS)
def test_every_trainer_trains_and_evaluates_with_the_cache_with_identical_logits_and_accuracy(
        data_root, tmp_path, capsys, trainer_name):
    opts = ["OPTIM.MAX_EPOCH", 1, "DATASET.NUM_SHOTS", 2, *cache_opts(tmp_path / "cache")]
    trainer = build_test_trainer(trainer_name, data_root, tmp_path / "out", opts=opts)
    assert f"Test-image cache: used, at {tmp_path / 'cache'} (0 entries, 0.0 MiB)" in capsys.readouterr().out
    if trainer_name != "ZeroshotCLIP":
        trainer.train()  # ends with the final test, through the cache
    cached_accuracy = trainer.test()
    cached_loader = trainer.test_loader
    trainer.test_loader = loader_of(data_root, tmp_path, "off")
    assert trainer.test() == cached_accuracy
    trainer.set_model_mode("eval")
    with torch.no_grad():
        for cached, uncached in zip(cached_loader, trainer.test_loader, strict=True):
            assert torch.equal(trainer.model_inference(cached["img"]), trainer.model_inference(uncached["img"]))


def test_the_start_line_says_where_and_how_big_and_the_variable_turns_it_off(data_root, tmp_path, capsys,
                                                                             monkeypatch):
    images_of(data_root, tmp_path, tmp_path / "cache")
    capsys.readouterr()
    loader_of(data_root, tmp_path, tmp_path / "cache")
    entries, size = cache_size(tmp_path / "cache")
    assert (entries, size) == (100, sum(os.path.getsize(path) for path in entry_files(tmp_path / "cache")))
    assert f"Test-image cache: used, at {tmp_path / 'cache'} (100 entries, {size / 2**20:.1f} MiB)" in \
        capsys.readouterr().out
    monkeypatch.setenv(CACHE_VARIABLE, "off")
    loader = loader_of(data_root, tmp_path, tmp_path / "cache")
    assert "Test-image cache: off" in capsys.readouterr().out
    assert loader.dataset.cached_transform is None
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path / "elsewhere"))
    images_of(data_root, tmp_path, tmp_path / "cache")
    assert len(entry_files(tmp_path / "elsewhere")) == 100


def test_the_default_folder_is_under_the_data_root(data_root, tmp_path):
    images_of(data_root, tmp_path, "")
    assert len(entry_files(data_root / "cache" / "test_images")) == 100


def test_a_changed_image_is_decoded_again(data_root, tmp_path):
    images_of(data_root, tmp_path, tmp_path / "cache")
    path = data_root / "demo" / "images" / "red_circle" / "test_00.jpg"
    Image.new("RGB", (48, 40), (0, 255, 0)).save(path)
    os.utime(path, ns=(1, 1))  # even an mtime moved back: the size and mtime no longer match the entry
    changed = images_of(data_root, tmp_path, tmp_path / "cache")
    assert torch.equal(changed, images_of(data_root, tmp_path, "off"))
    assert len(entry_files(tmp_path / "cache")) == 100  # rebuilt in place


def same_size_replacement(path, colour):
    """Replace the JPEG at `path` by a valid JPEG of another image with exactly its byte size and its mtime, as
    `cp -p` or `rsync -a` of a corrected file leaves it: padded with a JPEG comment segment after the SOI marker."""
    original, stat = path.read_bytes(), path.stat()
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(buffer, format="JPEG", quality=30)
    other = buffer.getvalue()
    padding = len(original) - len(other) - 4  # a comment segment: FF FE, a 2-byte length, its bytes
    assert 0 <= padding < 65534
    replaced = other[:2] + b"\xff\xfe" + (padding + 2).to_bytes(2, "big") + b" " * padding + other[2:]
    path.write_bytes(replaced)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert Image.open(path).convert("RGB").getpixel((20, 20)) != Image.open(io.BytesIO(original)).getpixel((20, 20))


def predictions(trainer):
    trainer.set_model_mode("eval")
    with torch.no_grad():
        return torch.cat([trainer.model_inference(batch["img"]).argmax(dim=1) for batch in trainer.test_loader])


def test_an_image_replaced_with_the_same_size_and_mtime_is_decoded_again(data_root, tmp_path):
    cache = tmp_path / "cache"
    before = images_of(data_root, tmp_path, cache)  # fills the cache
    test_images = sorted((data_root / "demo" / "images").glob("*/test_0[0-4].jpg"))[:10]
    for index, path in enumerate(test_images):
        same_size_replacement(path, (25 * index, 255 - 25 * index, 128))
    cached, uncached = images_of(data_root, tmp_path, cache), images_of(data_root, tmp_path, "off")
    assert torch.equal(cached, uncached) and not torch.equal(cached, before)
    on = build_test_trainer("ZeroshotCLIP", data_root, tmp_path / "on", opts=cache_opts(cache))
    off = build_test_trainer("ZeroshotCLIP", data_root, tmp_path / "off", opts=cache_opts("off"))
    assert torch.equal(predictions(on), predictions(off))
    assert on.test() == off.test()


def test_another_transform_gets_its_own_entries(data_root, tmp_path):
    images_of(data_root, tmp_path, tmp_path / "cache")
    opts = [*cache_opts(tmp_path / "cache"), "INPUT.INTERPOLATION", "bilinear"]
    cfg = make_cfg("ZeroshotCLIP", data_root, tmp_path / "out", opts=opts)
    bilinear = torch.cat([batch["img"] for batch in build_data_manager(cfg).test_loader])
    assert len(entry_files(tmp_path / "cache")) == 200
    cfg = make_cfg("ZeroshotCLIP", data_root, tmp_path / "out", opts=[*opts[:2], "DATASET.TEST_IMAGE_CACHE", "off"])
    assert torch.equal(bilinear, torch.cat([batch["img"] for batch in build_data_manager(cfg).test_loader]))


@pytest.mark.parametrize("damage", [
    lambda content: content[:-7],  # truncated
    lambda content: content[:-1] + bytes([content[-1] ^ 0xFF]),  # one pixel flipped
    lambda content: b"",  # emptied (a crash right after the rename)
    lambda content: b"garbage" + content,  # not an entry
])
def test_a_corrupt_entry_is_detected_and_rebuilt_with_a_line(data_root, tmp_path, capsys, damage):
    uncached = images_of(data_root, tmp_path, "off")
    images_of(data_root, tmp_path, tmp_path / "cache")
    entry = entry_files(tmp_path / "cache")[3]
    with open(entry, "rb") as file:
        content = file.read()
    with open(entry, "wb") as file:
        file.write(damage(content))
    capsys.readouterr()
    assert torch.equal(images_of(data_root, tmp_path, tmp_path / "cache"), uncached)
    lines = [line for line in capsys.readouterr().out.splitlines() if " is corrupt " in line]
    assert len(lines) == 1 and lines[0].startswith(f"Test-image cache: entry {entry} for demo/images/")
    assert lines[0].endswith("; rebuilding it")
    with open(entry, "rb") as file:
        assert file.read() == content


@pytest.mark.parametrize("workers", [0, 1])
def test_the_corrupt_entry_line_starts_a_line_of_its_own_beside_the_progress_bar(data_root, tmp_path, workers):
    cache = tmp_path / "cache"
    images_of(data_root, tmp_path, cache)
    entry = entry_files(cache)[0]
    with open(entry, "r+b") as file:
        file.truncate(100)
    arguments = train_py_args("ZeroshotCLIP", data_root, tmp_path / "out", extra=["--eval-only"],
                              opts=[*cache_opts(cache), "DATALOADER.NUM_WORKERS", workers])
    result = subprocess.run([sys.executable, "train.py", *arguments], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:]
    lines = [line for line in result.stdout.split("\n") if f"Test-image cache: entry {entry}" in line]
    # What a terminal shows of the line: the text after its last carriage return (the bar, when cleared, ends there).
    assert len(lines) == 1 and lines[0].split("\r")[-1].startswith("Test-image cache: entry "), lines


FILL = """
import sys
from harness.registration import register_all
from datasets.prepare_cache import main
register_all()
sys.exit(main(sys.argv[1:]))
"""


def test_two_processes_filling_one_cache_at_once_give_a_valid_cache(data_root, tmp_path, capsys):
    command = [sys.executable, "-c", FILL, "demo", "--root", str(data_root), "--jobs", "1",
               "--config-file", os.path.join(REPO_ROOT, "configs", "trainers", "ZeroshotCLIP", "demo.yaml"),
               *cache_opts(tmp_path / "cache")]
    fillers = [subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(2)]
    outputs = [filler.communicate(timeout=120)[0] for filler in fillers]
    assert [filler.returncode for filler in fillers] == [0, 0], outputs
    assert len(entry_files(tmp_path / "cache")) == 140  # val and test
    assert not [name for _, _, names in os.walk(tmp_path / "cache") for name in names if name.endswith(".tmp")]
    capsys.readouterr()
    assert torch.equal(images_of(data_root, tmp_path, tmp_path / "cache"), images_of(data_root, tmp_path, "off"))
    assert " is corrupt " not in capsys.readouterr().out


def test_entries_follow_the_umask(data_root, tmp_path):
    previous = os.umask(0o002)
    try:
        images_of(data_root, tmp_path, tmp_path / "cache")
    finally:
        os.umask(previous)
    assert {os.stat(path).st_mode & 0o777 for path in entry_files(tmp_path / "cache")} == {0o664}


def test_prepare_cache_fills_val_and_test_and_lists_images_that_do_not_decode(data_root, tmp_path, capsys):
    from datasets import prepare_cache

    broken = data_root / "demo" / "images" / "pink_frame" / "test_07.jpg"
    broken.write_bytes(broken.read_bytes()[:200])
    config = os.path.join(REPO_ROOT, "configs", "trainers", "ZeroshotCLIP", "demo.yaml")
    code = prepare_cache.main(["demo", "--root", str(data_root), "--config-file", config, "--jobs", "1",
                               *cache_opts(tmp_path / "cache")])
    out = capsys.readouterr().out
    assert code == 1
    assert "  unreadable (OSError: " in out and f"{broken}" in out
    assert f"Test-image cache {tmp_path / 'cache'} holds 139 entries" in out
    assert "1 image(s) could not be decoded (listed above)" in out


def test_a_cache_folder_that_cannot_be_created_is_not_used_and_the_run_goes_on(data_root, tmp_path, capsys):
    (tmp_path / "a_file").write_text("")
    images = images_of(data_root, tmp_path, tmp_path / "a_file" / "cache")
    assert f"Test-image cache: not used (its folder {tmp_path / 'a_file' / 'cache'} cannot be created" in \
        capsys.readouterr().out
    assert torch.equal(images, images_of(data_root, tmp_path, "off"))


def test_a_full_disk_while_storing_leaves_no_entry_and_the_run_goes_on(data_root, tmp_path, monkeypatch):
    import harness.data.test_image_cache as cache_module

    def disk_full(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_module.os, "replace", disk_full)
    images = images_of(data_root, tmp_path, tmp_path / "cache")
    monkeypatch.undo()
    assert torch.equal(images, images_of(data_root, tmp_path, "off"))
    assert [name for _, _, names in os.walk(tmp_path / "cache") for name in names] == []



def test_a_cache_that_cannot_be_written_is_read_and_the_start_line_says_so(data_root, tmp_path, capsys, monkeypatch):
    images_of(data_root, tmp_path, tmp_path / "cache")
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as for a colleague's read-only cache
    capsys.readouterr()
    loader_of(data_root, tmp_path, tmp_path / "cache")
    assert "(100 entries, 0.3 MiB, read-only: images not in it are decoded every time)" in capsys.readouterr().out
