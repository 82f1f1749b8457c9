"""The generator interface and registry.

A generator is fitted on the contexts of the other folds (``fit``), saved to and loaded from
a folder in the run directory, then asked to ``sample`` endings for contexts of its own fold
and to ``score`` endings (log-probabilities, the LM features of the MLP discriminator).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from advfilter.core.registry import Registry


@dataclass(frozen=True)
class Context:
    """One context: ``ctx_a`` (previous sentence), ``ctx_b`` (subject), gold ``ending``, the
    ``video`` it comes from, and ``ctx_a_ending``: the verb phrase of ``ctx_a`` where that
    sentence is no context's gold (else "")."""

    ctx_a: str
    ctx_b: str
    ending: str = ""
    video: str = ""
    ctx_a_ending: str = ""


class Generator(ABC):
    """A language model that writes and scores endings. ``cfg`` is the whole GenerateConfig."""

    def __init__(self, cfg: Any, name_or_path: str = "") -> None:
        self.cfg = cfg
        self.name_or_path = name_or_path

    @abstractmethod
    def fit(self, train: Sequence[Context], valid: Sequence[Context], seed: int) -> dict[str, Any]:
        """Train (or adapt) on the other folds' contexts; returns training figures for the log."""

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write everything ``load`` needs into ``directory``."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path, cfg: Any, name_or_path: str = "") -> "Generator":
        """The generator saved in ``directory``."""

    @abstractmethod
    def sample(self, contexts: Sequence[Context], n: int, seed: int) -> list[list[str]]:
        """``n`` raw endings per context (may repeat; filtering is the caller's job)."""

    def index_fold(self, contexts: Sequence[Context]) -> None:
        """Called after ``fit`` with the fold's own contexts. A generator that reuses real
        endings draws them from these (never from the videos of other folds' items), so a
        split made of whole folds never shows a model its training golds as negatives.
        Language models ignore it."""

    def origin(self, ending: str) -> str:
        """Which generator wrote ``ending`` (the candidates' ``generator`` column)."""
        return self.cfg.generator

    @abstractmethod
    def score(
        self, contexts: Sequence[Context | None], endings: Sequence[Sequence[str]]
    ) -> list[np.ndarray]:
        """Per context, an array ``(len(endings[i]), 2)`` of [sum log-prob, ending tokens].

        A ``None`` context scores the endings unconditionally (as a sentence on its own).
        The sum includes the end-of-sentence event where the model has one.
        """


generators: Registry[type[Generator]] = Registry("generator")


def resolve(name: str) -> tuple[type[Generator], str]:
    """Registry class and model name for ``lstm``, ``random``, ``retrieval``, ``phi2``,
    ``hf:NAME_OR_PATH``, or a comma-separated mixture of them (``lstm,retrieval``)."""
    if "," in name:
        for part in name.split(","):
            resolve(part.strip())  # an unknown part fails here
        return generators.get("mixture"), name
    if name == "phi2":
        return generators.get("hf"), "microsoft/phi-2"
    kind, _, model = name.partition(":")
    return generators.get(kind), model
