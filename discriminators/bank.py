"""The bank: a run's rows and every discriminator input built so far, cached on disk.

Rows follow ``advfilter.core.layout``: context by context, the gold first, then the pool.
Each input is built once (with a progress bar where it is slow) and saved atomically to
``RUN_DIR/af/bank/<key>.npz``; later rounds, resumed runs and other discriminators that
need the same input read it back.
"""
from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from advfilter.core.layout import BANK_DIR, LM_COLUMNS, read_contexts, read_rows
from advfilter.core.store import RunStore, atomic_path
from advfilter.core.text import normalize
from discriminators.inputs import Arrays, Corpus, Input, features

log = logging.getLogger(__name__)
Batch = dict[Input, dict[str, torch.Tensor]]


class Bank:
    """Rows of a run plus a cache of inputs by key (``cache``: a folder, or None for memory only)."""

    def __init__(self, corpus: Corpus, cache: Path | None = None) -> None:
        self.corpus = corpus
        self.cache = cache
        self.context_ids = corpus.rows.context_ids
        self.offsets = corpus.rows.offsets
        self._arrays: dict[Input, Arrays] = {}

    @classmethod
    def of_run(cls, run: RunStore, device: str = "cpu") -> "Bank":
        """The bank of a generated run, cached in ``RUN_DIR/af/bank/``."""
        corpus = Corpus.of(read_rows(run, LM_COLUMNS), read_contexts(run), device)
        return cls(corpus, run.path(BANK_DIR))

    @cached_property
    def text_ids(self) -> np.ndarray:
        """Per row, an id of its ending's normalised text: rows with the same id say the same."""
        return np.unique([normalize(e) for e in self.corpus.rows.endings], return_inverse=True)[1]

    @property
    def pool_sizes(self) -> np.ndarray:
        return np.diff(self.offsets) - 1

    @property
    def rows(self) -> int:
        return int(self.offsets[-1])

    def row_context(self, rows: np.ndarray) -> np.ndarray:
        """The context index of each row."""
        return np.searchsorted(self.offsets, rows, side="right") - 1

    def get(self, inp: Input) -> Arrays:
        """The arrays of ``inp``: from memory, else the cache folder, else built (and cached)."""
        if inp not in self._arrays:
            path = self.cache / f"{inp.key}.npz" if self.cache else None
            if path is not None and path.exists():
                self._arrays[inp] = _load(path)
            else:
                arrays = features.get(inp.feature)(self.corpus, **dict(inp.params))
                if path is not None:
                    _save(path, arrays)
                self._arrays[inp] = arrays
        return self._arrays[inp]

    def put(self, inp: Input, arrays: Arrays) -> None:
        """Use ``arrays`` for ``inp`` in memory (benchmarks supply synthetic inputs this way)."""
        self._arrays[inp] = arrays

    def batch(self, inputs: list[Input], rows: np.ndarray, device: torch.device | str = "cpu") -> Batch:
        """Tensors of ``inputs`` for ``rows`` (per-context arrays indexed by each row's context)."""
        owners = self.row_context(rows)
        out: Batch = {}
        for inp in inputs:
            a = self.get(inp)
            tensors = {k: torch.from_numpy(v[rows]) for k, v in a.rows.items()}
            tensors |= {k: torch.from_numpy(v[owners]) for k, v in a.contexts.items()}
            out[inp] = {k: t.to(device, non_blocking=True) for k, t in tensors.items()}
        return out


def _save(path: Path, arrays: Arrays) -> None:
    flat = {f"rows.{k}": v for k, v in arrays.rows.items()}
    flat |= {f"contexts.{k}": v for k, v in arrays.contexts.items()}
    flat |= {f"meta.{k}": np.asarray(v) for k, v in arrays.meta.items()}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **flat)


def _load(path: Path) -> Arrays:
    out = Arrays()
    with np.load(path, allow_pickle=False) as data:
        for name in data.files:
            part, key = name.split(".", 1)
            value = data[name]
            if part == "meta":
                out.meta[key] = value.item()
            else:
                getattr(out, part)[key] = value
    return out
