"""The ``random`` generator: real endings of other videos, drawn at random.

It trains nothing and needs no model, so pipeline tests run in seconds; its scores come from a
smoothed unigram model of the training endings. It draws the golds of its fold's own contexts
of the same split and another video (``index_fold``), so no split meets another's golds. As
a data set it is SWAG's "random negatives" baseline, which discriminators separate easily.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from generators.base import Context, Generator, generators
from advfilter.core.text import word_tokenize


@generators.register("random")
class RandomEndings(Generator):
    """Samples gold endings of the training contexts; scores with a unigram model."""

    def __init__(self, cfg: Any, name_or_path: str = "") -> None:
        super().__init__(cfg, name_or_path)
        self.endings: list[str] = []
        self.counts: Counter[str] = Counter()
        self.own: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # split → (endings, videos)

    def fit(self, train: Sequence[Context], valid: Sequence[Context], seed: int) -> dict[str, Any]:
        self._index(sorted({c.ending for c in train}))
        return {"endings": len(self.endings)}

    def _index(self, endings: list[str]) -> None:
        self.endings = endings
        self.counts = Counter(t.lower() for e in self.endings for t in word_tokenize(e))

    def index_fold(self, contexts: Sequence[Context]) -> None:
        entries = sorted({(c.split, c.video, c.ending) for c in contexts})
        self._own(entries)

    def _own(self, entries: list[tuple[str, str, str]]) -> None:
        for split in sorted({s for s, _, _ in entries}):
            mine = [(v, e) for s, v, e in entries if s == split]
            self.own[split] = (np.array([e for _, e in mine], dtype=object), np.array([v for v, _ in mine]))

    def save(self, directory: Path) -> None:
        own = [[s, v, e] for s, (endings, videos) in self.own.items() for e, v in zip(endings, videos)]
        (directory / "random.json").write_text(json.dumps({"endings": self.endings, "own": own}))

    @classmethod
    def load(cls, directory: Path, cfg: Any, name_or_path: str = "") -> "RandomEndings":
        gen = cls(cfg, name_or_path)
        saved = json.loads((directory / "random.json").read_text())
        gen._index(saved["endings"])
        gen._own([tuple(e) for e in saved["own"]])
        return gen

    def sample(self, contexts: Sequence[Context], n: int, seed: int) -> list[list[str]]:
        rng = np.random.default_rng(seed)
        out = []
        for c in contexts:
            endings, videos = self.own.get(c.split, (np.array([], dtype=object), np.array([])))
            others = np.flatnonzero(videos != c.video)
            out.append([] if not len(others) else list(endings[rng.choice(others, n)]))
        return out

    def score(self, contexts: Sequence[Context | None], endings: Sequence[Sequence[str]]) -> list[np.ndarray]:
        total, types = sum(self.counts.values()), len(self.counts) + 1
        def logprob(text: str) -> tuple[float, int]:
            tokens = [t.lower() for t in word_tokenize(text)]
            return sum(math.log((self.counts[t] + 1) / (total + types)) for t in tokens), len(tokens)
        return [np.array([logprob(e) for e in group], dtype=np.float64).reshape(-1, 2)
                for group in endings]
