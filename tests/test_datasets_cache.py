"""The few-shot cache (JSON, root-relative, checked against the draw at every use, rebuilt when it differs) and
ImageNet's cached folder index."""
import json
import os
import pickle
import random
import shutil
from pathlib import Path

import pytest
from dataset_fixtures import build_seeded, dataset_cfg, rows
from dataset_trees import TREES

from harness.data.few_shot import few_shot_cache_path


def demo_draw(root, num_shots=4, seed=1):
    dataset = build_seeded(dataset_cfg(root, "demo", num_shots=num_shots, seed=seed))
    image_dir = os.path.join(root, "demo", "images")
    return rows(dataset.train_x, image_dir), rows(dataset.val, image_dir)


def cache_file(root, num_shots=4, seed=1):
    return few_shot_cache_path(os.path.join(root, "demo"), num_shots, seed)


def test_cache_round_trips_and_holds_root_relative_paths(tmp_path, capsys):
    drawn = demo_draw(tmp_path)
    assert "Saving preprocessed few-shot data" in capsys.readouterr().out
    with open(cache_file(tmp_path)) as file:
        content = json.load(file)
    assert all(not os.path.isabs(path) and path.startswith("demo/images/") for path, _, _ in content["train"])
    assert demo_draw(tmp_path) == drawn
    assert "matches this seed's draw" in capsys.readouterr().out


def test_cache_survives_moving_the_data_root(tmp_path, capsys):
    drawn = demo_draw(tmp_path / "old")
    shutil.move(tmp_path / "old", tmp_path / "new")
    capsys.readouterr()
    moved = demo_draw(tmp_path / "new")
    assert "matches this seed's draw" in capsys.readouterr().out
    assert moved == drawn


def test_shot_counts_and_seeds_get_their_own_entries(tmp_path):
    demo_draw(tmp_path, num_shots=4, seed=1)
    demo_draw(tmp_path, num_shots=8, seed=1)
    demo_draw(tmp_path, num_shots=4, seed=2)
    assert sorted(os.listdir(tmp_path / "demo" / "split_fewshot")) == [
        "shot_4-seed_1.json", "shot_4-seed_2.json", "shot_8-seed_1.json"]
    assert len(demo_draw(tmp_path, num_shots=8)[0]) == 80


def test_cache_is_redrawn_when_the_split_file_changed(tmp_path, capsys):
    demo_draw(tmp_path)
    split_path = tmp_path / "demo" / "split_zhou_Demo.json"
    split = json.loads(split_path.read_text())
    split["train"] = split["train"][::-1]  # same images, other order: Dassl would draw others
    split_path.write_text(json.dumps(split))
    capsys.readouterr()
    redrawn = demo_draw(tmp_path)
    assert "(drawn from other data, shots or random state); rebuilt it from the split" in capsys.readouterr().out
    assert demo_draw(tmp_path) == redrawn
    assert "matches this seed's draw" in capsys.readouterr().out  # the rewritten cache matches


def test_cache_is_redrawn_for_another_random_state(tmp_path, capsys):
    demo_draw(tmp_path)
    random.seed(99)
    random.random()
    dataset_after_other_draws = build_dataset_without_reseeding(tmp_path)
    assert "drawn from other data, shots or random state" in capsys.readouterr().out
    assert len(dataset_after_other_draws.train_x) == 40


def build_dataset_without_reseeding(root):
    from harness.engine import build_dataset

    return build_dataset(dataset_cfg(root, "demo", num_shots=4, seed=1))


def test_damaged_cache_is_redrawn(tmp_path, capsys):
    drawn = demo_draw(tmp_path)
    with open(cache_file(tmp_path), "w") as file:
        file.write('{"format": "coop-fewshot-v1", "key": ')
    capsys.readouterr()
    assert demo_draw(tmp_path) == drawn
    assert "malformed JSON at line 1, column 38" in capsys.readouterr().out


def tamper_first_train_row(root, new_row):
    content = json.loads(Path(cache_file(root)).read_text())
    old_row = content["train"][0]
    content["train"][0] = new_row(old_row)
    with open(cache_file(root), "w") as file:
        json.dump(content, file)
    return old_row


def other_image_of_the_class(root, row):
    """A split image of the same class that the draw did not pick."""
    drawn = {path for path, _, _ in json.loads(Path(cache_file(root)).read_text())["train"]}
    split = json.loads((root / "demo" / "split_zhou_Demo.json").read_text())["train"]
    candidates = (f"demo/images/{path}" for path, label, _ in split if label == row[1])
    return next(path for path in candidates if path not in drawn)


@pytest.mark.parametrize("tampering, reason", [
    (lambda root, row: ["demo/images/red_circle/gone.jpg", row[1], row[2]],
     "is not in the split, and points at a missing file"),
    (lambda root, row: [row[0], row[1] + 1, row[2]], "has label 1 'red circle', the split 0 'red circle'"),
    (lambda root, row: [row[0], row[1], "crimson circle"], "has label 0 'crimson circle', the split 0 'red circle'"),
    (lambda root, row: [other_image_of_the_class(root, row), row[1], row[2]],
     "is in the split but not this seed's draw"),
])
def test_a_hand_edited_cache_is_rebuilt_and_the_run_uses_the_seeds_draw(tmp_path, capsys, tampering, reason):
    drawn = demo_draw(tmp_path)
    tamper_first_train_row(tmp_path, lambda row: tampering(tmp_path, row))
    capsys.readouterr()
    assert demo_draw(tmp_path) == drawn
    out = capsys.readouterr().out
    assert f"Few-shot cache {cache_file(tmp_path)} was not this seed's draw (train[0] " in out
    assert f"{reason}); rebuilt it from the split" in out
    assert json.loads(Path(cache_file(tmp_path)).read_text())["train"][0][0].startswith("demo/images/red_circle/")
    demo_draw(tmp_path)
    assert "matches this seed's draw" in capsys.readouterr().out


def test_a_cache_with_missing_entries_is_rebuilt(tmp_path, capsys):
    drawn = demo_draw(tmp_path)
    content = json.loads(Path(cache_file(tmp_path)).read_text())
    content["val"] = content["val"][:-1]
    with open(cache_file(tmp_path), "w") as file:
        json.dump(content, file)
    capsys.readouterr()
    assert demo_draw(tmp_path) == drawn
    assert "its val entries are not the 40 drawn" in capsys.readouterr().out


def test_a_run_with_the_cache_leaves_the_random_state_of_a_run_without(tmp_path):
    demo_draw(tmp_path)
    without_cache = random.getstate()
    os.remove(cache_file(tmp_path))
    demo_draw(tmp_path)
    assert random.getstate() == without_cache
    demo_draw(tmp_path)
    assert random.getstate() == without_cache


def test_cache_file_follows_the_umask(tmp_path):
    demo_draw(tmp_path)  # generates the dataset
    previous = os.umask(0o002)
    try:
        demo_draw(tmp_path, num_shots=2)
    finally:
        os.umask(previous)
    assert os.stat(cache_file(tmp_path, num_shots=2)).st_mode & 0o777 == 0o664


def test_pickles_in_the_data_folder_are_never_loaded(tmp_path):
    demo_draw(tmp_path)  # generates the dataset
    marker = tmp_path / "unpickled"

    class Trap:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    fewshot_dir = tmp_path / "demo" / "split_fewshot"
    for name in ("shot_4-seed_1.pkl", "shot_16-seed_1.pkl"):
        with open(fewshot_dir / name, "wb") as file:
            pickle.dump(Trap(), file)
    demo_draw(tmp_path, num_shots=16)
    assert not marker.exists()


def test_imagenet_index_is_cached_and_rebuilt_when_images_change(tmp_path, capsys):
    TREES["imagenet"][0](str(tmp_path))
    first = build_seeded(dataset_cfg(tmp_path, "imagenet"))
    assert "Saved preprocessed index" in capsys.readouterr().out
    again = build_seeded(dataset_cfg(tmp_path, "imagenet"))
    assert "Loading preprocessed index" in capsys.readouterr().out
    assert [d.impath for d in again.train_x] == [d.impath for d in first.train_x]
    os.remove(first.test[0].impath)
    rebuilt = build_seeded(dataset_cfg(tmp_path, "imagenet"))
    assert "Saved preprocessed index" in capsys.readouterr().out
    assert len(rebuilt.test) == len(first.test) - 1


def test_a_hand_edited_imagenet_index_is_listed_again(tmp_path, capsys):
    TREES["imagenet"][0](str(tmp_path))
    first = build_seeded(dataset_cfg(tmp_path, "imagenet"))
    index_path = tmp_path / "imagenet" / "preprocessed.json"
    content = json.loads(index_path.read_text())
    listing = next(iter(content["listings"].values()))
    folder = next(iter(listing))
    listing[folder] = listing[folder][:-1] + ["gone.JPEG"]  # the folders' mtimes still match
    index_path.write_text(json.dumps(content))
    capsys.readouterr()
    again = build_seeded(dataset_cfg(tmp_path, "imagenet"))
    assert "was edited (its listings do not match their digest); listing the folders again" in capsys.readouterr().out
    assert [d.impath for d in again.train_x] == [d.impath for d in first.train_x]
