"""The one error a user fixes in a file: ``FILE: dotted.key: what is wrong (what is allowed)``."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config problem a user fixes in a file: ``where`` is the file and the dotted key in it."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message
