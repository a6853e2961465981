"""Reading JSON with errors that point at the broken spot, and writing it atomically (temp file + rename)."""
import json
import os
import tempfile

from datasets.errors import DatasetError


def read_json_file(path, fix=""):
    """The parsed content of `path`; a malformed file raises DatasetError with its line and column."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno} (character {error.pos})"
        raise DatasetError(f"{path}: malformed JSON at {where}: {error.msg}{_fix_suffix(fix)}") from None
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path}: not UTF-8 text at byte {error.start}{_fix_suffix(fix)}") from None


def write_json_atomic(obj, path, indent=None):
    """Write `obj` to `path` so readers see the old file or the complete new one, never a partial one."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    descriptor, temp_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(obj, file, indent=indent, separators=(",", ": ") if indent else (",", ":"))
            file.write("\n")
        os.replace(temp_path, path)
    except BaseException:
        if os.path.exists(temp_path):
            os.remove(temp_path)
        raise


def _fix_suffix(fix):
    return f"; fix: {fix}" if fix else ""
