"""The result record: what it holds, how its config hash is made, and that it appears whole or not at all."""
import json
import os
import subprocess
from types import SimpleNamespace

from harness.engine import ENGINE
from harness.json_files import write_json_atomic
from harness.results.record import RECORD_NAME, ResultRecord, TestResult, config_hash
from tests.trainer_helpers import REPO_ROOT, build_test_trainer, make_cfg


def test_the_record_holds_the_final_tests_numbers_and_the_runs_identity(demo_root, tmp_path):
    output = tmp_path / "base2new" / "test_new" / "demo" / "shots_16" / "ZeroshotCLIP" / "demo" / "seed2"
    opts = ["DATASET.NUM_SHOTS", 16, "DATASET.SUBSAMPLE_CLASSES", "new"]
    trainer = build_test_trainer("ZeroshotCLIP", demo_root, output, seed=2, opts=opts)
    record = ResultRecord(trainer, SimpleNamespace(eval_only=True, model_dir="", load_epoch=None))
    trainer.test()
    record.write()

    fields = json.loads((output / RECORD_NAME).read_text())
    assert fields["total"] == 50 and (fields["correct"], fields["accuracy"]) == (
        TestResult.from_evaluation(trainer.last_evaluation).correct, trainer.last_evaluation.results["accuracy"])
    assert fields["accuracy"] == 100 * fields["correct"] / 50 and fields["error"] == 100 - fields["accuracy"]
    assert 0 <= fields["macro_f1"] <= 100
    assert {k: fields[k] for k in ("trainer", "dataset", "protocol", "subsample", "shots", "seed", "backbone")} == {
        "trainer": "ZeroshotCLIP", "dataset": "Demo", "protocol": "base2new", "subsample": "new", "shots": 16,
        "seed": 2, "backbone": "tiny-demo"}
    assert fields["engine"] == ENGINE and fields["eval_only"] is True and fields["load_epoch"] is None
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
    assert fields["commit"] == (head or "unknown")
    assert fields["config_hash"] == config_hash(trainer.cfg, "ZSCLIP")
    assert fields["wall_time_s"] > 0 and fields["peak_memory_kind"] == "max_rss" and fields["peak_memory_mib"] > 50
    assert os.listdir(output).count(RECORD_NAME) == 1 and not [n for n in os.listdir(output) if ".tmp-" in n]


def test_no_record_without_a_test(demo_root, tmp_path):
    trainer = build_test_trainer("ZeroshotCLIP", demo_root, tmp_path)
    assert ResultRecord(trainer, SimpleNamespace(eval_only=True, model_dir="", load_epoch=None)).write() is None
    assert not (tmp_path / RECORD_NAME).exists()


def test_the_config_hash_ignores_paths_seed_and_other_trainers_nodes_but_not_the_methods_settings(demo_root, tmp_path):
    reference = config_hash(make_cfg("MMA", demo_root, tmp_path / "a", seed=1), "MMA")
    elsewhere = ["RESUME", "x", "DATASET.TEST_IMAGE_CACHE", "off"]  # exact either way: results are the same
    assert config_hash(make_cfg("MMA", tmp_path, tmp_path / "b", seed=3, opts=elsewhere), "MMA") == reference
    other_trainer = make_cfg("MMA", demo_root, tmp_path / "a", seed=1, opts=["TRAINER.COOP.N_CTX", 4])
    assert config_hash(other_trainer, "MMA") == reference
    for opts in (["TRAINER.MMA.ADAPTER_SCALE", 0.5], ["OPTIM.LR", 0.1], ["DATASET.SUBSAMPLE_CLASSES", "new"]):
        assert config_hash(make_cfg("MMA", demo_root, tmp_path / "a", seed=1, opts=opts), "MMA") != reference


def test_an_existing_record_is_replaced_whole(tmp_path):
    path = tmp_path / RECORD_NAME
    write_json_atomic({"accuracy": 1.0}, path)
    write_json_atomic({"accuracy": 2.0, "seed": 1}, path)
    assert json.loads(path.read_text()) == {"accuracy": 2.0, "seed": 1}
    assert os.listdir(tmp_path) == [RECORD_NAME]
