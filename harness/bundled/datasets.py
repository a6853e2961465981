"""Datum, DatasetBase and the dataset registry, with Dassl's semantics.

`generate_fewshot_dataset` reproduces Dassl's draws exactly: the stdlib global RNG, classes visited in
first-appearance order, `random.sample` per class, no RNG call for a class with too few items (all of its items
are kept).
"""
import random
from collections import defaultdict

from .registry import Registry, build_registered
from .tools import check_isfile

DATASET_REGISTRY = Registry("DATASET")


def build_dataset(cfg):
    return build_registered(DATASET_REGISTRY, "dataset", cfg.DATASET.NAME, cfg.VERBOSE, cfg)


class Datum:
    """One image: path, label, domain and class name (read-only)."""

    def __init__(self, impath="", label=0, domain=0, classname=""):
        assert isinstance(impath, str)
        assert check_isfile(impath)
        self._impath = impath
        self._label = label
        self._domain = domain
        self._classname = classname

    @property
    def impath(self):
        return self._impath

    @property
    def label(self):
        return self._label

    @property
    def domain(self):
        return self._domain

    @property
    def classname(self):
        return self._classname


class DatasetBase:
    def __init__(self, train_x=None, val=None, test=None):
        self._train_x = train_x
        self._val = val
        self._test = test
        self._num_classes = self.get_num_classes(train_x)
        self._lab2cname, self._classnames = self.get_lab2cname(train_x)

    @property
    def train_x(self):
        return self._train_x

    @property
    def val(self):
        return self._val

    @property
    def test(self):
        return self._test

    @property
    def lab2cname(self):
        return self._lab2cname

    @property
    def classnames(self):
        return self._classnames

    @property
    def num_classes(self):
        return self._num_classes

    @staticmethod
    def get_num_classes(data_source):
        # Dassl counts max label + 1, not the number of distinct labels.
        return max(item.label for item in data_source) + 1

    @staticmethod
    def get_lab2cname(data_source):
        mapping = dict({(item.label, item.classname) for item in data_source})
        classnames = [mapping[label] for label in sorted(mapping)]
        return mapping, classnames

    def generate_fewshot_dataset(self, *data_sources, num_shots=-1):
        if num_shots < 1:
            return data_sources[0] if len(data_sources) == 1 else data_sources
        print(f"Creating a {num_shots}-shot dataset")
        output = []
        for data_source in data_sources:
            sampled = []
            for items in self.split_dataset_by_label(data_source).values():
                if len(items) >= num_shots:
                    sampled.extend(random.sample(items, num_shots))
                else:
                    sampled.extend(items)
            output.append(sampled)
        return output[0] if len(output) == 1 else output

    @staticmethod
    def split_dataset_by_label(data_source):
        """{label: items} in the order labels first appear (the order Dassl's few-shot draw visits classes)."""
        groups = defaultdict(list)
        for item in data_source:
            groups[item.label].append(item)
        return groups
