"""Errors caused by the user's input (a config key, a file, a name) rather than by a bug.

Their message says what is wrong and how to fix it in one line; entry points print it and exit 1
instead of showing a traceback.
"""


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
