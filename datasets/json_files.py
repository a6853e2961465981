"""Reading JSON with errors that point at the broken spot."""
import json

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


def _fix_suffix(fix):
    return f"; fix: {fix}" if fix else ""
