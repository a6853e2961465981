"""The Classification evaluator prints Dassl's result block byte for byte (parsers grep it)."""
import numpy as np
import pytest
import torch

from harness.config import extend_cfg
from harness.engine import build_evaluator, get_cfg_default


def one_hot_logits(predictions, num_classes=3):
    return torch.nn.functional.one_hot(torch.tensor(predictions), num_classes).float()


def test_result_block_matches_dassl_byte_for_byte(capsys):
    cfg = extend_cfg(get_cfg_default())
    evaluator = build_evaluator(cfg, lab2cname={0: "a", 1: "b", 2: "c"})
    # class 0: 500 right, 100 called 1; class 1: 300 right, 100 called 2; class 2: 200 right.
    labels = [0] * 600 + [1] * 400 + [2] * 200
    predictions = [0] * 500 + [1] * 100 + [1] * 300 + [2] * 100 + [2] * 200
    evaluator.reset()
    capsys.readouterr()
    for start in range(0, len(labels), 100):
        evaluator.process(one_hot_logits(predictions[start:start + 100]), torch.tensor(labels[start:start + 100]))
    results = evaluator.evaluate()
    # F1 per class: 1000/1100, 600/800, 400/500 -> macro 81.97%.
    assert capsys.readouterr().out == (
        "=> result\n"
        "* total: 1,200\n"
        "* correct: 1,000\n"
        "* accuracy: 83.3%\n"
        "* error: 16.7%\n"
        "* macro_f1: 82.0%\n"
    )
    assert list(results) == ["accuracy", "error_rate", "macro_f1"]
    assert results["accuracy"] == pytest.approx(1000 / 12)
    assert results["macro_f1"] == pytest.approx(100 * (1000 / 1100 + 600 / 800 + 400 / 500) / 3)


def test_bundled_macro_f1_agrees_with_sklearn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    from harness.bundled.evaluator import macro_f1_score

    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 7, size=300)
    y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, 9, size=300))
    expected = sklearn_metrics.f1_score(y_true, y_pred, average="macro", labels=np.unique(y_true))
    assert macro_f1_score(y_true.tolist(), y_pred.tolist()) == pytest.approx(expected)
