"""What dataset code raises and warns: one-line, actionable messages (train.py prints them and exits)."""
from harness.errors import UserError


class DatasetError(UserError, ValueError):
    """A dataset cannot be loaded as asked; the message names the file or folder and the fix."""

    def __init__(self, message=""):
        super().__init__(_without_worker_traceback(str(message), type(self)))


class FewShotWarning(UserWarning):
    """More shots were requested than a class has: Dassl then takes all of the class's images."""


def _without_worker_traceback(message, error_type):
    """The error's own message, where a DataLoader worker raised it.

    torch re-raises a worker's error in the main process as `error_type("Caught <name> in DataLoader worker
    process N.\\nOriginal Traceback ...\\n<module>.<name>: <message>")`; the user needs only the last part.
    """
    if not message.startswith(f"Caught {error_type.__name__} in DataLoader worker"):
        return message
    original = message.rpartition(f"{error_type.__module__}.{error_type.__qualname__}: ")[2].strip()
    return original or message
