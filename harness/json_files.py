"""JSON files the harness writes and reads back: written atomically (readers see the old file or the complete
new one, never a partial one), read with errors that point at the broken spot."""
import json
import os
import tempfile

from harness.errors import UserError


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


def read_json_file(path, fix="", error_type=UserError):
    """The parsed content of `path`; a malformed file raises `error_type` with its line and column."""
    suffix = f"; fix: {fix}" if fix else ""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno} (character {error.pos})"
        raise error_type(f"{path}: malformed JSON at {where}: {error.msg}{suffix}") from None
    except UnicodeDecodeError as error:
        raise error_type(f"{path}: not UTF-8 text at byte {error.start}{suffix}") from None
