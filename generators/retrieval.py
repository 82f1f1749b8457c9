"""The ``retrieval`` generator: real endings of the contexts nearest to each context.

The index holds the fold's own contexts (``index_fold``), embedded (``ctx_a ctx_b``) with a
pretrained sentence encoder (all-MiniLM-L6-v2 by default, ``generate.retrieval.model``);
sampling embeds the contexts asked about and returns the gold endings of their nearest
contexts from *other videos*, drawn from the ``n * generate.retrieval.neighbours`` nearest
with weights ``exp(similarity / temperature)``. The endings are fluent and on-topic, people
wrote them; some are true continuations of the new context too, which is what human
verification is for. Each negative is the gold of another item of the same fold, so splits
made of whole folds (the probe's halves) never show a model its training golds as negatives.
Scores come from a unigram model of the other folds' endings (as ``random``): mix it with an
LM (``lstm,retrieval``) for LM features.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from advfilter.core.models import encode_sentences
from generators.base import Context, generators
from generators.random_endings import RandomEndings


def context_text(c: Context) -> str:
    return f"{c.ctx_a} {c.ctx_b}".strip()


@generators.register("retrieval")
class RetrievalEndings(RandomEndings):
    """Gold endings of the nearest training contexts by encoder embedding."""

    def __init__(self, cfg: Any, name_or_path: str = "") -> None:
        super().__init__(cfg, name_or_path)
        self.contexts: list[Context] = []
        self.vectors = np.zeros((0, 0), dtype=np.float16)

    def _embed(self, contexts: Sequence[Context]) -> np.ndarray:
        r = self.cfg.retrieval
        return encode_sentences([context_text(c) for c in contexts], r.model, r.max_length,
                                desc="embedding contexts")

    def index_fold(self, contexts: Sequence[Context]) -> None:
        self.contexts = sorted(set(contexts), key=lambda c: (c.video, c.ctx_a, c.ctx_b, c.ending))
        self.vectors = self._embed(self.contexts)

    def save(self, directory: Path) -> None:
        super().save(directory)
        (directory / "retrieval.json").write_text(json.dumps([vars(c) for c in self.contexts]))
        np.save(directory / "vectors.npy", self.vectors)

    @classmethod
    def load(cls, directory: Path, cfg: Any, name_or_path: str = "") -> "RetrievalEndings":
        gen = super().load(directory, cfg, name_or_path)
        gen.contexts = [Context(**c) for c in json.loads((directory / "retrieval.json").read_text())]
        gen.vectors = np.load(directory / "vectors.npy")
        return gen

    def sample(self, contexts: Sequence[Context], n: int, seed: int) -> list[list[str]]:
        r = self.cfg.retrieval
        rng = np.random.default_rng(seed)
        sims = self._embed(contexts).astype(np.float32) @ self.vectors.astype(np.float32).T
        videos = np.array([c.video for c in self.contexts])
        sims[np.array([c.video for c in contexts])[:, None] == videos[None, :]] = -np.inf  # never its own video
        k = min(len(self.contexts), max(n, round(n * r.neighbours)))
        out = []
        for row in sims:
            k = min(k, int(np.isfinite(row).sum()))
            if k == 0:
                out.append([])
                continue
            near = np.argpartition(-row, k - 1)[:k]
            weights = np.exp((row[near] - row[near].max()) / r.temperature)
            picks = rng.choice(near, size=min(n, k), replace=False, p=weights / weights.sum())
            out.append([self.contexts[j].ending for j in picks])
        return out
