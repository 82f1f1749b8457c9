"""Candidate-ending generators, chosen by name; importing this package registers them all."""
from generators import hf, lstm, mixture, random_endings, retrieval  # noqa: F401  (registration)
from generators.base import (
    Context, Generator, check_sections, generator_settings, generators, parts, resolve,
)

__all__ = ["Context", "Generator", "check_sections", "generator_settings", "generators", "parts", "resolve"]
