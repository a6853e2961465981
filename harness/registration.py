"""Import every module of `trainers/` and `datasets/` so their registry decorators run.

A new trainer or dataset is one new file: nothing else needs an edit to make it available.
"""
import importlib
import pkgutil

PLUGIN_PACKAGES = ("trainers", "datasets")


def import_submodules(package_name):
    package = importlib.import_module(package_name)
    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        importlib.import_module(f"{package_name}.{module.name}")


def register_all():
    for package_name in PLUGIN_PACKAGES:
        import_submodules(package_name)
