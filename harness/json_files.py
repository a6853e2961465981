"""Writing JSON atomically: readers see the old file or the complete new one, never a partial one."""
import json
import os
import tempfile


def write_json_atomic(obj, path, indent=None):
    """Write to a temporary file in the same folder, flush it to disk, then rename it over `path`."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    descriptor, temp_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(obj, file, indent=indent, separators=(",", ": ") if indent else (",", ":"))
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_path, path)
    except BaseException:
        if os.path.exists(temp_path):
            os.remove(temp_path)
        raise
