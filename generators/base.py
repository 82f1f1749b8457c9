"""The generator interface and registry.

A generator is fitted on the contexts of the other folds (``fit``), saved to and loaded from
a folder in the run directory, then asked to ``sample`` endings for contexts of its own fold
and to ``score`` endings (log-probabilities, the LM features of the MLP discriminator). Each
one declares its own settings (``Config``, a pydantic model), read from the config section
named after it (``generate.lstm``, ``generate.retrieval``, ...); adding one is a module with a
``@generators.register`` line, and its test.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Sequence

import numpy as np
from pydantic import BaseModel, ValidationError

from advfilter.core.errors import ConfigError
from advfilter.core.registry import Registry
from advfilter.core.settings import GenerateConfig, Strict


@dataclass(frozen=True)
class Context:
    """One context: ``ctx_a`` (previous sentence), ``ctx_b`` (subject), gold ``ending``, the
    ``video`` it comes from, ``ctx_a_ending``: the verb phrase of ``ctx_a`` where that
    sentence is no context's gold (else ""), and its ``split`` (train / validation / test)."""

    ctx_a: str
    ctx_b: str
    ending: str = ""
    video: str = ""
    ctx_a_ending: str = ""
    split: str = ""


class Sample(NamedTuple):
    """A sampled ``ending``, its ``writer`` (the candidates' ``generator`` column: a spec, or a
    mixture's part) and its ``origin``: the real ending it was made from (a retrieved or
    rewritten ending: another context's gold or a first sentence), "" for one written anew."""

    ending: str
    writer: str
    origin: str = ""


class NoSettings(Strict):
    """The section of a generator that has no settings of its own."""


class Generator(ABC):
    """A language model that writes and scores endings.

    ``cfg`` holds the settings all generators share (``generate``: sampling, mixture shares);
    ``settings`` this generator's own section (``generate.<name>``, validated by ``Config``).
    """

    Config: ClassVar[type[BaseModel]] = NoSettings

    def __init__(self, cfg: GenerateConfig, name_or_path: str = "") -> None:
        self.cfg = cfg
        self.name_or_path = name_or_path
        self.settings: Any = own_settings(type(self), cfg)

    @abstractmethod
    def fit(self, train: Sequence[Context], valid: Sequence[Context], seed: int) -> dict[str, Any]:
        """Train (or adapt) on the other folds' contexts; returns training figures for the log."""

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write everything ``load`` needs into ``directory``."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path, cfg: GenerateConfig, name_or_path: str = "") -> "Generator":
        """The generator saved in ``directory``."""

    @abstractmethod
    def sample(self, contexts: Sequence[Context], n: int, seed: int) -> list[list[str]]:
        """``n`` raw endings per context (may repeat; filtering is the caller's job)."""

    def index_fold(self, contexts: Sequence[Context]) -> None:
        """Called after ``fit`` with the fold's own contexts. A generator that reuses real
        endings draws them from these, for a context only those of its own ``split`` and
        another video, so no split meets another split's golds as negatives. Language models
        ignore it."""

    def sample_writers(self, contexts: Sequence[Context], n: int, seed: int) -> list[list[Sample]]:
        """``sample``'s endings as ``Sample``s: each with who wrote it, this generator's spec (a
        mixture names its part), and what it was made from. Both travel with the ending, so
        the columns are the same however the work is spread."""
        return [[Sample(e, self.cfg.generator) for e in endings] for endings in self.sample(contexts, n, seed)]

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


def own_settings(cls: type[Generator], cfg: GenerateConfig) -> BaseModel:
    """``cls``'s section of ``cfg`` (``generate.<name>``) validated by ``cls.Config``; a bad key
    or value is a ConfigError naming it."""
    name = generators.name_of(cls)
    try:
        return cls.Config.model_validate(cfg.section(name))
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"generate.{name}.{key}: {first['msg']}") from None


def parts(spec: str) -> list[str]:
    """Registry names of the generators a spec runs (``lstm,retrieval`` → lstm, retrieval;
    ``phi2`` → hf)."""
    names = [generators.name_of(resolve(part.strip())[0]) for part in spec.split(",")]
    return list(dict.fromkeys(names))


def check_sections(cfg: GenerateConfig) -> None:
    """Every generator section given in ``cfg`` names a generator and validates, chosen or not;
    every ``mixture_shares`` key names a generator (by kind or spec: ``hf``, ``hf:NAME``). A
    share for a generator the spec does not run is kept for when it does (a preset's)."""
    for key in cfg.mixture_shares:
        if key.partition(":")[0] not in generators.names():
            raise ConfigError(f"generate.mixture_shares: {key!r} names no generator "
                              f"(generators: {', '.join(generators.names())})")
    for name in (cfg.model_extra or {}):
        if name not in generators.names():
            raise ConfigError(f"generate.{name}: neither a generate setting nor a generator's section "
                              f"(generators: {', '.join(generators.names())})")
        own_settings(generators.get(name), cfg)


def generator_settings(cfg: GenerateConfig) -> dict[str, Any]:
    """What candidates depend on: the shared generate settings (without the speed and retry
    knobs) and the resolved sections of the generators the spec runs (defaults filled in)."""
    check_sections(cfg)
    sections = {name: own_settings(generators.get(name), cfg).model_dump() for name in parts(cfg.generator)}
    shared = cfg.model_dump(exclude={"workers", "max_retries", *(cfg.model_extra or {})})
    return {**shared, **{name: s for name, s in sections.items() if s}}
