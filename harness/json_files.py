"""JSON files the harness writes and reads back: written atomically (readers see the old file or the complete
new one, never a partial one), read with errors that point at the broken spot."""
import json
import os
import tempfile

from harness.errors import UserError


def current_umask():
    umask = os.umask(0)  # reading the umask means setting it; it is put back at once
    os.umask(umask)
    return umask


def created_file_mode():
    """The mode a plain `open(path, "w")` gives a new file under the umask (mkstemp's files are 0600)."""
    return 0o666 & ~current_umask()


def created_folder_mode():
    """The mode `os.makedirs` gives a new folder under the umask (mkdtemp's folders are 0700)."""
    return 0o777 & ~current_umask()


def write_json_atomic(obj, path, indent=None):
    """Write to a temporary file in the same folder, flush it to disk, then rename it over `path`.

    The file gets the mode the umask gives new files, so shared data and results folders stay readable."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    descriptor, temp_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(obj, file, indent=indent, separators=(",", ": ") if indent else (",", ":"))
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp_path, created_file_mode())
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
