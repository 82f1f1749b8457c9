"""The typed errors advfilter raises; the CLI turns each into one stderr line and exit code 2."""
from __future__ import annotations

from pathlib import Path


class AdvfilterError(Exception):
    """Base class: a problem the user can fix (bad input, bad config, a conflicting run)."""


class InputError(AdvfilterError):
    """A corpus file is unreadable or a record in it is malformed.

    Args:
        path: the input file.
        record: where in the file (``"line 12"``, ``"video v_abc"``, ``"header"``), or ``None``.
        message: what is wrong, in words.
    """

    def __init__(self, path: str | Path, record: str | None, message: str) -> None:
        self.path, self.record, self.message = str(path), record, message
        where = f"{self.path}: {record}" if record else self.path
        super().__init__(f"{where}: {message}")


class ConfigError(AdvfilterError):
    """A config file or override is invalid (unknown key, wrong type, unknown component name)."""


class RunError(AdvfilterError):
    """The run directory cannot be used as asked (other config, missing stage output)."""
