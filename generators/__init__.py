"""Candidate-ending generators, chosen by name; importing this package registers them all."""
from generators import hf, lstm, mixture, random_endings, retrieval  # noqa: F401  (registration)
from generators.base import Context, Generator, generators, resolve

__all__ = ["Context", "Generator", "generators", "resolve"]
