"""The CoOp-format datasets that are registered, found by config name (`oxford_pets`) or class name."""
from harness.data.coop_dataset import CoOpDataset
from harness.data.errors import DatasetError
from harness.engine import DATASET_REGISTRY
from harness.registration import import_submodules


def coop_datasets():
    """{config name: dataset class}, sorted by config name."""
    import_submodules("datasets")
    found = {}
    for name in DATASET_REGISTRY.registered_names():
        cls = DATASET_REGISTRY.get(name)
        if isinstance(cls, type) and issubclass(cls, CoOpDataset):
            found[cls.config_name] = cls
    return dict(sorted(found.items()))


def find_dataset(name):
    datasets = coop_datasets()
    for config_name, cls in datasets.items():
        if name.lower() in (config_name, cls.__name__.lower()):
            return cls
    raise DatasetError(f"unknown dataset {name!r}; choose one of: {', '.join(datasets)}")
