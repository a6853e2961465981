"""Files the harness writes and reads back (records, split files, caches, checkpoints): written atomically
(readers see the old file or the complete new one, never a partial one) with the umask's mode; JSON read with
errors that point at the broken spot."""
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


# A killed write leaves `.<name>.<random>.tmp` beside the file: hidden, and recognisable for clean-up.
TEMPORARY_PREFIX, TEMPORARY_SUFFIX = ".", ".tmp"


def write_file_atomic(path, write, binary=True):
    """Call `write(file)` on a temporary file in the same folder, flush it to disk, then rename it over `path`:
    readers see the old file or the complete new one, never a partial one.

    The file gets the mode the umask gives new files, so shared data and results folders stay readable."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    descriptor, temp_path = tempfile.mkstemp(prefix=f"{TEMPORARY_PREFIX}{os.path.basename(path)}.",
                                             suffix=TEMPORARY_SUFFIX, dir=folder)
    try:
        with os.fdopen(descriptor, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp_path, created_file_mode())
        os.replace(temp_path, path)
    except BaseException:
        if os.path.exists(temp_path):
            os.remove(temp_path)
        raise


def write_json_atomic(obj, path, indent=None):
    """Write `obj` as JSON to `path` atomically (write_file_atomic)."""

    def write(file):
        json.dump(obj, file, indent=indent, separators=(",", ": ") if indent else (",", ":"))
        file.write("\n")

    write_file_atomic(path, write, binary=False)


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
