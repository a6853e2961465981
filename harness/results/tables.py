"""The leaderboard's tables, built from collected runs and the published rows.

Aggregation rules (the papers' and CoOp's):
- a cell is the mean over seeds of one (method, config, dataset, split), with np.std (ddof 0) or, with ci95,
  1.96 * std / sqrt(n);
- HM = 2BN / (B + N) of the seed-averaged base B and novel N, never a mean of per-seed HMs; its spread is that of
  the per-seed HMs;
- the 11-dataset average row is the HM of the averaged base and the averaged novel, not a mean of HMs;
- cross-dataset and domain-generalization averages are over the targets only (10 datasets, 4 ImageNet variants),
  not the ImageNet source.
A value computed from a missing, unfinished or config-mismatched seed set, or from fewer datasets than the
table's, is marked incomplete and its row says why: nothing is averaged silently.
"""
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from harness.protocols import (
    BASE2NEW,
    BASE2NEW_DATASETS,
    CROSS_DATASET,
    CROSS_DATASET_SOURCE,
    CROSS_DATASET_TARGETS,
    DOMAIN_GENERALIZATION,
    DOMAIN_GENERALIZATION_TARGETS,
    FEW_SHOT,
    SOURCE_DATASET,
)
from harness.results.published import (
    ROUNDING_TOLERANCE,
    harmonic_mean,
    published_base2new,
    published_row,
    published_targets,
)

OURS, PUBLISHED = "ours", "published"


@dataclass(frozen=True)
class Cell:
    """A number in a table: a mean, its spread over seeds (ours only), and whether it is complete."""
    mean: float = None
    spread: float = None
    incomplete: bool = False


@dataclass
class Table:
    name: str  # file stem of its CSV
    title: str
    header: list
    rows: list  # lists of str or Cell, one per header column
    show_spread: bool = True  # wide tables show means only (their CSV keeps the spread)
    notes: list = field(default_factory=list)


@dataclass(frozen=True)
class Method:
    trainer: str
    config: str
    shots: int

    @property
    def config_label(self):
        return self.config if self.shots == 16 else f"{self.config} ({self.shots} shots)"


class SeedSet:
    """The seed runs of one (method, dataset, split)."""

    def __init__(self, runs, expected_seeds, ci95):
        seeds = [run.layout.seed for run in runs]
        # e.g. a base2new train_base and a test_base folder of one seed
        self.duplicated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
        self.values = {run.layout.seed: run.accuracy for run in runs if run.finished}
        self.unfinished = sorted(run.layout.seed for run in runs if not run.finished)
        self.missing = sorted(set(expected_seeds) - {run.layout.seed for run in runs})
        self.config_hashes = {run.config_hash for run in runs if run.config_hash}
        self.ci95 = ci95

    @property
    def complete(self):
        return (bool(self.values) and not self.missing and not self.unfinished and not self.duplicated
                and len(self.config_hashes) <= 1)

    @property
    def mean(self):
        return float(np.mean(list(self.values.values()))) if self.values else None

    def cell(self):
        if not self.values:
            return Cell(incomplete=True)
        return Cell(self.mean, _spread(list(self.values.values()), self.ci95), not self.complete)

    def problems(self, label):
        found = []
        if self.missing:
            found.append(f"{label}: {_seeds(self.missing)} missing")
        if self.unfinished:
            found.append(f"{label}: {_seeds(self.unfinished)} unfinished")
        if self.duplicated:
            found.append(f"{label}: several runs of {_seeds(self.duplicated)}")
        if len(self.config_hashes) > 1:
            found.append(f"{label}: configs differ across seeds")
        return found

    def seeds_label(self):
        return ",".join(str(seed) for seed in sorted(self.values)) or "none"


def _spread(values, ci95):
    spread = float(np.std(values))
    return 1.96 * spread / np.sqrt(len(values)) if ci95 else spread


def _seeds(seeds):
    return ", ".join(f"seed{seed}" for seed in seeds)


def dataset_order(datasets, known):
    return sorted(datasets, key=lambda name: (known.index(name) if name in known else len(known), name))


def _mean_cell(cells, expected_count):
    """Mean of cells' means; incomplete when any is, or when fewer than expected have a value."""
    means = [cell.mean for cell in cells if cell.mean is not None]
    if not means:
        return Cell(incomplete=True)
    incomplete = len(means) < expected_count or any(cell.incomplete for cell in cells)
    return Cell(float(np.mean(means)), None, incomplete)


def _hm_cell(base, novel):
    if base.mean is None or novel.mean is None:
        return Cell(incomplete=True)
    return Cell(harmonic_mean(base.mean, novel.mean), None, base.incomplete or novel.incomplete)


def _seed_hm_cell(base, novel):
    """HM of the seed means of two SeedSets, with the spread of the HMs of the seeds that have both."""
    cell = _hm_cell(base.cell(), novel.cell())
    seeds = sorted(base.values.keys() & novel.values.keys())
    if not seeds:
        return cell
    hms = [harmonic_mean(base.values[seed], novel.values[seed]) for seed in seeds]
    return Cell(cell.mean, _spread(hms, base.ci95), cell.incomplete)


def _average_cells(bases, novels, ci95):
    """Base, novel and HM cells of the average over datasets of SeedSets: the mean of their seed means, ± the
    spread of the per-seed averages over the seeds every dataset has (HM: of the per-seed averages' HMs)."""
    def averaged(seed_sets):
        cell = _mean_cell([seed_set.cell() for seed_set in seed_sets], len(seed_sets))
        seeds = set.intersection(*(set(seed_set.values) for seed_set in seed_sets))
        per_seed = {seed: float(np.mean([seed_set.values[seed] for seed_set in seed_sets])) for seed in seeds}
        spread = _spread(list(per_seed.values()), ci95) if per_seed else None
        return Cell(cell.mean, spread, cell.incomplete), per_seed

    (base, base_seeds), (novel, novel_seeds) = averaged(bases), averaged(novels)
    seeds = sorted(base_seeds.keys() & novel_seeds.keys())
    hm = _hm_cell(base, novel)
    hms = [harmonic_mean(base_seeds[seed], novel_seeds[seed]) for seed in seeds]
    return [base, novel, Cell(hm.mean, _spread(hms, ci95) if hms else None, hm.incomplete)]


def _within(published, cell):
    """Whether a published value lies within our mean ± spread (rounding aside)."""
    if cell.spread is None:
        return "unknown (no seed in every dataset)"
    return "within" if abs(published - cell.mean) <= cell.spread + 1e-9 else "outside"


class Leaderboard:
    """Groups collected runs by (protocol, method, dataset, split) and builds the tables."""

    def __init__(self, runs, published=None, expected_seeds=(1, 2, 3), ci95=False):
        self.published = published
        self.expected_seeds = tuple(expected_seeds)
        self.ci95 = ci95
        self.groups = defaultdict(list)
        for run in runs:
            layout = run.layout
            method = Method(layout.trainer, layout.config, layout.shots)
            self.groups[(layout.protocol, method, layout.dataset, layout.split)].append(run)

    def runs(self, protocol, method, dataset, split):
        return self.groups.get((protocol, method, dataset, split), [])

    def seed_set(self, protocol, method, dataset, split):
        return SeedSet(self.runs(protocol, method, dataset, split), self.expected_seeds, self.ci95)

    def methods(self, protocol):
        return sorted({key[1] for key in self.groups if key[0] == protocol},
                      key=lambda m: (m.trainer, m.config, m.shots))

    def datasets(self, protocol):
        return {key[2] for key in self.groups if key[0] == protocol}

    @property
    def spread_label(self):
        return "95% CI (1.96 std / sqrt(n))" if self.ci95 else "std over seeds (np.std, ddof 0)"

    def tables(self):
        tables = []
        if self.datasets(BASE2NEW):
            tables.append(self.base2new_table())
            if self.datasets(BASE2NEW) & set(BASE2NEW_DATASETS):
                tables.append(self.base2new_average_table())
        if self.datasets(CROSS_DATASET):
            tables.append(self.targets_table(CROSS_DATASET, CROSS_DATASET_TARGETS,
                                             "Cross-dataset (trained on ImageNet, 16 shots)"))
        if self.datasets(DOMAIN_GENERALIZATION):
            tables.append(self.targets_table(DOMAIN_GENERALIZATION, DOMAIN_GENERALIZATION_TARGETS,
                                             "Domain generalization (trained on ImageNet, 16 shots)"))
        if self.datasets(FEW_SHOT):
            tables.append(self.few_shot_table())
        return tables

    # Base-to-novel ---------------------------------------------------------------------------------------------

    def base2new_cells(self, method, dataset):
        base = self.seed_set(BASE2NEW, method, dataset, "base")
        novel = self.seed_set(BASE2NEW, method, dataset, "new")
        return base, novel

    def base2new_table(self):
        header = ["Dataset", "Method", "Config", "Source", "Base", "Novel", "HM", "Seeds (base/novel)", "Notes"]
        rows = []
        datasets = dataset_order(self.datasets(BASE2NEW), BASE2NEW_DATASETS)
        for dataset in datasets:
            for method in self.methods(BASE2NEW):
                base, novel = self.base2new_cells(method, dataset)
                if not (base.values or base.unfinished or novel.values or novel.unfinished):
                    continue
                rows.append([dataset, method.trainer, method.config_label, OURS, base.cell(), novel.cell(),
                             _seed_hm_cell(base, novel), f"{base.seeds_label()} / {novel.seeds_label()}",
                             "; ".join(base.problems("base") + novel.problems("novel"))])
            if self.published:
                for name, base_mean, novel_mean in published_base2new(self.published, dataset):
                    rows.append([dataset, name, "", PUBLISHED, Cell(base_mean), Cell(novel_mean),
                                 Cell(harmonic_mean(base_mean, novel_mean)), "", ""])
        return Table("base2new", "Base-to-novel generalization (16 shots, per dataset)", header, rows,
                     notes=[f"Base and Novel: mean over seeds ± {self.spread_label}; HM = 2BN/(B+N) of the means, "
                            "± the same spread of the per-seed HMs."])

    def reproduction_table(self):
        """Each of our per-dataset base-to-novel rows, and the 11-dataset average of a method that has them all,
        beside the published row of its method: ours − published, and whether the published value lies within our
        mean ± spread over seeds."""
        header = ["Dataset", "Method", "Config", "Published as", "Base", "Base published", "Δbase", "Novel",
                  "Novel published", "Δnovel", "HM", "HM published", "ΔHM", "Published within our mean ± spread"]
        rows, unpublished, no_average = [], [], []

        def add_row(dataset, method, ours):
            published = published_row(self.published, method.trainer, dataset)
            if published is None:
                unpublished.append(f"{method.trainer} on {dataset}")
                return
            name, *theirs = published
            theirs.append(harmonic_mean(*theirs))
            row = [dataset, method.trainer, method.config_label, name]
            for our, their in zip(ours, theirs):
                row += [our, Cell(their), Cell(our.mean - their, None, our.incomplete)]
            checks = [f"{label} {_within(their, our)}" for label, our, their in zip(("base", "novel", "HM"),
                                                                                    ours, theirs)]
            rows.append([*row, ", ".join(checks)])

        for dataset in dataset_order(self.datasets(BASE2NEW), BASE2NEW_DATASETS):
            for method in self.methods(BASE2NEW):
                base, novel = self.base2new_cells(method, dataset)
                if base.mean is not None and novel.mean is not None:
                    add_row(dataset, method, [base.cell(), novel.cell(), _seed_hm_cell(base, novel)])
        for method in self.methods(BASE2NEW):
            present = [cells for cells in (self.base2new_cells(method, dataset) for dataset in BASE2NEW_DATASETS)
                       if cells[0].mean is not None and cells[1].mean is not None]
            if len(present) == len(BASE2NEW_DATASETS):
                add_row("average", method, _average_cells(*zip(*present), self.ci95))
            elif present:
                no_average.append(f"{method.trainer} ({len(present)} of {len(BASE2NEW_DATASETS)} datasets)")
        notes = [f"Ours: mean over seeds ± {self.spread_label} (HM: of the per-seed HMs); Δ = ours − published.",
                 "average: the mean over the 11 datasets of our seed means, ± the spread of the per-seed averages "
                 "(over the seeds every dataset has); HM of the two averages."]
        if unpublished:
            notes.append(f"No published row for {', '.join(unpublished)}.")
        if no_average:
            notes.append(f"No average row for {', '.join(no_average)}: it needs all 11 datasets.")
        return Table("reproduction", "Reproduction check: our base-to-novel rows beside the published ones", header,
                     rows, notes=notes)

    def base2new_average_table(self):
        expected = len(BASE2NEW_DATASETS)
        header = ["Method", "Config", "Source", "Base", "Novel", "HM", "Datasets", "Notes"]
        rows = []
        for method in self.methods(BASE2NEW):
            base_cells, novel_cells, problems, present = [], [], [], []
            for dataset in BASE2NEW_DATASETS:
                base, novel = self.base2new_cells(method, dataset)
                if base.mean is None or novel.mean is None:
                    continue
                present.append(dataset)
                base_cells.append(base.cell())
                novel_cells.append(novel.cell())
                if not (base.complete and novel.complete):
                    problems.append(f"{dataset} incomplete")
            if not present:
                continue
            missing = [dataset for dataset in BASE2NEW_DATASETS if dataset not in present]
            if missing:
                problems.insert(0, f"no base and novel result for {', '.join(missing)}")
            base_cell, novel_cell = _mean_cell(base_cells, expected), _mean_cell(novel_cells, expected)
            rows.append([method.trainer, method.config_label, OURS, base_cell, novel_cell,
                         _hm_cell(base_cell, novel_cell), f"{len(present)}/{expected}", "; ".join(problems)])
        if self.published:
            for name, base_mean, novel_mean in published_base2new(self.published, "average"):
                rows.append([name, "", PUBLISHED, Cell(base_mean), Cell(novel_mean),
                             Cell(harmonic_mean(base_mean, novel_mean)), "", self._printed_average_note(name)])
        return Table("base2new_average", "Base-to-novel, average over the 11 datasets", header, rows,
                     notes=["Base and Novel: mean of the per-dataset seed means; HM of those two averages."])

    def _printed_average_note(self, name):
        rows = self.published["base2new"][name]
        if not all(dataset in rows for dataset in BASE2NEW_DATASETS):
            return "printed average only"
        notes = []
        for index, label in ((0, "base"), (1, "novel")):
            mean = np.mean([rows[dataset][index] for dataset in BASE2NEW_DATASETS])
            if abs(mean - rows["average"][index]) > ROUNDING_TOLERANCE:
                notes.append(f"printed {label} average {rows['average'][index]:.2f}, mean of its printed rows "
                             f"{mean:.2f}")
        return "; ".join(notes)

    # Cross-dataset and domain generalization -------------------------------------------------------------------

    def targets_table(self, protocol, targets, title):
        header = ["Method", "Config", "Source", SOURCE_DATASET, *targets, "Average", "Notes"]
        rows = []
        for method in self.methods(protocol):
            source = self.seed_set(CROSS_DATASET_SOURCE, method, SOURCE_DATASET, "all")
            seed_sets = [self.seed_set(protocol, method, target, "all") for target in targets]
            cells = [seed_set.cell() for seed_set in seed_sets]
            problems = source.problems(SOURCE_DATASET)
            not_run = [target for target, seed_set in zip(targets, seed_sets) if not seed_set.values
                       and not seed_set.unfinished]
            if not_run:
                problems.append(f"not run: {', '.join(not_run)}")
            for target, seed_set in zip(targets, seed_sets):
                if target not in not_run:
                    problems += seed_set.problems(target)
            rows.append([method.trainer, method.config_label, OURS, source.cell(), *cells,
                         _mean_cell(cells, len(targets)), "; ".join(problems)])
        if self.published:
            printed_averages = self.published.get(f"{protocol}_average_of_targets", {})
            for name, values in published_targets(self.published, protocol).items():
                average = float(np.mean([values[target] for target in targets]))
                note = ""
                if name in printed_averages and abs(printed_averages[name] - average) > ROUNDING_TOLERANCE:
                    note = f"printed average {printed_averages[name]:.2f}"
                rows.append([name, "", PUBLISHED, Cell(values[SOURCE_DATASET]),
                             *[Cell(values[target]) for target in targets], Cell(average), note])
            for name, average in printed_averages.items():
                if name not in self.published[protocol]:
                    rows.append([name, "", PUBLISHED, Cell(), *[Cell() for _ in targets], Cell(average),
                                 "printed average only"])
        return Table(protocol, title, header, rows, show_spread=False,
                     notes=[f"Mean over seeds (spread in the CSV); Average: mean over the {len(targets)} targets, "
                            f"without the {SOURCE_DATASET} source."])

    # Few-shot --------------------------------------------------------------------------------------------------

    def few_shot_table(self):
        shots = sorted({method.shots for method in self.methods(FEW_SHOT)})
        header = ["Dataset", "Method", "Config", *[f"{k} shots" for k in shots], "Notes"]
        rows = []
        by_config = sorted({(m.trainer, m.config) for m in self.methods(FEW_SHOT)})
        for dataset in dataset_order(self.datasets(FEW_SHOT), BASE2NEW_DATASETS):
            for trainer, config in by_config:
                seed_sets = [self.seed_set(FEW_SHOT, Method(trainer, config, k), dataset, "all") for k in shots]
                if not any(s.values or s.unfinished for s in seed_sets):
                    continue
                problems = [p for k, s in zip(shots, seed_sets) if s.values or s.unfinished
                            for p in s.problems(f"{k} shots")]
                rows.append([dataset, trainer, config, *[s.cell() for s in seed_sets], "; ".join(problems)])
        return Table(FEW_SHOT, "Few-shot classification (all classes)", header, rows,
                     notes=[f"Mean over seeds ± {self.spread_label}."])
