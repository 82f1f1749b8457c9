"""Corpus readers, chosen by ``--source NAME``; importing this package registers them all."""
from advfilter.sources import activitynet, hellaswag, jsonl, lsmdc, swag, wikihow  # noqa: F401  (registration)
from advfilter.sources.base import Item, Record, Story, sources

__all__ = ["Item", "Record", "Story", "sources"]
