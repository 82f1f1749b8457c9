"""A mixture of generators in one pool: ``--generator lstm,retrieval``.

Each part is fitted, saved (``part-K/``) and loaded as it would be alone; sampling asks every
part for its share of the endings (``generate.mixture_shares``, equal by default) and
interleaves them evenly, so the pool (any prefix of them) holds them in about those shares.
LM features (``score``) come from the first part: put the language model first. Each
ending comes with the name of the part that wrote it (``sample_writers``), so the report can
say what each source contributes to the final items.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from advfilter.core.seeds import derive_seed
from generators.base import Context, Generator, Sample, generators, resolve


def interleave(parts: Sequence[Sequence[Any]]) -> list[Any]:
    """The parts' items merged evenly: the j-th of m items sits at (j + 0.5) / m of the way,
    so any prefix (a pool cut at ``num_candidates``) holds each part in its share."""
    keyed = [((j + 0.5) / len(part), k, item) for k, part in enumerate(parts) for j, item in enumerate(part)]
    return [item for *_, item in sorted(keyed, key=lambda t: t[:2])]


@generators.register("mixture")
class Mixture(Generator):
    """``name_or_path`` is the comma-separated list of parts (each a generator spec)."""

    def __init__(self, cfg: Any, name_or_path: str = "") -> None:
        super().__init__(cfg, name_or_path)
        self.names = [p.strip() for p in name_or_path.split(",")]
        self.parts: list[Generator] = []

    def fit(self, train: Sequence[Context], valid: Sequence[Context], seed: int) -> dict[str, Any]:
        stats = {}
        for k, name in enumerate(self.names):
            cls, model = resolve(name)
            part = cls(self.cfg, model)
            stats[name] = part.fit(train, valid, derive_seed(seed, "part", k))
            self.parts.append(part)
        return stats

    def index_fold(self, contexts: Sequence[Context]) -> None:
        for part in self.parts:
            part.index_fold(contexts)

    def save(self, directory: Path) -> None:
        for k, part in enumerate(self.parts):
            (directory / f"part-{k}").mkdir()
            part.save(directory / f"part-{k}")
        (directory / "mixture.json").write_text(json.dumps(self.names))

    @classmethod
    def load(cls, directory: Path, cfg: Any, name_or_path: str = "") -> "Mixture":
        gen = cls(cfg, ",".join(json.loads((directory / "mixture.json").read_text())))
        for k, name in enumerate(gen.names):
            part_cls, model = resolve(name)
            gen.parts.append(part_cls.load(directory / f"part-{k}", cfg, model))
        return gen

    def sample_writers(self, contexts: Sequence[Context], n: int, seed: int) -> list[list[Sample]]:
        weights = [self.cfg.share_of(name) for name in self.names]
        drawn = [part.sample_writers(contexts, math.ceil(n * w / sum(weights)), derive_seed(seed, "part", k))
                 for k, (part, w) in enumerate(zip(self.parts, weights))]
        return [interleave([[s._replace(writer=name) for s in d[i]] for name, d in zip(self.names, drawn)])
                for i in range(len(contexts))]

    def sample(self, contexts: Sequence[Context], n: int, seed: int) -> list[list[str]]:
        return [[s.ending for s in pool] for pool in self.sample_writers(contexts, n, seed)]

    def score(self, contexts: Sequence[Context | None], endings: Sequence[Sequence[str]]) -> list[np.ndarray]:
        return self.parts[0].score(contexts, endings)
