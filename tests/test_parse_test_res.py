"""parse_test_res.py on fixture logs in CoOp's, MaPLe's and this harness's formats (tests/parse_logs/)."""
import os

import numpy as np
import pytest

import parse_test_res

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "parse_logs")


def parse(capsys, *argv):
    parse_test_res.main(parse_test_res.build_parser().parse_args(list(argv)))
    return capsys.readouterr().out


def summary_line(values, ci95=False):
    spread = np.std(values)
    if ci95:
        spread = 1.96 * spread / np.sqrt(len(values))
    return f"* accuracy: {np.mean(values):.2f}% +- {spread:.2f}%"


def test_coop_logs_give_coops_printed_summary(capsys):
    directory = os.path.join(FIXTURES, "train", "coop")
    out = parse(capsys, directory)
    assert out.splitlines() == [
        f"Parsing files in {directory}",
        f"file: {directory}/seed1/log.txt. accuracy: 88.50%. ",
        f"file: {directory}/seed2/log.txt. accuracy: 87.90%. ",
        "===",
        f"Summary of directory: {directory}",
        summary_line([88.5, 87.9]),
        "===",
    ]


def test_maple_logs_with_finished_training_and_two_decimals_skip_the_validation_results(capsys):
    out = parse(capsys, os.path.join(FIXTURES, "train", "maple"))
    assert "accuracy: 82.34%. " in out and "accuracy: 83.10%. " in out
    assert "90.12" not in out  # the per-epoch validation result comes before "Finished training"
    assert summary_line([82.34, 83.10]) in out


def test_the_newest_log_holding_a_result_is_read_and_an_unfinished_seed_is_reported(capsys):
    directory = os.path.join(FIXTURES, "train", "ours")
    out = parse(capsys, directory)
    assert f"file: {directory}/seed1/log.txt-2026-11-23-08-15-02. accuracy: 91.00%. " in out
    assert f"file: {directory}/seed2/log.txt-2026-11-23-08-20-41. accuracy: 90.00%. " in out
    assert f"{directory}/seed3: no result (unfinished run?)" in out
    assert summary_line([91.0, 90.0]) in out


def test_test_log_mode_reads_evaluation_only_logs(capsys):
    out = parse(capsys, os.path.join(FIXTURES, "test", "maple"), "--test-log", "--ci95")
    assert summary_line([74.25, 73.75], ci95=True) in out


def test_evaluation_logs_without_test_log_stop_with_a_hint():
    with pytest.raises(SystemExit, match="Nothing found .* need --test-log"):
        parse_test_res.main(parse_test_res.build_parser().parse_args([os.path.join(FIXTURES, "test", "maple")]))


def test_multi_exp_averages_the_experiments_means(capsys):
    out = parse(capsys, os.path.join(FIXTURES, "train"), "--multi-exp")
    means = [np.mean([88.5, 87.9]), np.mean([82.34, 83.10]), np.mean([91.0, 90.0])]
    assert out.splitlines()[-2:] == ["Average performance", f"* accuracy: {np.mean(means):.2f}%"]


def test_keyword_selects_another_metric(capsys):
    out = parse(capsys, os.path.join(FIXTURES, "train", "coop"), "--keyword", "macro_f1")
    assert "macro_f1: 88.10%. " in out and "* macro_f1: 87.80% +- 0.30%" in out
