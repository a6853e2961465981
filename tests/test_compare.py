"""Paired comparisons (--compare) and the reproduction check (--compare-published) on run folders built with the
real record and predictions writers, where the right answer is known."""
import csv
import os
import subprocess
import sys

import numpy as np
import pytest

from harness.protocols import BASE2NEW_DATASETS
from harness.results.collect import collect_runs
from harness.results.compare import (
    BOOTSTRAP_TEST,
    NO_TEST,
    T_TEST,
    bootstrap_accuracy,
    comparison_tables,
)
from harness.results.leaderboard import build_parser, main
from harness.results.predictions import PREDICTIONS_NAME, Predictions, write_predictions
from harness.results.published import harmonic_mean, load_published
from harness.results.render import markdown
from harness.results.tables import Leaderboard
from tests.test_leaderboard import b2n_dir, record

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHASES = {"base": "train_base", "new": "test_new"}
TEST_SET = "5e7" * 21 + "a"
T_975 = {2: 4.302653, 4: 2.776445}  # Student's t, 97.5th percentile, by degrees of freedom (printed tables)


def evaluated_run(root, trainer, dataset, seed, split, right, config="vit_b16_ep5", test_set=TEST_SET,
                  with_predictions=True):
    """A finished run whose images were classified right where `right` is true: its record, and its
    predictions.npz unless told otherwise."""
    right = np.asarray(right, dtype=bool)
    run_dir = b2n_dir(root, dataset, seed, PHASES[split], trainer, config)
    record(run_dir, 100 * right.sum() / len(right), total=len(right), test_set_sha256=test_set)
    if with_predictions:
        labels = np.arange(len(right)) % 7
        write_predictions(run_dir, Predictions(np.arange(len(right)), labels, np.where(right, labels, 7), test_set))
    return run_dir


def right_answers(images, right, seed):
    """`right` of `images` right, at places that depend on the seed."""
    answers = np.zeros(images, dtype=bool)
    answers[np.random.default_rng(seed).permutation(images)[:right]] = True
    return answers


def two_methods(root, datasets=("dtd", "eurosat"), seeds=(1, 2, 3), extra_right=0, images=200, **kwargs):
    """MMA and RMAdapter on the same images; RMAdapter also gets `extra_right` of MMA's wrong images right."""
    for dataset in datasets:
        for seed in seeds:
            for split, right in (("base", images * 3 // 4), ("new", images * 3 // 5)):
                mma = right_answers(images, right + seed, seed)
                rmadapter = mma.copy()
                rmadapter[np.flatnonzero(~mma)[:extra_right]] = True
                evaluated_run(root, "MMA", dataset, seed, split, mma, **kwargs)
                evaluated_run(root, "RMAdapter", dataset, seed, split, rmadapter, **kwargs)
    return root


def compared(root, specs=("RMAdapter", "MMA"), seeds=(1, 2, 3), **kwargs):
    runs, _ = collect_runs(root)
    return comparison_tables(Leaderboard(runs, load_published(), seeds), list(specs), seeds, **kwargs)


def rows_of(table):
    return {row[0]: dict(zip(table.header, row)) for row in table.rows}


def refusal(root, *flags):
    with pytest.raises(SystemExit) as stopped:
        main(build_parser().parse_args([str(root), "--out", str(root / "board"), *flags]))
    return stopped.value.code


def test_identical_methods_differ_by_zero_with_p_1_and_no_mark(tmp_path):
    comparison, _ = compared(two_methods(tmp_path))
    rows = rows_of(comparison)
    assert list(rows) == ["dtd", "eurosat", "average of dtd, eurosat"]
    for row in rows.values():
        assert row["Test"] == BOOTSTRAP_TEST and row["Seeds"] == "1,2,3"
        for measure in ("Δbase", "Δnovel", "ΔHM"):
            found = row[measure]
            assert (found.delta, found.low, found.high, found.p) == (0, 0, 0, 1) and not found.excludes_zero
    assert "*" not in markdown([comparison]).split("\n\n")[1]  # the table, without its notes


def test_a_method_right_on_ten_more_of_200_images_everywhere_is_found_on_every_row(tmp_path):
    comparison, _ = compared(two_methods(tmp_path, extra_right=10))
    for row in rows_of(comparison).values():
        assert row["Δbase"].delta == pytest.approx(5.0) and row["Δnovel"].delta == pytest.approx(5.0)
        assert all(row[measure].excludes_zero and row[measure].low > 0 for measure in ("Δbase", "Δnovel", "ΔHM"))
        assert row["ΔHM"].p < 0.01
    printed = markdown([comparison])
    assert "| dtd | 1,2,3 | +5.00* [" in printed and "| average of dtd, eurosat | 1,2,3 | +5.00* [" in printed


def test_a_fixed_bootstrap_seed_gives_fixed_numbers_and_another_seed_moves_only_the_ci(tmp_path):
    two_methods(tmp_path, extra_right=3)
    hm = rows_of(compared(tmp_path, bootstrap_seed=0)[0])["average of dtd, eurosat"]["ΔHM"]
    # Seed s: MMA has base (150 + s) / 2 % and novel (120 + s) / 2 % on both datasets, RMAdapter 1.5 points more.
    assert hm.delta == pytest.approx(np.mean([harmonic_mean((150 + s) / 2 + 1.5, (120 + s) / 2 + 1.5)
                                              - harmonic_mean((150 + s) / 2, (120 + s) / 2) for s in (1, 2, 3)]))
    # Computed once with numpy 2.4 (requirements.txt), and within Monte Carlo error of a plain bootstrap that
    # resamples seeds, then image indices, 4000 times: [1.046, 2.057]. No replicate is <= 0: p = 2 / (2000 + 1).
    assert (hm.low, hm.high, hm.p) == pytest.approx((1.0381283577303, 2.0391832000449, 2 / 2001), abs=1e-9)
    other = rows_of(compared(tmp_path, bootstrap_seed=1)[0])["average of dtd, eurosat"]["ΔHM"]
    assert other.delta == hm.delta and (other.low, other.high) != (hm.low, hm.high)


def test_the_image_level_resample_has_the_spread_of_a_paired_difference_of_proportions():
    both, only_a, only_b, neither = 700, 60, 20, 220  # one seed, one dataset, 1000 images
    agreement = np.array([[[[both, only_a, only_b, neither]] * 2]])  # (seeds, datasets, splits, 4)
    accuracy = bootstrap_accuracy(agreement, 0, 20_000)
    difference = accuracy[..., 0, 0] - accuracy[..., 0, 1]
    total, shift = 1000, (only_a - only_b) / 1000
    standard_error = 100 * np.sqrt(((only_a + only_b) / total - shift**2) / total)  # McNemar's paired SE
    assert difference.mean() == pytest.approx(100 * shift, abs=0.05)
    assert difference.std() == pytest.approx(standard_error, rel=0.03)


def test_the_ci_narrows_with_seeds_and_its_last_row_is_the_average_row(tmp_path):
    two_methods(tmp_path, datasets=BASE2NEW_DATASETS, seeds=(1, 2, 3, 4, 5), extra_right=2, images=100)
    comparison, by_seed_count = compared(tmp_path, seeds=(1, 2, 3, 4, 5), replicates=500)
    average = rows_of(comparison)["11-dataset average"]["ΔHM"]
    assert by_seed_count.header == ["Seeds", "RMAdapter:vit_b16_ep5 − MMA:vit_b16_ep5: ΔHM, 11-dataset average",
                                    "CI width"]
    assert [row[0] for row in by_seed_count.rows] == [f"first {count}" for count in range(1, 6)]
    assert by_seed_count.rows[-1][1] == average
    widths = [float(row[2]) for row in by_seed_count.rows]
    assert widths[-1] < widths[0]


def test_datasets_run_with_other_seeds_get_no_average_and_datasets_of_one_method_are_named(tmp_path):
    two_methods(tmp_path, datasets=("dtd",), seeds=(1, 2, 3))
    two_methods(tmp_path, datasets=("eurosat",), seeds=(1, 2))
    evaluated_run(tmp_path, "MMA", "ucf101", 1, "base", right_answers(200, 100, 1))
    evaluated_run(tmp_path, "MMA", "ucf101", 1, "new", right_answers(200, 100, 1))
    comparison, *narrowing = compared(tmp_path)
    assert [row[:2] for row in comparison.rows] == [["dtd", "1,2,3"], ["eurosat", "1,2"]] and narrowing == []
    assert comparison.notes[-2:] == ["No average: the datasets were run with different seeds (dtd: 1,2,3; "
                                     "eurosat: 1,2).", "Not compared (results of one method only): ucf101."]


def test_different_seeds_or_test_sets_and_unclear_methods_are_refused_in_one_line(tmp_path):
    two_methods(tmp_path / "seeds", datasets=("dtd",))
    os.remove(os.path.join(b2n_dir(tmp_path / "seeds", "dtd", 3, "test_new", "MMA"), "metrics.json"))
    assert refusal(tmp_path / "seeds", "--compare", "RMAdapter", "MMA") == (
        "dtd: RMAdapter:vit_b16_ep5 has seeds 1,2,3, MMA:vit_b16_ep5 has seeds 1,2; run the missing seeds or "
        "choose common ones with --seeds")
    assert compared(tmp_path / "seeds", seeds=(1, 2))[0].rows[0][:2] == ["dtd", "1,2"]

    two_methods(tmp_path / "sets", datasets=("dtd",))
    evaluated_run(tmp_path / "sets", "MMA", "dtd", 2, "new", right_answers(200, 100, 0), test_set="0" * 64)
    assert refusal(tmp_path / "sets", "--compare", "RMAdapter", "MMA") == (
        "dtd seed 2 (new classes): RMAdapter:vit_b16_ep5 and MMA:vit_b16_ep5 were tested on different test sets "
        "(test_set_sha256 differs); evaluate both on the same split files")

    two_methods(tmp_path / "configs", datasets=("dtd",))
    two_methods(tmp_path / "configs", datasets=("dtd",), config="vit_b16_ep10")
    assert refusal(tmp_path / "configs", "--compare", "RMAdapter:vit_b16_ep5", "MMA") == (
        "--compare MMA matches MMA:vit_b16_ep10, MMA:vit_b16_ep5: name one as TRAINER:CONFIG")
    assert refusal(tmp_path / "configs", "--compare", "RMMA", "MMA:vit_b16_ep5") == (
        "--compare RMMA: no base-to-novel runs of it; there are MMA:vit_b16_ep10, MMA:vit_b16_ep5, "
        "RMAdapter:vit_b16_ep10, RMAdapter:vit_b16_ep5")
    assert refusal(tmp_path / "configs", "--compare", "MMA:vit_b16_ep5") == (
        "--compare needs two methods or more: the first is compared with each of the others")


def test_without_per_image_predictions_the_seeds_alone_are_tested_with_a_paired_t(tmp_path):
    for seed, (a, b) in enumerate([(81, 80), (82, 80), (84, 80)], start=1):  # per-seed Δbase 1, 2, 4
        for trainer, base in (("RMAdapter", a), ("MMA", b)):
            evaluated_run(tmp_path, trainer, "dtd", seed, "base", np.arange(100) < base, with_predictions=False)
            evaluated_run(tmp_path, trainer, "dtd", seed, "new", np.arange(100) < 60, with_predictions=False)
    comparison, _ = compared(tmp_path)
    row = rows_of(comparison)["dtd"]
    assert row["Test"] == T_TEST
    mean, standard_error = 7 / 3, np.sqrt(7 / 3) / np.sqrt(3)  # sample std of 1, 2, 4 is sqrt(7/3)
    assert row["Δbase"].delta == pytest.approx(mean)
    assert (row["Δbase"].low, row["Δbase"].high) == pytest.approx(
        (mean - T_975[2] * standard_error, mean + T_975[2] * standard_error), abs=1e-5)
    assert not row["Δbase"].excludes_zero and row["Δnovel"].p == 1
    assert any("no per-image predictions" in note for note in comparison.notes)

    one_seed, _ = compared(tmp_path, seeds=(1,))
    assert rows_of(one_seed)["dtd"]["Test"] == NO_TEST and rows_of(one_seed)["dtd"]["Δbase"].low is None


def test_a_predictions_file_that_disagrees_with_its_record_makes_its_row_fall_back(tmp_path, capsys):
    two_methods(tmp_path, datasets=("dtd", "eurosat"), extra_right=10)
    run_dir = b2n_dir(tmp_path, "eurosat", 2, "test_new", "MMA")
    labels = np.zeros(200, dtype=int)
    write_predictions(run_dir, Predictions(np.arange(200), labels, labels, TEST_SET))  # all right: not its record
    rows = rows_of(compared(tmp_path)[0])
    assert rows["dtd"]["Test"] == BOOTSTRAP_TEST
    assert rows["eurosat"]["Test"] == rows["average of dtd, eurosat"]["Test"] == T_TEST
    assert rows["eurosat"]["Δbase"].delta == pytest.approx(5.0)
    assert f"{run_dir}/{PREDICTIONS_NAME}: 200/200 right, but the record says" in capsys.readouterr().err


def test_the_reproduction_check_gives_ours_minus_published_and_whether_it_lies_in_our_spread(tmp_path, capsys):
    published_base, published_novel = load_published()["base2new"]["MMA"]["dtd"]  # 83.20, 65.63
    for seed, (base, novel) in enumerate([(82.5, 59.0), (83.0, 60.0), (83.5, 61.0)], start=1):
        record(b2n_dir(tmp_path, "dtd", seed), base)  # base 83.0 ± 0.41, novel 60.0 ± 0.82
        record(b2n_dir(tmp_path, "dtd", seed, "test_new"), novel)
    main(build_parser().parse_args([str(tmp_path), "--compare-published", "--out", str(tmp_path / "board")]))
    with open(tmp_path / "board" / "reproduction.csv") as file:
        (row,) = csv.DictReader(file)
    assert (row["Method"], row["Published as"]) == ("MMA", "MMA")
    assert float(row["Δbase"]) == pytest.approx(83.0 - published_base)
    assert float(row["Δnovel"]) == pytest.approx(60.0 - published_novel)
    assert float(row["ΔHM"]) == pytest.approx(harmonic_mean(83.0, 60.0) - harmonic_mean(83.2, 65.63))
    assert row["Published within our mean ± spread"] == "base within, novel outside, HM outside"
    assert "| dtd | MMA | vit_b16_ep5 | MMA | 83.00 ± 0.41 | 83.20 | -0.20 |" in capsys.readouterr().out


def test_the_reproduction_check_averages_a_method_with_all_eleven_datasets(tmp_path, capsys):
    published_base, published_novel = load_published()["base2new"]["MMA"]["average"]
    for dataset in BASE2NEW_DATASETS:
        for seed in (1, 2, 3):
            record(b2n_dir(tmp_path, dataset, seed), 80.0 + (seed - 2))  # per-seed averages 79, 80, 81
            record(b2n_dir(tmp_path, dataset, seed, "test_new"), 60.0 + 2 * (seed - 2))  # 58, 60, 62
            if dataset == "dtd":
                record(b2n_dir(tmp_path, dataset, seed, trainer="RMAdapter"), 70.0)
                record(b2n_dir(tmp_path, dataset, seed, "test_new", trainer="RMAdapter"), 50.0)
    main(build_parser().parse_args([str(tmp_path), "--compare-published", "--out", str(tmp_path / "board")]))
    with open(tmp_path / "board" / "reproduction.csv") as file:
        rows = {(row["Dataset"], row["Method"]): row for row in csv.DictReader(file)}
    average = rows[("average", "MMA")]
    assert float(average["Δbase"]) == pytest.approx(80.0 - published_base)
    assert float(average["Δnovel"]) == pytest.approx(60.0 - published_novel)
    assert float(average["ΔHM"]) == pytest.approx(harmonic_mean(80.0, 60.0)
                                                  - harmonic_mean(published_base, published_novel))
    assert float(average["Base std"]) == pytest.approx(np.std([79.0, 80.0, 81.0]))
    assert float(average["HM std"]) == pytest.approx(np.std(harmonic_mean([79.0, 80.0, 81.0], [58.0, 60.0, 62.0])))
    assert ("average", "RMAdapter") not in rows
    assert "No average row for RMAdapter (1 of 11 datasets): it needs all 11 datasets." in capsys.readouterr().out


def test_the_command_prints_and_writes_the_comparison_and_refuses_in_one_line(tmp_path):
    two_methods(tmp_path / "runs", extra_right=10)
    command = [sys.executable, "-m", "harness.results.leaderboard", str(tmp_path / "runs"), "--no-published",
               "--out", str(tmp_path / "board"), "--compare", "RMAdapter", "MMA", "--seeds", "1-3"]
    board = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert board.returncode == 0, board.stderr
    assert "### Paired comparison: RMAdapter:vit_b16_ep5 − MMA:vit_b16_ep5 (base-to-novel)" in board.stdout
    assert "| average of dtd, eurosat | 1,2,3 | +5.00* [" in board.stdout
    assert "### How the 95% CI of ΔHM narrows with the number of seeds" in board.stdout
    with open(tmp_path / "board" / "comparison_RMAdapter_vit_b16_ep5_vs_MMA_vit_b16_ep5.csv") as file:
        rows = {row["Dataset"]: row for row in csv.DictReader(file)}
    assert float(rows["dtd"]["Δnovel"]) == pytest.approx(5.0) and rows["dtd"]["Δnovel CI excludes 0"] == "True"
    assert "+5.00*" in (tmp_path / "board" / "leaderboard.tex").read_text()

    refused = subprocess.run([*command[:-2], "--seeds", "1-x"], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=60, check=False)
    assert (refused.returncode, refused.stderr) == (1, "--seeds: '1-x' is not a seed or a range of seeds such as "
                                                       "1-10\n")
