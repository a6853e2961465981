"""What a process keeps from one run for the next: frozen values under keys that say exactly what they are.

Only a warm worker (harness/sweep/worker.py) runs several runs in one process; it turns the caches on. Off, as in
a `python train.py` process, `get` just makes the value. A cached value is never handed out to be modified: the
caller copies what it will change (the backbone), or only reads it (the frozen text prefix).
"""
import copy
import os
from collections import OrderedDict

_enabled = False


def enable(on=True):
    global _enabled
    _enabled = on


def file_identity(path):
    """The file at `path` as it is now, or None when there is none: a file replaced or rewritten, even with its
    size and mtime kept (cp -p, rsync -a), gets another inode or change time, which no tool sets back."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (os.path.realpath(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


class KeyedCache:
    """The `capacity` most recently used values, by key."""

    def __init__(self, capacity):
        self.capacity = capacity
        self._values = OrderedDict()

    def get(self, key, make):
        if not _enabled:
            return make()
        if key in self._values:
            self._values.move_to_end(key)
            return self._values[key]
        value = make()
        self._values[key] = value
        while len(self._values) > self.capacity:
            self._values.popitem(last=False)
        return value

    def copy_of(self, key, make):
        """A deep copy of the cached value (the value itself when caching is off: nobody else holds it)."""
        value = self.get(key, make)
        return copy.deepcopy(value) if _enabled else value
