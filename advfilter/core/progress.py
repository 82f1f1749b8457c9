"""Progress of long work on stderr: a tqdm bar on a terminal, plain lines elsewhere.

``progress(...)`` takes tqdm's arguments. When stderr is a terminal it is a tqdm bar (counts,
rate, ETA); when it is not (CI, a log file, ``nohup``) it is a ``PlainProgress`` that writes
one line per step (``desc: 3/10 (30%) 12.0 s, ETA 28.0 s``), at most one every
``ADVFILTER_PROGRESS_SECONDS`` (default 10) apart plus the last, so a log shows that a long
job is alive and how far it is without the carriage-return noise of a bar.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterable, Iterator, TypeVar

from tqdm import tqdm

T = TypeVar("T")


class PlainProgress:
    """The subset of tqdm's interface advfilter uses, written as plain lines."""

    def __init__(self, iterable: Iterable[Any] | None = None, total: float | None = None,
                 desc: str = "", unit: str = "it", every: float | None = None, leave: bool = True,
                 **_: Any) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.desc, self.unit, self.n = total, desc, unit, 0
        self.every = float(os.environ.get("ADVFILTER_PROGRESS_SECONDS", 10)) if every is None else every
        self.postfix, self.leave = "", leave
        self.start = self.last = time.monotonic()
        self.closed = False

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable or ():
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None:  # the error says what happened; no last progress line
            self.closed = True
        self.close()

    def line(self) -> str:
        """``desc: n/total unit (pct) elapsed, ETA`` (no total: ``desc: n unit elapsed``)."""
        elapsed = time.monotonic() - self.start
        count = f"{self.n:g}/{self.total:g} {self.unit}" if self.total else f"{self.n:g} {self.unit}"
        text = f"{self.desc}: {count}"
        if self.total:
            text += f" ({self.n / self.total:.0%})"
        text += f" {elapsed:.1f} s"
        if self.total and 0 < self.n < self.total:
            text += f", ETA {elapsed / self.n * (self.total - self.n):.1f} s"
        return text + (f" [{self.postfix}]" if self.postfix else "")

    def _emit(self) -> None:
        print(self.line(), file=sys.stderr, flush=True)
        self.last = time.monotonic()

    def update(self, n: float = 1) -> None:
        self.n += n
        done = self.total is not None and self.n >= self.total
        if not done and time.monotonic() - self.last >= self.every:
            self._emit()

    def write(self, text: str) -> None:
        """A message of its own on stdout (as ``tqdm.write``)."""
        print(text, flush=True)

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text

    def close(self) -> None:
        """The last line (unless ``leave=False``: a bar inside a step that prints its own)."""
        if not self.closed:
            self.closed = True
            if self.leave:
                self._emit()


def is_terminal() -> bool:
    return sys.stderr.isatty()


def progress(iterable: Iterable[T] | None = None, **kwargs: Any) -> Any:
    """A progress bar over ``iterable`` (or updated by hand): tqdm on a terminal, plain lines
    otherwise. Takes tqdm's keyword arguments (``total``, ``desc``, ``unit``, ``leave``) and
    ``every``: seconds between plain lines (0: a line per step)."""
    if is_terminal():
        kwargs.pop("every", None)
        return tqdm(iterable, **kwargs)
    return PlainProgress(iterable, **kwargs)
