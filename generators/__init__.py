"""Candidate-ending generators, chosen by name; importing this package registers them all."""
from advfilter.core.registry import import_modules
from generators.base import (
    Context, Generator, check_sections, generator_settings, generators, parts, resolve,
)

import_modules(__name__, __path__)

__all__ = ["Context", "Generator", "check_sections", "generator_settings", "generators", "parts", "resolve"]
