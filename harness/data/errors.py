"""What dataset code raises and warns: one-line, actionable messages (train.py prints them and exits)."""
from harness.errors import UserError


class DatasetError(UserError, ValueError):
    """A dataset cannot be loaded as asked; the message names the file or folder and the fix."""


class FewShotWarning(UserWarning):
    """More shots were requested than a class has: Dassl then takes all of the class's images."""
