"""Published accuracies (published_results.yaml beside this file): the leaderboard's reference rows.

The file stores base and novel accuracies as printed; every HM is computed here from them, never copied.
"""
import os

import numpy as np
import yaml

PUBLISHED_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "published_results.yaml")
# A printed average further than rounding from the mean of the printed per-dataset rows gets a note.
ROUNDING_TOLERANCE = 0.05
# The published tables name zero-shot CLIP and R-MMA otherwise than our trainers; other trainers keep their names.
PUBLISHED_NAMES = {"ZeroshotCLIP": "CLIP", "RMMA": "R-MMA"}


def harmonic_mean(base, novel):
    """HM = 2BN / (B + N), of seed-averaged (or dataset-averaged) base and novel accuracies: numbers or arrays
    (element-wise); 0 where both are 0 (a bootstrap resample can draw only wrong images)."""
    base, novel = np.asarray(base, dtype=float), np.asarray(novel, dtype=float)
    total = base + novel
    hm = np.divide(2 * base * novel, total, out=np.zeros_like(total), where=total > 0)
    return float(hm) if hm.ndim == 0 else hm


def load_published(path=PUBLISHED_FILE):
    with open(path) as file:
        return yaml.safe_load(file)


def published_base2new(published, dataset):
    """[(method, base, novel)] for one dataset, or for "average" (the printed 11-dataset averages)."""
    return [(method, *rows[dataset]) for method, rows in published["base2new"].items() if dataset in rows]


def published_row(published, trainer, dataset):
    """(name, base, novel) of the published base-to-novel row of our trainer on a dataset, or None."""
    name = PUBLISHED_NAMES.get(trainer, trainer)
    row = published["base2new"].get(name, {}).get(dataset)
    return None if row is None else (name, *row)


def published_targets(published, table):
    """{method: {dataset: accuracy}} of the "cross_dataset" or "domain_generalization" table."""
    order = published[f"{table}_order"]
    return {method: dict(zip(order, values)) for method, values in published[table].items()}
