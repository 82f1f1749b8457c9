"""What discriminators read: named inputs, each built once per run by one feature function.

A discriminator declares the inputs it needs (``Input("words")``, ``Input("bert_tokens",
model=..., max_length=64)``); the bank builds each one the first time any model asks for it,
with the feature function registered under that name, and caches it under the input's key
(its name plus a hash of its parameters). A feature function takes the run's ``Corpus`` and
returns ``Arrays``: per-row arrays (one row per ending, in the run's row order), per-context
arrays, and scalar metadata (a vocabulary size).

This module holds the inputs several discriminators share (words, LM features); an input
only one discriminator reads lives in that discriminator's module.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from advfilter.core.layout import LM_COLUMNS, Rows
from advfilter.core.registry import Registry
from advfilter.core.store import fingerprint
from advfilter.core.text import word_tokenize

MAX_WORDS = 32  # ending and context words kept per row (endings are <= 25 words)


@dataclass(frozen=True)
class Input:
    """A feature function's name and the parameters that change its result."""

    feature: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, feature: str, **params: Any) -> "Input":
        return cls(feature, tuple(sorted(params.items())))

    @property
    def key(self) -> str:
        """The cache name: ``words``, or ``bert_tokens-<hash of the parameters>``."""
        return self.feature if not self.params else f"{self.feature}-{fingerprint(dict(self.params))}"


@dataclass
class Arrays:
    """One input over a whole run: ``rows`` (R, ...), ``contexts`` (C, ...), scalar ``meta``."""

    rows: dict[str, np.ndarray] = field(default_factory=dict)
    contexts: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, float] = field(default_factory=dict)


@dataclass
class Corpus:
    """The texts feature functions read: every ending in row order and each context.

    ``device`` is where encoder-based features run (``cpu``, ``cuda``); it never changes
    what they compute beyond float rounding, so it is not part of an input's key.
    """

    rows: Rows  # endings (+ LM feature columns) in row order
    ctx_a: np.ndarray  # (C,) str, aligned with rows.context_ids
    ctx_b: np.ndarray
    device: str = "cpu"
    folds: np.ndarray | None = None  # (C,) the cross-fitting fold of each context

    @classmethod
    def of(cls, rows: Rows, contexts: pd.DataFrame, device: str = "cpu") -> "Corpus":
        ctx = contexts.set_index("id").loc[rows.context_ids]
        return cls(rows, ctx["ctx_a"].to_numpy(), ctx["ctx_b"].to_numpy(), device,
                   ctx["fold"].to_numpy() if "fold" in ctx else None)

    def part(self, start: int, end: int) -> "Corpus":
        """Contexts ``start`` to ``end`` (exclusive) and their rows."""
        offsets = self.rows.offsets
        rows = Rows(self.rows.context_ids[start:end], offsets[start:end + 1] - offsets[start],
                    self.rows.table.iloc[offsets[start]:offsets[end]].reset_index(drop=True))
        folds = None if self.folds is None else self.folds[start:end]
        return Corpus(rows, self.ctx_a[start:end], self.ctx_b[start:end], self.device, folds)

    @property
    def owner(self) -> np.ndarray:
        """The context index of every row."""
        return self.rows.row_context(np.arange(len(self.rows.table)))


Feature = Callable[..., Arrays]
features: Registry[Feature] = Registry("discriminator input")


def _ids(texts, vocab: dict[str, int], keep_last: bool = False) -> np.ndarray:
    out = np.zeros((len(texts), MAX_WORDS), dtype=np.int32)
    for i, text in enumerate(texts):
        ids = [vocab.setdefault(w, len(vocab) + 1) for w in word_tokenize(text.lower())]
        ids = ids[-MAX_WORDS:] if keep_last else ids[:MAX_WORDS]
        out[i, :len(ids)] = ids
    return out


@features.register("words")
def words(corpus: Corpus) -> Arrays:
    """Word ids of each ending (``words``) and of the last words of ``ctx_a ctx_b``
    (``ctx_words``, per context) in one vocabulary; 0 pads."""
    vocab: dict[str, int] = {}
    endings = _ids(corpus.rows.endings, vocab)
    contexts = _ids([f"{a} {b}" for a, b in zip(corpus.ctx_a, corpus.ctx_b)], vocab, keep_last=True)
    return Arrays({"words": endings}, {"ctx_words": contexts}, {"vocab_size": len(vocab) + 1})


@features.register("lm")
def lm(corpus: Corpus) -> Arrays:
    """The generator's LM features of each ending (``LM_COLUMNS`` of the candidate shards)."""
    return Arrays({"lm": corpus.rows.table[LM_COLUMNS].to_numpy(np.float32)})
