"""The bank: a run's rows and every discriminator input built so far, cached on disk.

Rows follow ``advfilter.core.layout``: context by context, the gold first, then the pool.
Each input is built once, in parts (``discriminators.bank_files``: resumable, on Ray workers
when the bank is given a Ray ``map``), into ``RUN_DIR/af/bank/<key>/``; later rounds, resumed
runs and other discriminators that need the same input read it back, memory-mapped. Runs
made before parts existed keep their ``<key>.npz`` files, read as they are.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from advfilter.core.layout import BANK_DIR, LM_COLUMNS, read_contexts, read_rows
from advfilter.core.progress import progress
from advfilter.core.store import RunStore
from advfilter.core.text import normalize
from discriminators.bank_files import Map, build_input, build_part, in_process, load_arrays, load_folder
from discriminators.inputs import Arrays, Corpus, Input

Batch = dict[Input, dict[str, torch.Tensor]]


class Bank:
    """Rows of a run plus a cache of inputs by key (``cache``: a folder, or None for memory
    only); ``map`` builds an input's parts (default: one after another in this process)."""

    def __init__(self, corpus: Corpus, cache: Path | None = None, map: Map = in_process) -> None:
        self.corpus = corpus
        self.cache = cache
        self.map = map
        self.context_ids = corpus.rows.context_ids
        self.offsets = corpus.rows.offsets
        self._arrays: dict[Input, Arrays] = {}

    @classmethod
    def of_run(cls, run: RunStore, device: str = "cpu", map: Map = in_process) -> "Bank":
        """The bank of a generated run, cached in ``RUN_DIR/af/bank/``."""
        corpus = Corpus.of(read_rows(run, [*LM_COLUMNS, "origin"]), read_contexts(run), device)
        return cls(corpus, run.path(BANK_DIR), map)

    @cached_property
    def text_ids(self) -> np.ndarray:
        """Per row, an id of the real ending it says: its normalised text, or for an ending made
        from another (a rewritten retrieval: ``origin``), that one's. Rows with the same id
        say the same; a rewrite of a gold is that gold again, in other nouns."""
        table = self.corpus.rows.table
        origins = table["origin"].fillna("").tolist() if "origin" in table else [""] * len(table)
        said = [normalize(o or e) for o, e in zip(origins, self.corpus.rows.endings)]
        # hashed, not sorted: np.unique would copy the texts into a fixed-width array as wide
        # as the longest, gigabytes at HellaSwag's scale
        return pd.factorize(pd.Series(said, dtype=object))[0]

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
            if self.cache is None:
                self._arrays[inp] = build_part(inp, self.corpus)
                return self._arrays[inp]
            folder, older = self.cache / inp.key, self.cache / f"{inp.key}.npz"
            if older.exists() and not folder.exists():
                self._arrays[inp] = load_arrays(older)
                return self._arrays[inp]
            if not folder.exists():
                build_input(inp, self.corpus, folder, self.map,
                            lambda it, n, desc: progress(it, total=n, desc=desc, unit="part"))
            self._arrays[inp] = load_folder(folder)
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

