"""`python -m datasets.prepare` against archives served from 127.0.0.1: extraction into CoOp's layout,
resumed downloads, checksums, manual instructions, bad archives. Nothing here reaches the internet."""
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest
from dataset_fixtures import REPO_ROOT, build_seeded, dataset_cfg
from dataset_trees import TREES
from local_http import serving

from datasets import prepare
from datasets.caltech101 import Caltech101
from harness.data.downloads import download_url


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    """Downloads may only come from 127.0.0.1 or local files: anything else fails the test instead."""
    def refuse_google_drive(file_id, destination):
        raise AssertionError(f"a test tried to download {file_id} from Google Drive")

    def local_only(url, destination):
        assert url.startswith(("http://127.0.0.1:", "file://")), f"a test tried to download {url}"
        return download_url(url, destination)

    monkeypatch.setattr(prepare, "download_google_drive", refuse_google_drive)
    monkeypatch.setattr(prepare, "download_url", local_only)
    monkeypatch.delenv(prepare.MIRROR_VARIABLE, raising=False)


def make_zip(path, folder, arcname_root):
    with zipfile.ZipFile(path, "w") as bundle:
        for dirpath, _, filenames in os.walk(folder):
            for name in filenames:
                full = os.path.join(dirpath, name)
                bundle.write(full, os.path.join(arcname_root, os.path.relpath(full, folder)))


def make_tar(path, members):
    """members: {name inside the archive: path on disk}."""
    with tarfile.open(path, "w:gz") as bundle:
        for arcname, source in members.items():
            bundle.add(source, arcname=arcname)


def raw_tree_with_split(tmp_path, name):
    """A fixture tree (built as `name`'s archives would unpack) with its split file written."""
    source_root = tmp_path / "source"
    TREES[name][0](str(source_root))
    with pytest.warns(UserWarning, match="not CoOp's official split"):
        build_seeded(dataset_cfg(source_root, name))
    return source_root


def ucf101_mirror(tmp_path):
    source = raw_tree_with_split(tmp_path, "ucf101") / "ucf101"
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    make_zip(mirror / "UCF-101-midframes.zip", source / "UCF-101-midframes", "UCF-101-midframes")
    shutil.copy(source / "split_zhou_UCF101.json", mirror)
    return source, mirror


def loaded_rows(root, name):
    dataset = build_seeded(dataset_cfg(root, name))
    return [(os.path.relpath(d.impath, root), d.label, d.classname) for d in dataset.train_x + dataset.test]


def test_ucf101_from_a_mirror_gives_the_same_dataset(tmp_path):
    source, mirror = ucf101_mirror(tmp_path)
    root = tmp_path / "data"
    with serving(mirror) as (url, requests):
        assert prepare.main(["ucf101", "--root", str(root), "--mirror", url]) == 0
    assert sorted(path for path, _ in requests) == ["/UCF-101-midframes.zip", "/split_zhou_UCF101.json"]
    assert loaded_rows(root, "ucf101") == loaded_rows(source.parent, "ucf101")
    assert not os.listdir(root / "downloads")  # archives are removed after extraction
    assert [name for name in os.listdir(root) if name.startswith(".staging")] == []


def test_rerun_skips_what_is_there(tmp_path, capsys):
    _, mirror = ucf101_mirror(tmp_path)
    root = tmp_path / "data"
    with serving(mirror) as (url, requests):
        prepare.main(["ucf101", "--root", str(root), "--mirror", url])
        requests.clear()
        assert prepare.main(["ucf101", "--root", str(root), "--mirror", url]) == 0
        assert requests == []
    assert "Already present: UCF-101-midframes" in capsys.readouterr().out


def test_interrupted_download_resumes_with_a_range_request(tmp_path):
    _, mirror = ucf101_mirror(tmp_path)
    root = tmp_path / "data"
    archive = (mirror / "UCF-101-midframes.zip").read_bytes()
    (root / "downloads").mkdir(parents=True)
    (root / "downloads" / "UCF-101-midframes.zip.part").write_bytes(archive[:1000])
    with serving(mirror) as (url, requests):
        assert prepare.main(["ucf101", "--root", str(root), "--mirror", url, "--keep-archives"]) == 0
    assert ("/UCF-101-midframes.zip", "bytes=1000-") in requests
    assert (root / "downloads" / "UCF-101-midframes.zip").read_bytes() == archive


def without_checksums(monkeypatch, cls):
    """The fixture archives are not the published files: let `cls`'s steps take them."""
    unpinned = tuple(dataclasses.replace(step, md5="", sha256="") for step in cls.downloads)
    monkeypatch.setattr(cls, "downloads", unpinned)


def test_fgvc_aircraft_data_folder_is_taken_out_of_its_wrapper(tmp_path, monkeypatch):
    from datasets.fgvc_aircraft import FGVCAircraft

    without_checksums(monkeypatch, FGVCAircraft)
    source = tmp_path / "source"
    TREES["fgvc_aircraft"][0](str(source))
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    make_tar(mirror / "fgvc-aircraft-2013b.tar.gz", {"fgvc-aircraft-2013b/data": str(source / "fgvc_aircraft")})
    with serving(mirror) as (url, _):
        assert prepare.main(["fgvc_aircraft", "--root", str(tmp_path / "data"), "--mirror", url]) == 0
    assert loaded_rows(tmp_path / "data", "fgvc_aircraft") == loaded_rows(source, "fgvc_aircraft")


def test_nested_archive_and_sha256_are_handled(tmp_path, monkeypatch):
    source = raw_tree_with_split(tmp_path, "caltech101") / "caltech-101"
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    inner = tmp_path / "101_ObjectCategories.tar.gz"
    make_tar(inner, {"101_ObjectCategories": str(source / "101_ObjectCategories")})
    with zipfile.ZipFile(mirror / "caltech-101.zip", "w") as bundle:
        bundle.write(inner, "caltech-101/101_ObjectCategories.tar.gz")
    shutil.copy(source / "split_zhou_Caltech101.json", mirror)
    digest = hashlib.sha256((mirror / "caltech-101.zip").read_bytes()).hexdigest()
    archive_step, split_step = Caltech101.downloads
    monkeypatch.setattr(Caltech101, "downloads", (dataclasses.replace(archive_step, md5="", sha256=digest), split_step))
    with serving(mirror) as (url, _):
        assert prepare.main(["caltech101", "--root", str(tmp_path / "data"), "--mirror", url]) == 0
    assert loaded_rows(tmp_path / "data", "caltech101") == loaded_rows(source.parent, "caltech101")


def test_checksum_mismatch_deletes_the_download_and_fails(tmp_path, capsys):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    make_tar(mirror / "images.tar.gz", {"images": str(tmp_path)})  # not the real Oxford Pets archive
    with serving(mirror) as (url, _):
        assert prepare.main(["oxford_pets", "--root", str(tmp_path / "data"), "--mirror", url]) == 1
    error = capsys.readouterr().err
    assert "images.tar.gz: md5 is" in error and "expected 5c4f3ee8e5d25df40f4fd59a7f44e54c" in error
    assert not (tmp_path / "data" / "downloads" / "images.tar.gz").exists()


def test_missing_file_on_the_mirror_names_the_url(tmp_path, capsys):
    (tmp_path / "mirror").mkdir()
    with serving(tmp_path / "mirror") as (url, _):
        assert prepare.main(["dtd", "--root", str(tmp_path / "data"), "--mirror", url]) == 1
    assert f"{url}/dtd-r1.0.1.tar.gz failed: HTTP 404" in capsys.readouterr().err


def test_url_option_replaces_one_source(tmp_path):
    _, mirror = ucf101_mirror(tmp_path)
    root = tmp_path / "data"
    (root / "ucf101").mkdir(parents=True)
    shutil.copy(mirror / "split_zhou_UCF101.json", root / "ucf101")
    archive_url = (mirror / "UCF-101-midframes.zip").as_uri()
    assert prepare.main(["ucf101", "--root", str(root), "--url", f"UCF-101-midframes.zip={archive_url}"]) == 0


def test_archive_members_cannot_escape_the_target(tmp_path, capsys):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with zipfile.ZipFile(mirror / "UCF-101-midframes.zip", "w") as bundle:
        bundle.writestr("../escaped.txt", "x")
    with serving(mirror) as (url, _):
        assert prepare.main(["ucf101", "--root", str(tmp_path / "data"), "--mirror", url]) == 1
    assert "would be written outside" in capsys.readouterr().err
    assert not (tmp_path / "escaped.txt").exists()


def test_stanford_cars_prints_manual_steps_without_a_mirror(tmp_path, capsys):
    (tmp_path / "stanford_cars").mkdir()
    split = {"train": [["cars_train/00001.jpg", 0, "2000 AM General Hummer SUV"]], "val": [], "test": []}
    (tmp_path / "stanford_cars" / "split_zhou_StanfordCars.json").write_text(json.dumps(split))
    assert prepare.main(["stanford_cars", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "not ready: 1 of 1 listed images are missing" in out
    assert "no public download for cars_train.tgz, cars_test.tgz, car_devkit.tgz" in out
    assert "return 404" in out and f"{tmp_path / 'stanford_cars'}/cars_train/00001.jpg" in out


def test_imagenet_prints_manual_steps_and_sorts_a_flat_val_folder(tmp_path, capsys):
    TREES["imagenet"][0](str(tmp_path))
    val_dir = tmp_path / "imagenet" / "images" / "val"
    lines = ["ImageId,PredictionString"]
    for wnid in sorted(os.listdir(val_dir)):
        for name in sorted(os.listdir(val_dir / wnid)):
            image_id = f"{wnid}_{name[:-5]}"
            os.rename(val_dir / wnid / name, val_dir / f"{image_id}.JPEG")
            lines.append(f"{image_id},{wnid} 1 2 3 4")
        os.rmdir(val_dir / wnid)
    assert prepare.main(["imagenet", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "no class folders" in out and "https://image-net.org" in out
    (tmp_path / "solution.csv").write_text("\n".join(lines) + "\n")
    assert prepare.main(["imagenet", "--root", str(tmp_path), "--sort-val", str(tmp_path / "solution.csv")]) == 0
    assert len(build_seeded(dataset_cfg(tmp_path, "imagenet")).test) == 12


def test_imagenet_variant_copies_imagenets_classnames(tmp_path):
    TREES["imagenet_sketch"][0](str(tmp_path))
    shutil.move(tmp_path / "imagenet-sketch" / "classnames.txt", tmp_path / "classnames.txt")
    (tmp_path / "imagenet").mkdir()
    shutil.move(tmp_path / "classnames.txt", tmp_path / "imagenet" / "classnames.txt")
    assert prepare.main(["imagenet_sketch", "--root", str(tmp_path)]) == 0
    assert (tmp_path / "imagenet-sketch" / "classnames.txt").read_text().startswith("n01440764 tench")


def test_command_line_generates_demo(tmp_path):
    done = subprocess.run([sys.executable, "-m", "datasets.prepare", "demo", "--root", str(tmp_path)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "demo" / "split_zhou_Demo.json").read_text())["test"][0][1] == 0


def test_unknown_dataset_name_lists_the_choices(tmp_path, capsys):
    assert prepare.main(["oxford-pets", "--root", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: unknown dataset 'oxford-pets'; choose one of: caltech101, demo, dtd, eurosat, fgvc_aircraft, food101, "
        "imagenet, imagenet_a, imagenet_r, imagenet_sketch, imagenetv2, oxford_flowers, oxford_pets, stanford_cars, "
        "sun397, ucf101"]


# Files whose content is fixed but for which no source publishes a checksum (and none could be computed here,
# offline): CoOp's split files and class-name files on Google Drive, and CoOp's UCF-101 mid-frames archive.
UNPINNED = {
    "split_zhou_Caltech101.json", "split_zhou_DescribableTextures.json", "split_zhou_EuroSAT.json",
    "split_zhou_Food101.json", "split_zhou_OxfordFlowers.json", "split_zhou_OxfordPets.json",
    "split_zhou_StanfordCars.json", "split_zhou_SUN397.json", "split_zhou_UCF101.json", "cat_to_name.json",
    "classnames.txt", "UCF-101-midframes.zip",
}


def all_download_steps():
    from harness.data.catalog import coop_datasets

    return [step for cls in coop_datasets().values() for step in cls.downloads]


def test_every_download_with_fixed_content_has_a_checksum_except_the_unpublished():
    unpinned = {step.filename for step in all_download_steps() if not (step.md5 or step.sha256)}
    assert unpinned == UNPINNED


def test_every_download_is_over_https():
    assert [step.url for step in all_download_steps() if step.url and not step.url.startswith("https://")] == []


HTML_PAGE = b"<!DOCTYPE html><html><body>Too many users have viewed or downloaded this file recently.</body></html>"


def test_an_html_page_saved_as_a_download_is_deleted_and_fetched_again(tmp_path, capsys):
    _, mirror = ucf101_mirror(tmp_path)
    good = (mirror / "split_zhou_UCF101.json").read_bytes()
    (mirror / "split_zhou_UCF101.json").write_bytes(HTML_PAGE)
    root = tmp_path / "data"
    with serving(mirror) as (url, _):
        assert prepare.main(["ucf101", "--root", str(root), "--mirror", url]) == 1
        split_path = root / "ucf101" / "split_zhou_UCF101.json"
        assert f"{split_path} is an HTML page, not the file" in capsys.readouterr().err
        assert not split_path.exists()
        (mirror / "split_zhou_UCF101.json").write_bytes(good)
        assert prepare.main(["ucf101", "--root", str(root), "--mirror", url]) == 0
    assert split_path.read_bytes() == good


@pytest.mark.parametrize("content, problem", [
    (HTML_PAGE, "is an HTML page, not the file"),
    (b"PK but not really a zip", "is neither a zip nor a tar archive"),
])
def test_a_download_that_is_no_archive_is_deleted_not_reused(tmp_path, capsys, content, problem):
    _, mirror = ucf101_mirror(tmp_path)
    (mirror / "UCF-101-midframes.zip").write_bytes(content)
    root = tmp_path / "data"
    with serving(mirror) as (url, _):
        assert prepare.main(["ucf101", "--root", str(root), "--mirror", url, "--keep-archives"]) == 1
    archive = root / "downloads" / "UCF-101-midframes.zip"
    error = capsys.readouterr().err
    assert f"{archive} {problem}" in error and "the file was deleted" in error
    assert not archive.exists()


def test_a_split_file_that_is_not_json_is_deleted(tmp_path, capsys):
    _, mirror = ucf101_mirror(tmp_path)
    (mirror / "split_zhou_UCF101.json").write_bytes(b'{"train": [')
    with serving(mirror) as (url, _):
        assert prepare.main(["ucf101", "--root", str(tmp_path / "data"), "--mirror", url]) == 1
    assert "is not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "data" / "ucf101" / "split_zhou_UCF101.json").exists()
