"""Corpus readers, chosen by ``--source NAME``; importing this package registers them all."""
from advfilter.core.registry import import_modules
from advfilter.sources.base import Item, Record, Story, sources

import_modules(__name__, __path__)

__all__ = ["Item", "Record", "Story", "sources"]
