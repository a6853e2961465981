"""Paired comparisons on the base-to-novel protocol: method A − method B in base, novel and HM accuracy (points),
per dataset and averaged over the datasets, with a 95% confidence interval and a two-sided p-value.

    python -m harness.results.leaderboard output --compare RMAdapter MMA RMMA:vit_b16_ep5   # A − B, A − C

Pairing. On each dataset both methods must have the same seeds (among --seeds) and have been tested on the same
images (the test_set_sha256 of their records and predictions); otherwise the comparison is refused. Seed s of A
is paired with seed s of B (the same few-shot draw), image i with image i.

Statistic. Per seed: each method's base and novel accuracy (for the average row, their means over the datasets),
its HM = 2BN/(B+N), and the differences A − B. The reported Δ is the mean of these over the seeds: ΔHM is thus a
mean of per-seed HM differences, which can differ by a few hundredths from the difference of the leaderboard's
HMs of seed means.

Test with per-image predictions (a predictions.npz that agrees with its record, for every run of the row): a
paired hierarchical bootstrap. Each replicate draws the seeds with replacement (one draw for both methods and all
datasets), then for each drawn seed, dataset and split the test images with replacement, the same images for both
methods. Only four counts of a (seed, dataset, split) matter: images both methods got right, only A, only B,
neither; a resample of its N images is a multinomial draw of N over those four shares. The CI is the 2.5th and
97.5th percentile of the replicates' Δ. The p-value is the percentile bootstrap's two-sided test of Δ = 0 on the
uncentered replicates, with the +1 correction of Davison & Hinkley (1997):
    p = min(1, 2 * min(#(Δ* <= 0) + 1, #(Δ* >= 0) + 1) / (R + 1)),
so p < 0.05 about when the CI excludes 0, and identical methods (Δ* = 0 in every replicate) give p = 1.

Without them (runs read from logs: other CoOp-family code; predictions.npz missing or disagreeing with its record):
a paired t-test over seeds on the per-seed differences, t distribution with n - 1 degrees of freedom. It sees the
seed-to-seed variation only. With one seed and no predictions there is no CI.

A difference whose CI excludes 0 is marked *. Each bootstrap starts its own numpy.random.default_rng(bootstrap_seed),
so the numbers do not depend on which other comparisons run beside it.
"""
from collections import defaultdict
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from harness.errors import UserError
from harness.protocols import BASE2NEW, BASE2NEW_DATASETS
from harness.results.predictions import read_predictions
from harness.results.published import harmonic_mean
from harness.results.tables import Table, dataset_order

SPLITS = ("base", "new")
MEASURES = ("Δbase", "Δnovel", "ΔHM")
BOOTSTRAP_TEST = "bootstrap seeds×images"
T_TEST = "paired t over seeds"
NO_TEST = "none: 1 seed, no per-image predictions"
DEFAULT_REPLICATES = 2000


class ComparisonError(UserError):
    pass


@dataclass(frozen=True)
class Difference:
    """A − B in accuracy points: the observed value, its 95% CI and two-sided p (None where there is no test)."""
    delta: float
    low: float = None
    high: float = None
    p: float = None

    @property
    def excludes_zero(self):
        return self.low is not None and (self.low > 0 or self.high < 0)


def method_spec(method):
    return f"{method.trainer}:{method.config}"


def resolve_method(spec, methods):
    """The Method that TRAINER or TRAINER:CONFIG names among the base-to-novel methods."""
    trainer, _, config = spec.partition(":")
    found = [method for method in methods if method.trainer == trainer and config in ("", method.config)]
    if len(found) == 1:
        return found[0]
    if found:
        raise ComparisonError(f"--compare {spec} matches {', '.join(method_spec(m) for m in found)}: "
                              "name one as TRAINER:CONFIG")
    raise ComparisonError(f"--compare {spec}: no base-to-novel runs of it; there are "
                          f"{', '.join(method_spec(m) for m in methods) or 'none'}")


# Pairing the runs -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PairedDataset:
    """One dataset's runs of A and B, seed by seed."""
    dataset: str
    seeds: tuple
    accuracy: np.ndarray  # (seeds, 2 splits, 2 methods), percent
    agreement: np.ndarray = None  # (seeds, 2 splits, 4): both right, only A, only B, neither; None: no predictions

    def first_seeds(self, count):
        agreement = None if self.agreement is None else self.agreement[:count]
        return replace(self, seeds=self.seeds[:count], accuracy=self.accuracy[:count], agreement=agreement)


def _finished_runs(board, method, dataset, split, seeds):
    """{seed: run} of the finished runs among `seeds`; several runs of one seed are refused."""
    by_seed = defaultdict(list)
    for run in board.runs(BASE2NEW, method, dataset, split):
        if run.finished and run.layout.seed in seeds:
            by_seed[run.layout.seed].append(run)
    for seed, runs in by_seed.items():
        if len(runs) > 1:
            raise ComparisonError(f"{dataset} seed {seed}: {method_spec(method)} has several {split} runs "
                                  f"({', '.join(run.run_dir for run in runs)}); keep one to compare")
    return {seed: runs[0] for seed, runs in by_seed.items()}


def _predictions(run):
    return None if run.record is None else read_predictions(run.run_dir, run.record)


def _test_set(run, predictions):
    return predictions.test_set_sha256 if predictions is not None else (run.record or {}).get("test_set_sha256")


def _seeds_text(seeds):
    return ",".join(str(seed) for seed in seeds) or "none"


def pair_dataset(board, a, b, dataset, seeds):
    """The PairedDataset of A and B on a dataset, or None when one of them has no result there."""
    runs = {method: [_finished_runs(board, method, dataset, split, seeds) for split in SPLITS] for method in (a, b)}
    seeds_of = {method: sorted(base.keys() & new.keys()) for method, (base, new) in runs.items()}
    if not (seeds_of[a] and seeds_of[b]):
        return None
    if seeds_of[a] != seeds_of[b]:
        raise ComparisonError(f"{dataset}: {method_spec(a)} has seeds {_seeds_text(seeds_of[a])}, {method_spec(b)} "
                              f"has seeds {_seeds_text(seeds_of[b])}; run the missing seeds or choose common ones "
                              "with --seeds")
    accuracy, agreement = [], []
    for seed in seeds_of[a]:
        accuracy.append([[runs[method][split][seed].accuracy for method in (a, b)] for split in range(2)])
        for split, name in enumerate(SPLITS):
            run_a, run_b = runs[a][split][seed], runs[b][split][seed]
            found = _predictions(run_a), _predictions(run_b)
            test_sets = _test_set(run_a, found[0]), _test_set(run_b, found[1])
            if None not in test_sets and test_sets[0] != test_sets[1]:
                raise ComparisonError(f"{dataset} seed {seed} ({name} classes): {method_spec(a)} and {method_spec(b)} "
                                      "were tested on different test sets (test_set_sha256 differs); evaluate both "
                                      "on the same split files")
            if agreement is not None and None not in found:
                agreement.append(_agreement(*(predictions.correct for predictions in found)))
            else:
                agreement = None
    shape = (len(seeds_of[a]), len(SPLITS), 4)
    return PairedDataset(dataset, tuple(seeds_of[a]), np.array(accuracy, dtype=float),
                         None if agreement is None else np.array(agreement).reshape(shape))


def _agreement(right_a, right_b):
    return [np.sum(right_a & right_b), np.sum(right_a & ~right_b), np.sum(~right_a & right_b),
            np.sum(~right_a & ~right_b)]


# Statistics -------------------------------------------------------------------------------------------------------

def per_seed_differences(accuracy):
    """A − B per seed in base, novel and HM, for each dataset and then for their average:
    accuracy (..., seeds, datasets, 2 splits, 2 methods) -> (..., seeds, datasets + 1, 3)."""
    rows = np.concatenate([accuracy, accuracy.mean(axis=-3, keepdims=True)], axis=-3)
    hm = harmonic_mean(rows[..., 0, :], rows[..., 1, :])
    values = np.concatenate([rows, hm[..., None, :]], axis=-2)
    return values[..., 0] - values[..., 1]


def bootstrap_accuracy(agreement, bootstrap_seed, replicates):
    """Replicate accuracies (replicates, seeds, datasets, 2 splits, 2 methods) of the paired hierarchical
    bootstrap, from agreement counts (seeds, datasets, 2 splits, 4)."""
    rng = np.random.default_rng(bootstrap_seed)
    seeds = agreement.shape[0]
    drawn = agreement[rng.integers(seeds, size=(replicates, seeds))]
    totals = drawn.sum(axis=-1)
    images = rng.multinomial(totals, drawn / totals[..., None])
    right = np.stack([images[..., 0] + images[..., 1], images[..., 0] + images[..., 2]], axis=-1)
    return 100 * right / totals[..., None]


def bootstrap_difference(observed, replicates):
    low, high = np.percentile(replicates, [2.5, 97.5])
    tail = min(np.sum(replicates <= 0), np.sum(replicates >= 0)) + 1
    return Difference(float(observed), float(low), float(high), min(1.0, 2 * tail / (len(replicates) + 1)))


def t_difference(per_seed):
    """The paired t-test over seeds of the per-seed differences."""
    mean, count = float(np.mean(per_seed)), len(per_seed)
    if count < 2:
        return Difference(mean)
    if np.ptp(per_seed) == 0:  # the same difference on every seed: no spread to test against
        return Difference(mean, mean, mean, 1.0 if mean == 0 else 0.0)
    error = np.std(per_seed, ddof=1) / np.sqrt(count)
    half = float(stats.t.ppf(0.975, count - 1)) * error
    return Difference(mean, mean - half, mean + half, float(2 * stats.t.sf(abs(mean) / error, count - 1)))


def differences(paired, bootstrap_seed, replicates):
    """For datasets run with the same seeds: ([Δbase, Δnovel, ΔHM], test) for each dataset, then for their
    average. A row is bootstrapped when all its runs have per-image predictions, else t-tested over seeds."""
    per_seed = per_seed_differences(np.stack([dataset.accuracy for dataset in paired], axis=1))
    observed = per_seed.mean(axis=0)
    fallback = T_TEST if per_seed.shape[0] > 1 else NO_TEST
    results = [([t_difference(per_seed[:, row, k]) for k in range(3)], fallback) for row in range(len(paired) + 1)]
    with_images = [row for row, dataset in enumerate(paired) if dataset.agreement is not None]
    if with_images:
        agreement = np.stack([paired[row].agreement for row in with_images], axis=1)
        replicated = per_seed_differences(bootstrap_accuracy(agreement, bootstrap_seed, replicates)).mean(axis=1)
        if len(with_images) == len(paired):
            with_images.append(len(paired))  # the average, too
        for position, row in enumerate(with_images):
            results[row] = ([bootstrap_difference(observed[row, k], replicated[:, position, k]) for k in range(3)],
                            BOOTSTRAP_TEST)
    return results


# The comparison of two methods -------------------------------------------------------------------------------------

@dataclass
class Comparison:
    a: object
    b: object
    rows: list  # (label, seeds, [Δbase, Δnovel, ΔHM], test)
    notes: list
    average_label: str = None
    by_seed_count: list = None  # ΔHM of the average with the first 1, 2, ... seeds; None without an average

    @property
    def label(self):
        return f"{method_spec(self.a)} − {method_spec(self.b)}"


def _average_label(datasets):
    if len(datasets) == 1:
        return datasets[0]
    if set(datasets) == set(BASE2NEW_DATASETS):
        return "11-dataset average"
    return f"average of {', '.join(datasets)}"


def _left_out_seeds(board, methods, seeds):
    return sorted({run.layout.seed for method in methods for dataset in board.datasets(BASE2NEW)
                   for split in SPLITS for run in board.runs(BASE2NEW, method, dataset, split)
                   if run.finished and run.layout.seed not in seeds})


def compare(board, a, b, seeds, bootstrap_seed=0, replicates=DEFAULT_REPLICATES):
    """The Comparison of A with B on every base-to-novel dataset both have results on (with seeds among `seeds`)."""
    datasets = dataset_order(board.datasets(BASE2NEW), BASE2NEW_DATASETS)
    found = {dataset: pair_dataset(board, a, b, dataset, seeds) for dataset in datasets}
    paired = [dataset for dataset in found.values() if dataset is not None]
    if not paired:
        raise ComparisonError(f"{method_spec(a)} and {method_spec(b)} have no base-to-novel dataset in common with "
                              f"seeds among {_seeds_text(seeds)}")
    comparison = Comparison(a, b, [], [])
    by_seeds = defaultdict(list)
    for dataset in paired:
        by_seeds[dataset.seeds].append(dataset)
    results = {group_seeds: differences(group, bootstrap_seed, replicates) for group_seeds, group in by_seeds.items()}
    for group_seeds, group in by_seeds.items():
        comparison.rows += [(dataset.dataset, dataset.seeds, *result)
                            for dataset, result in zip(group, results[group_seeds])]
    comparison.rows.sort(key=lambda row: datasets.index(row[0]))
    if len(by_seeds) > 1:
        comparison.notes.append("No average: the datasets were run with different seeds ("
                                + "; ".join(f"{d.dataset}: {_seeds_text(d.seeds)}" for d in paired) + ").")
    else:
        comparison.average_label = _average_label([dataset.dataset for dataset in paired])
        if len(paired) > 1:  # one dataset's average would repeat its row
            comparison.rows.append((comparison.average_label, paired[0].seeds, *results[paired[0].seeds][-1]))
        comparison.by_seed_count = [
            differences([dataset.first_seeds(count) for dataset in paired], bootstrap_seed, replicates)[-1]
            for count in range(1, len(paired[0].seeds) + 1)]
    one_sided = [dataset for dataset, pair in found.items() if pair is None
                 and any(board.seed_set(BASE2NEW, method, dataset, "base").values for method in (a, b))]
    if one_sided:
        comparison.notes.append(f"Not compared (results of one method only): {', '.join(one_sided)}.")
    left_out = _left_out_seeds(board, (a, b), seeds)
    if left_out:
        comparison.notes.append(f"Seeds {_seeds_text(left_out)} left out (not in --seeds).")
    return comparison


# Tables ------------------------------------------------------------------------------------------------------------

def _slug(method):
    return f"{method.trainer}_{method.config}" if method.config else method.trainer


def comparison_table(comparison, replicates, bootstrap_seed):
    rows = [[label, _seeds_text(seeds), *found, test] for label, seeds, found, test in comparison.rows]
    tests = {row[-1] for row in rows}
    notes = ["Δ = A − B in accuracy points, mean over seeds of the per-seed differences (HM per seed), with its "
             "95% CI and two-sided p; *: the CI excludes 0."]
    if BOOTSTRAP_TEST in tests:
        notes.append(f"{BOOTSTRAP_TEST}: paired hierarchical bootstrap, {replicates} replicates, --bootstrap-seed "
                     f"{bootstrap_seed} (seeds, then test images, resampled alike for both methods).")
    if T_TEST in tests or NO_TEST in tests:
        notes.append(f"{T_TEST}: some runs have no per-image predictions (read from logs, or predictions.npz "
                     "missing or disagreeing with its record), so the CI covers the seed-to-seed variation only.")
    return Table(f"comparison_{_slug(comparison.a)}_vs_{_slug(comparison.b)}",
                 f"Paired comparison: {comparison.label} (base-to-novel)", ["Dataset", "Seeds", *MEASURES, "Test"],
                 rows, notes=notes + comparison.notes)


def seed_count_table(comparisons):
    """How the CI of the average ΔHM narrows with the number of seeds (the first 1, 2, ... of each comparison)."""
    shown = [comparison for comparison in comparisons if comparison.by_seed_count]
    if not shown:
        return None
    header = ["Seeds"]
    for comparison in shown:
        header += [f"{comparison.label}: ΔHM, {comparison.average_label}", "CI width"]
    rows = []
    for count in range(1, max(len(comparison.by_seed_count) for comparison in shown) + 1):
        row = [f"first {count}"]
        for comparison in shown:
            if count > len(comparison.by_seed_count):
                row += ["", ""]
                continue
            (_, _, hm), _ = comparison.by_seed_count[count - 1]
            row += [hm, "" if hm.low is None else f"{hm.high - hm.low:.2f}"]
        rows.append(row)
    return Table("comparison_by_seed_count", "How the 95% CI of ΔHM narrows with the number of seeds", header, rows,
                 notes=["Each row uses the first n seeds of the comparison (in order), with the test of its row "
                        "above."])


def comparison_tables(board, specs, seeds, bootstrap_seed=0, replicates=DEFAULT_REPLICATES):
    """The first method compared with each of the others, then how the CIs narrow with the seeds."""
    if len(specs) < 2:
        raise ComparisonError("--compare needs two methods or more: the first is compared with each of the others")
    methods = [resolve_method(spec, board.methods(BASE2NEW)) for spec in specs]
    if methods[0] in methods[1:]:
        raise ComparisonError(f"--compare: {method_spec(methods[0])} is compared with itself; name other methods")
    comparisons = [compare(board, methods[0], other, seeds, bootstrap_seed, replicates) for other in methods[1:]]
    tables = [comparison_table(comparison, replicates, bootstrap_seed) for comparison in comparisons]
    narrowing = seed_count_table(comparisons)
    return tables + ([narrowing] if narrowing else [])
