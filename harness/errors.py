"""Errors caused by the user's input (a config key, a file, a name) rather than by a bug.

Their message says what is wrong and how to fix it in one line; entry points print it and exit 1
instead of showing a traceback.
"""
import sys


class UserError(Exception):
    pass


class ConfigError(UserError):
    pass


class BackboneError(UserError):
    pass


class CheckpointError(UserError):
    pass


class EngineUnavailable(UserError):
    pass


def warn(message):
    """A warning the user should act on: one line on stderr, apart from the log's stdout."""
    print(f"Warning: {message}", file=sys.stderr, flush=True)
