"""Name -> class registries, with Dassl's registration and lookup errors."""
from difflib import SequenceMatcher


class Registry:
    def __init__(self, name):
        self._name = name
        self._obj_map = {}

    def _do_register(self, name, obj):
        if name in self._obj_map:
            raise KeyError(f'An object named "{name}" was already registered in "{self._name}" registry')
        self._obj_map[name] = obj

    def register(self):
        """A decorator registering a class under its `__name__` (Dassl's `@REGISTRY.register()`)."""
        def decorator(cls_or_fn):
            self._do_register(cls_or_fn.__name__, cls_or_fn)
            return cls_or_fn

        return decorator

    def get(self, name):
        if name not in self._obj_map:
            raise KeyError(f'Object name "{name}" does not exist in "{self._name}" registry')
        return self._obj_map[name]

    def registered_names(self):
        return list(self._obj_map)


def most_similar(probe, candidates):
    """The candidate closest to `probe` (ties go to the later candidate, as in Dassl)."""
    best_score, best = 0, None
    for candidate in candidates:
        score = SequenceMatcher(None, probe, candidate).ratio()
        if score >= best_score:
            best_score, best = score, candidate
    return best


def build_registered(registry, kind, name, verbose, *args, **kwargs):
    """Dassl's build_trainer / build_dataset / build_evaluator: check the name, say it, instantiate."""
    check_availability(name, registry.registered_names())
    if verbose:
        print(f"Loading {kind}: {name}")
    return registry.get(name)(*args, **kwargs)


def check_availability(requested, available):
    if requested not in available:
        raise ValueError(
            f"The requested one is expected to belong to {available}, but got [{requested}] "
            f"(do you mean [{most_similar(requested, available)}]?)"
        )
