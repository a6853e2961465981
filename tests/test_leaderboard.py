"""The leaderboard's aggregation rules on known numbers, its flags, its log fallback and its output files."""
import csv
import os
import shutil

import numpy as np
import pytest

from harness.json_files import write_json_atomic
from harness.protocols import BASE2NEW_DATASETS, CROSS_DATASET_TARGETS
from harness.results.collect import collect_runs
from harness.results.layout import parse_run_dir
from harness.results.leaderboard import build_parser, main
from harness.results.published import harmonic_mean, load_published
from harness.results.record import SCHEMA_VERSION, dataset_name_of_config
from harness.results.tables import Leaderboard

PARSE_LOGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "parse_logs")
MMA_UCF101_NOVEL_CONSISTENT = 78.53  # published_results.yaml: the printed 80.03 fits neither its HM nor its average


def b2n_dir(root, dataset, seed, phase="train_base", trainer="MMA", config="vit_b16_ep5"):
    return os.path.join(root, "base2new", phase, dataset, "shots_16", trainer, config, f"seed{seed}")


def record(run_dir, accuracy, config_hash="c0ffee", total=1000, test_set_sha256=None):
    """A metrics.json as train.py writes it for this run folder (the fields the readers check)."""
    layout = parse_run_dir(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    write_json_atomic({
        "schema_version": SCHEMA_VERSION, "accuracy": accuracy, "macro_f1": accuracy, "error": 100 - accuracy,
        "total": total, "correct": round(accuracy * total / 100), "trainer": layout.trainer,
        "dataset": dataset_name_of_config(layout.dataset), "protocol": layout.protocol, "seed": layout.seed,
        "config_hash": config_hash, **({"test_set_sha256": test_set_sha256} if test_set_sha256 else {}),
    }, os.path.join(run_dir, "metrics.json"))


def rows(table, source="ours"):
    return [dict(zip(table.header, row)) for row in table.rows if row[table.header.index("Source")] == source]


def tables(root, **kwargs):
    runs, _ = collect_runs(root)
    return {table.name: table for table in Leaderboard(runs, load_published(), **kwargs).tables()}


@pytest.fixture
def mma_published_as_runs(tmp_path):
    """MMA's published per-dataset base/novel accuracies as three identical seeds per dataset."""
    rows = load_published()["base2new"]["MMA"]
    for dataset in BASE2NEW_DATASETS:
        base, novel = rows[dataset]
        if dataset == "ucf101":
            novel = MMA_UCF101_NOVEL_CONSISTENT
        for seed in (1, 2, 3):
            record(b2n_dir(tmp_path, dataset, seed), base)
            record(b2n_dir(tmp_path, dataset, seed, "test_new"), novel)
    return tmp_path


def test_mma_published_rows_reproduce_its_published_averages_and_hm(mma_published_as_runs):
    average = rows(tables(mma_published_as_runs)["base2new_average"])[0]
    assert average["Base"].mean == pytest.approx(83.20, abs=0.005)
    assert average["Novel"].mean == pytest.approx(76.80, abs=0.005)
    assert average["HM"].mean == pytest.approx(79.87, abs=0.005)  # MMA's README: 83.20 / 76.80 / 79.87
    assert not average["HM"].incomplete and average["Datasets"] == "11/11" and average["Notes"] == ""


def test_the_average_hm_is_the_hm_of_the_averages_not_the_mean_of_per_dataset_hms(mma_published_as_runs):
    board = tables(mma_published_as_runs)
    per_dataset_hms = [row["HM"].mean for row in rows(board["base2new"])]
    average = rows(board["base2new_average"])[0]
    assert average["HM"].mean == pytest.approx(harmonic_mean(average["Base"].mean, average["Novel"].mean))
    assert np.mean(per_dataset_hms) == pytest.approx(79.72, abs=0.005)  # 0.15 below the HM of the averages


def test_published_rows_sit_beside_ours_and_the_printed_mma_novel_average_is_flagged(mma_published_as_runs):
    board = tables(mma_published_as_runs)
    eurosat = [row for row in rows(board["base2new"], "published") if row["Dataset"] == "eurosat"]
    assert {row["Method"] for row in eurosat} >= {"CLIP", "MaPLe", "MMA", "RMAdapter"}
    mma = next(row for row in eurosat if row["Method"] == "MMA")
    assert mma["HM"].mean == pytest.approx(harmonic_mean(85.46, 82.34))
    averages = {row["Method"]: row for row in rows(board["base2new_average"], "published")}
    assert averages["MMA"]["Notes"] == "printed novel average 76.80, mean of its printed rows 76.94"
    assert averages["R-MMA"]["Notes"] == "printed average only"
    assert averages["CLIP"]["HM"].mean == pytest.approx(71.70, abs=0.005)


def test_seed_mean_uses_np_std_with_ddof_0_or_the_ci95(tmp_path):
    for seed, (base, novel) in enumerate([(80, 60), (82, 62), (84, 67)], start=1):
        record(b2n_dir(tmp_path, "dtd", seed), base)
        record(b2n_dir(tmp_path, "dtd", seed, "test_new"), novel)
    row = rows(tables(tmp_path)["base2new"])[0]
    assert (row["Base"].mean, row["Base"].spread) == (82.0, pytest.approx(np.sqrt(8 / 3)))
    assert row["HM"].mean == pytest.approx(harmonic_mean(82.0, 63.0))
    per_seed_hms = [harmonic_mean(80, 60), harmonic_mean(82, 62), harmonic_mean(84, 67)]
    assert row["HM"].spread == pytest.approx(np.std(per_seed_hms))  # the PNG's error bar
    ci95_row = rows(tables(tmp_path, ci95=True)["base2new"])[0]
    assert ci95_row["Novel"].spread == pytest.approx(1.96 * np.std([60, 62, 67]) / np.sqrt(3))


def test_a_missing_seed_is_flagged_and_its_averages_are_marked_incomplete(mma_published_as_runs):
    shutil.rmtree(b2n_dir(mma_published_as_runs, "eurosat", 3, "test_new"))
    board = tables(mma_published_as_runs)
    eurosat = next(row for row in rows(board["base2new"]) if row["Dataset"] == "eurosat")
    assert eurosat["Notes"] == "novel: seed3 missing" and eurosat["Seeds (base/novel)"] == "1,2,3 / 1,2"
    assert eurosat["Novel"].incomplete and eurosat["HM"].incomplete and not eurosat["Base"].incomplete
    average = rows(board["base2new_average"])[0]
    assert average["Notes"] == "eurosat incomplete" and average["HM"].incomplete
    assert not rows(tables(mma_published_as_runs, expected_seeds=(1, 2))["base2new"])[0]["Novel"].incomplete


def test_unfinished_runs_duplicates_missing_datasets_and_mixed_configs_are_flagged(tmp_path):
    for seed in (1, 2, 3):
        record(b2n_dir(tmp_path, "dtd", seed), 80, config_hash="a" if seed < 3 else "b")
        if seed < 3:
            record(b2n_dir(tmp_path, "dtd", seed, "test_new"), 60)
    os.makedirs(b2n_dir(tmp_path, "dtd", 3, "test_new"))  # started, never finished
    record(b2n_dir(tmp_path, "dtd", 1, "test_base"), 81, config_hash="a")  # a second base result for seed 1
    board = tables(tmp_path)
    dtd = rows(board["base2new"])[0]
    assert dtd["Notes"] == ("base: several runs of seed1; base: configs differ across seeds; "
                            "novel: seed3 unfinished")
    assert dtd["Base"].incomplete and dtd["Novel"].mean == 60
    average = rows(board["base2new_average"])[0]
    assert average["Datasets"] == "1/11" and average["Notes"].startswith("no base and novel result for imagenet, ")


def test_runs_of_other_coop_family_code_are_read_from_their_logs(tmp_path):
    for seed in (1, 2):
        shutil.copytree(os.path.join(PARSE_LOGS, "train", "maple", f"seed{seed}"),
                        b2n_dir(tmp_path, "eurosat", seed, trainer="MaPLe", config="maple_cfg"))
        shutil.copytree(os.path.join(PARSE_LOGS, "test", "maple", f"seed{seed}"),
                        b2n_dir(tmp_path, "eurosat", seed, "test_new", trainer="MaPLe", config="maple_cfg"))
    runs, _ = collect_runs(tmp_path)
    assert {run.read_from for run in runs} == {"log"}
    row = rows(Leaderboard(runs, expected_seeds=(1, 2)).tables()[0])[0]
    assert row["Base"].mean == pytest.approx(np.mean([82.34, 83.10]))
    assert row["Novel"].mean == pytest.approx(np.mean([74.25, 73.75]))


def test_cross_dataset_and_domain_generalization_average_only_the_targets(tmp_path):
    for seed in (1, 2, 3):
        record(os.path.join(tmp_path, "imagenet", "MMA", "xd_16shots", f"seed{seed}"), 70.0)
        for index, target in enumerate(CROSS_DATASET_TARGETS):
            record(os.path.join(tmp_path, "evaluation", "MMA", "xd_16shots", target, f"seed{seed}"), 50.0 + index)
        record(os.path.join(tmp_path, "evaluation", "MMA", "xd_16shots", "imagenet_a", f"seed{seed}"), 40.0)
    board = tables(tmp_path)
    cross = rows(board["cross_dataset"])[0]
    assert cross["imagenet"].mean == 70.0 and cross["Average"].mean == pytest.approx(54.5)
    assert not cross["Average"].incomplete
    generalization = rows(board["domain_generalization"])[0]
    assert generalization["Average"].mean == 40.0 and generalization["Average"].incomplete
    assert generalization["Notes"] == "not run: imagenetv2, imagenet_sketch, imagenet_r"
    published = {row["Method"]: row for row in rows(board["cross_dataset"], "published")}
    assert published["MMA"]["Average"].mean == pytest.approx(66.61, abs=0.01)  # its printed 10-target average
    assert published["R-MMA"]["Notes"] == "printed average only"


def test_the_command_writes_markdown_csv_latex_and_a_plot(mma_published_as_runs, tmp_path, capsys):
    out = tmp_path / "board"
    main(build_parser().parse_args([str(mma_published_as_runs), "--out", str(out)]))
    printed = capsys.readouterr().out
    assert printed.startswith("66 runs: 66 finished (66 from metrics.json, 0 from logs), 0 unfinished.")
    assert "| MMA | vit_b16_ep5 | ours | 83.20 | 76.80 | 79.87 | 11/11 |  |" in printed
    assert sorted(os.listdir(out)) == ["base2new.csv", "base2new_average.csv", "leaderboard.md", "leaderboard.png",
                                       "leaderboard.tex"]
    assert (out / "leaderboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(out / "base2new_average.csv") as file:
        ours = next(csv.DictReader(file))
    assert (ours["Method"], ours["Source"], ours["Datasets"]) == ("MMA", "ours", "11/11")
    assert float(ours["HM"]) == pytest.approx(79.87, abs=0.005) and ours["HM complete"] == "True"
    latex = (out / "leaderboard.tex").read_text()
    assert "\\textit{published}" in latex and "vit\\_b16\\_ep5" in latex


def test_several_output_folders_make_one_leaderboard_with_seeds_pooled_across_them(tmp_path, capsys):
    ours, theirs = tmp_path / "ours", tmp_path / "maple_checkout"
    for seed in (1, 2):
        record(b2n_dir(ours, "eurosat", seed), 90.0)
        record(b2n_dir(ours, "eurosat", seed, "test_new"), 70.0)
        shutil.copytree(os.path.join(PARSE_LOGS, "train", "maple", f"seed{seed}"),
                        b2n_dir(theirs, "eurosat", seed, trainer="MaPLe", config="maple_cfg"))
        shutil.copytree(os.path.join(PARSE_LOGS, "test", "maple", f"seed{seed}"),
                        b2n_dir(theirs, "eurosat", seed, "test_new", trainer="MaPLe", config="maple_cfg"))
    record(b2n_dir(theirs, "eurosat", 1), 91.0)  # the same MMA seed in both folders
    out = tmp_path / "board"
    main(build_parser().parse_args([str(ours), str(theirs), "--seeds", "1", "2", "--no-published", "--out", str(out)]))
    assert capsys.readouterr().out.startswith("9 runs: 9 finished (5 from metrics.json, 4 from logs), 0 unfinished.\n"
                                              f"Runs per folder: {ours} 4, {theirs} 5\n")
    with open(out / "base2new.csv") as file:
        board = {row["Method"]: row for row in csv.DictReader(file)}
    assert float(board["MaPLe"]["Base"]) == pytest.approx(np.mean([82.34, 83.10])) and board["MaPLe"]["Notes"] == ""
    assert board["MMA"]["Notes"] == "base: several runs of seed1"


def test_a_missing_output_folder_among_several_is_named(tmp_path, capsys):
    record(b2n_dir(tmp_path / "ours", "eurosat", 1), 90.0)
    with pytest.raises(SystemExit) as stopped:
        main(build_parser().parse_args([str(tmp_path / "ours"), str(tmp_path / "typo")]))
    assert stopped.value.code == f"{tmp_path / 'typo'}: no such folder"


def test_seeds_take_ranges_and_a_bad_range_is_refused_in_one_line(tmp_path):
    for seed in (1, 2, 3, 4):
        record(b2n_dir(tmp_path / "runs", "dtd", seed), 80.0)
        record(b2n_dir(tmp_path / "runs", "dtd", seed, "test_new"), 60.0)

    def notes(*seeds):
        main(build_parser().parse_args([str(tmp_path / "runs"), "--seeds", *seeds, "--out", str(tmp_path / "b")]))
        with open(tmp_path / "b" / "base2new.csv") as file:
            return next(csv.DictReader(file))["Notes"]

    assert notes("1-4") == "" and notes("1-5") == "base: seed5 missing; novel: seed5 missing"
    assert notes("1-3", "5") == "base: seed5 missing; novel: seed5 missing"
    with pytest.raises(SystemExit) as stopped:
        notes("3-1")
    assert stopped.value.code == "--seeds: '3-1' is an empty range (write the smaller seed first)"
