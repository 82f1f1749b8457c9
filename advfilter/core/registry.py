"""One generic name → component registry, instantiated once per component kind.

Usage::

    sources = Registry("source")

    @sources.register("activitynet")
    def read_activitynet(path): ...

    reader = sources.get("activitynet")      # KeyError-style ConfigError lists valid names
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, Generic, Iterable, TypeVar

from advfilter.core.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to components of one kind (sources, generators, discriminators)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that files the decorated object under ``name``."""

        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        """The component called ``name``; an unknown name raises ConfigError listing valid ones."""
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def name_of(self, obj: T) -> str:
        """The name ``obj`` is registered under (the first, for a class filed once)."""
        return next(name for name, item in self._items.items() if item is obj)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)


def import_modules(package: str, path: Iterable[str]) -> None:
    """Import every module of ``package`` (its ``__name__`` and ``__path__``), so that each
    one's ``@registry.register`` lines run: adding a component is adding its module."""
    for module in pkgutil.iter_modules(path):
        importlib.import_module(f"{package}.{module.name}")
