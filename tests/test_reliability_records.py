"""Result records are validated when read: an empty, corrupt or incomplete record, or one that belongs to another
folder, counts as unfinished with one line saying why, and is never averaged."""
import json

import pytest

import parse_test_res
from harness.results.collect import collect_runs
from harness.results.record import RECORD_NAME, read_record, record_is_valid, record_problem

RUN = ("base2new", "train_base", "demo", "shots_16", "MMA", "demo")
VALID = {"schema_version": 1, "accuracy": 90.0, "macro_f1": 89.3, "error": 10.0, "total": 50, "correct": 45,
         "trainer": "MMA", "dataset": "Demo", "protocol": "base2new", "seed": 1}


def write_record(output, seed, content):
    run_dir = output.joinpath(*RUN, f"seed{seed}")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / RECORD_NAME).write_text(content if isinstance(content, str) else json.dumps(content))
    return run_dir


def test_a_valid_record_in_its_own_folder_is_read(tmp_path):
    run_dir = write_record(tmp_path, 1, VALID)
    assert record_problem(run_dir) is None and record_is_valid(run_dir)
    assert read_record(run_dir) == VALID


@pytest.mark.parametrize("content, reason", [
    ("", "unreadable or corrupt"),
    ('{"accuracy": 90.0, "seed"', "unreadable or corrupt"),
    ("[1, 2]", "not a result record"),
    ({**VALID, "accuracy": None}, "incomplete record (missing or invalid: accuracy)"),
    ({key: value for key, value in VALID.items() if key not in ("total", "correct")},
     "incomplete record (missing or invalid: total, correct)"),
    ({**VALID, "seed": 2}, "its seed is 2 but its folder says 1"),
    ({**VALID, "trainer": "RMAdapter"}, "its trainer is 'RMAdapter' but its folder says 'MMA'"),
    ({**VALID, "dataset": "EuroSAT"}, "its dataset is 'EuroSAT' but its folder says 'Demo'"),
    ({**VALID, "protocol": "few_shot"}, "its protocol is 'few_shot' but its folder says 'base2new'"),
])
def test_an_invalid_or_misplaced_record_counts_as_unfinished_with_one_line(tmp_path, capsys, content, reason):
    run_dir = write_record(tmp_path, 1, content)
    assert not record_is_valid(run_dir)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"Warning: {run_dir / RECORD_NAME}: ") and reason in line
    assert read_record(run_dir) is None


def test_the_leaderboard_and_the_parser_never_average_an_invalid_record(tmp_path, capsys):
    write_record(tmp_path, 1, VALID)
    write_record(tmp_path, 2, {**VALID, "seed": 1})  # copied from seed1
    # The log of seed 2 holds a result too: it is not read in place of the misplaced record.
    (tmp_path.joinpath(*RUN, "seed2") / "log.txt").write_text("Finish training\n* accuracy: 50.0%\n")
    (tmp_path.joinpath(*RUN, "seed1") / "log.txt").write_text("Finish training\n* accuracy: 90.0%\n")
    runs, _ = collect_runs(str(tmp_path))
    assert {run.layout.seed: run.accuracy for run in runs} == {1: 90.0, 2: None}
    parse_test_res.main(parse_test_res.build_parser().parse_args([str(tmp_path.joinpath(*RUN))]))
    out = capsys.readouterr().out
    assert "seed2: not counted: " in out and "its seed is 1 but its folder says 2" in out
    assert "* accuracy: 90.00% +- 0.00%" in out
