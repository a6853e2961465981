"""Per-image predictions beside each record: what they hold, that numpy alone reads them, and that a file which
disagrees with its record counts as missing."""
import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np

from harness.results.predictions import PREDICTIONS_NAME, Predictions, read_predictions, write_predictions
from harness.results.record import RECORD_NAME, ResultRecord
from tests.trainer_helpers import build_test_trainer


def _evaluated_run(demo_root, output, opts=()):
    trainer = build_test_trainer("ZeroshotCLIP", demo_root, output, seed=1, opts=list(opts))
    trainer.test()
    ResultRecord(trainer, SimpleNamespace(eval_only=True, model_dir="", load_epoch=None)).write()
    return trainer, json.loads((output / RECORD_NAME).read_text())


def test_an_evaluation_writes_one_row_per_test_image_that_agrees_with_its_record(demo_root, tmp_path):
    trainer, record = _evaluated_run(demo_root, tmp_path, ["TEST.PREDICTIONS_TOPK", 3])
    predictions = read_predictions(tmp_path, record)
    assert predictions.total == record["total"] == len(trainer.test_loader.dataset)
    assert int(predictions.correct.sum()) == record["correct"]
    assert predictions.test_set_sha256 == record["test_set_sha256"]
    assert list(predictions.index) == list(range(record["total"]))
    assert list(predictions.label) == [item.label for item in trainer.dm.dataset.test]
    assert predictions.topk_class.shape == (record["total"], 3)
    assert (predictions.topk_class[:, 0] == predictions.prediction).all()
    assert (np.diff(predictions.topk_logit.astype(np.float32), axis=1) <= 0).all()


def test_the_file_is_read_by_numpy_alone_and_takes_a_few_bytes_per_image(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 1000, 50_000)
    predictions = Predictions(np.arange(50_000), labels, np.where(rng.random(50_000) < 0.7, labels, 0), "0" * 64)
    path = write_predictions(tmp_path, predictions)
    assert (tmp_path / PREDICTIONS_NAME).stat().st_size < 1_000_000
    script = ("import sys, numpy; a = numpy.load(sys.argv[1]); print(len(a['label']), int((a['label'] == "
              "a['prediction']).sum())); assert 'torch' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", script, path], capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(50_000), str(int(predictions.correct.sum()))]


def test_a_file_that_disagrees_with_its_record_counts_as_missing(tmp_path, capsys):
    predictions = Predictions(np.arange(4), np.array([0, 1, 2, 3]), np.array([0, 1, 2, 0]), "a" * 64)
    write_predictions(tmp_path, predictions)
    record = {"total": 4, "correct": 3, "test_set_sha256": "a" * 64}
    assert read_predictions(tmp_path, record) is not None
    for disagreeing in ({**record, "correct": 2}, {**record, "total": 5}, {**record, "test_set_sha256": "b" * 64}):
        assert read_predictions(tmp_path, disagreeing) is None
        assert f"{PREDICTIONS_NAME}: " in capsys.readouterr().err
    (tmp_path / PREDICTIONS_NAME).write_bytes(b"not an archive")
    assert read_predictions(tmp_path, record) is None
    assert "unreadable" in capsys.readouterr().err
    assert read_predictions(tmp_path / "elsewhere", record) is None
