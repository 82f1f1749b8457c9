"""The files of a run directory: their names, and readers and writers for each.

This module alone knows where a stage's output lives. It needs only pandas and pyarrow, so
``export``, ``report`` and ``annotate`` turn a round into text without torch, Ray or spaCy.

Rows of a run are laid out context by context, in candidate-shard order: the gold ending
first, then the candidate pool, so the rows of context ``i`` are ``offsets[i]:offsets[i+1]``
and pool index ``j`` (what a round's assignment stores) is row ``offsets[i] + 1 + j``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from advfilter.core.errors import RunError
from advfilter.core.seeds import derive_seed
from advfilter.core.store import RunStore, atomic_path, read_jsonl, write_jsonl

CONTEXTS_FILE = "contexts.parquet"
CANDIDATES_DIR = "candidates"
MODELS_DIR = "generators"  # fitted generators, one folder per fold
AF_DIR = "af"
METRICS_FILE = f"{AF_DIR}/metrics.jsonl"
BANK_DIR = f"{AF_DIR}/bank"  # cached discriminator inputs, one .npz per input
PROBE_FILE = f"{AF_DIR}/probe.jsonl"
ANNOTATION_STATE = "annotation.json"
ANNOTATIONS_FILE = "annotations.jsonl"
DECISIONS_FILE = "decisions.jsonl"
ANNOTATORS_FILE = "annotators.json"
REVISIONS_FILE = "revisions.jsonl"

LM_COLUMNS = ["lm_logprob", "lm_uncond_logprob", "ending_tokens", "context_tokens"]
_SHARD_STATS = b"advfilter.shard"


# --- contexts ------------------------------------------------------------------------------
def read_contexts(run: RunStore) -> pd.DataFrame:
    """The contexts table (``id, source, input_file, video_id, fold, split, activity_label,
    ctx_a, ctx_b, ending, ctx_a_ending``; runs made before ``ctx_a_ending`` existed lack it,
    and the ``split`` of runs made before it was stored is derived as it was then)."""
    table = pd.read_parquet(run.path(CONTEXTS_FILE))
    if "split" not in table:
        folds = run.manifest.get("config", {}).get("contexts", {}).get("folds") or int(table["fold"].max()) + 1
        table["split"] = splits_of(table, folds, run.manifest.get("seed", 0))
    return table


def write_contexts(run: RunStore, table: pd.DataFrame) -> None:
    with run.atomic(CONTEXTS_FILE) as tmp:
        table.to_parquet(tmp, index=False)


# --- candidate shards ----------------------------------------------------------------------
def shard_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def shard_paths(run: RunStore) -> list[Path]:
    """The finished candidate shards of a run, in index order."""
    return sorted(run.path(CANDIDATES_DIR).glob("part-*.parquet"))


def write_shard(path: Path, table: pd.DataFrame, stats: dict[str, Any]) -> None:
    """Atomically write a shard with its stats in the Parquet metadata (no timings: the bytes
    must not depend on when or where it ran)."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                           _SHARD_STATS: json.dumps(stats, sort_keys=True).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(arrow, tmp)


def read_shard_stats(path: Path) -> dict[str, Any]:
    """The stats a finished shard was written with."""
    return json.loads(pq.read_schema(path).metadata[_SHARD_STATS])


@dataclass
class Rows:
    """Every ending of a run in row order (see the module docstring)."""

    context_ids: np.ndarray  # (C,) str
    offsets: np.ndarray  # (C + 1,) int64
    table: pd.DataFrame  # one row per ending: ``ending`` and any columns asked for

    @property
    def endings(self) -> list[str]:
        return self.table["ending"].tolist()

    @property
    def pool_sizes(self) -> np.ndarray:
        return np.diff(self.offsets) - 1

    def row_context(self, rows: np.ndarray) -> np.ndarray:
        """The context index of each row."""
        return np.searchsorted(self.offsets, rows, side="right") - 1


def read_rows(run: RunStore, columns: Sequence[str] = ()) -> Rows:
    """All candidate shards of a run as ``Rows`` (``ending`` plus those of ``columns`` every
    shard has: runs made before a column existed lack it, and so does a run resumed across
    that change)."""
    paths = shard_paths(run)
    if not paths:
        raise RunError(f"{run.root}: no {CANDIDATES_DIR}/part-*.parquet; run advfilter generate first")
    present = set.intersection(*(set(pq.read_schema(p).names) for p in paths))
    wanted = ["context_id", "ending", "is_gold", *[c for c in columns if c != "ending" and c in present]]
    shards = pd.concat([pq.read_table(p, columns=wanted).to_pandas() for p in paths], ignore_index=True)
    # contexts in order of first appearance; within a context the gold first, pool order kept
    first = shards.groupby("context_id", sort=False).ngroup()
    shards = shards.assign(_c=first, _g=~shards["is_gold"]).sort_values(["_c", "_g"], kind="stable")
    sizes = shards.groupby("_c", sort=True).size().to_numpy()
    ids = shards["context_id"].to_numpy()[np.concatenate([[0], np.cumsum(sizes)[:-1]])]
    table = shards.drop(columns=["_c", "_g", "context_id", "is_gold"]).reset_index(drop=True)
    return Rows(ids, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64), table)


# --- rounds of Adversarial Filtering -------------------------------------------------------
def round_file(r: int) -> str:
    return f"{AF_DIR}/round-{r:02d}.parquet"


def read_round(run: RunStore, r: int) -> pd.DataFrame:
    """The assignment table of round ``r`` (``context_id``, ``negatives``: pool indices, -1
    for a context whose pool is too small; ``scores``: the driver's score of every pool
    candidate for the contexts tested that round, else null; ``gold``: its score of the gold,
    else NaN; rounds written before December 2026 have no ``gold``)."""
    return pd.read_parquet(run.path(round_file(r)))


def round_assignment(run: RunStore, r: int) -> np.ndarray:
    """Round ``r``'s assignment as a (contexts × negatives) int32 array."""
    return np.stack(read_round(run, r)["negatives"].to_numpy()).astype(np.int32)


def write_round(run: RunStore, r: int, context_ids: np.ndarray, assignment: np.ndarray,
                scores: dict[int, np.ndarray] | None = None, gold: dict[int, float] | None = None) -> None:
    """Round ``r``'s assignment, and the driver's scores of the contexts it tested: of every
    pool candidate (``scores``: context index → scores; -inf for one it did not score) and of
    the gold (``gold``: context index → score)."""
    table = pd.DataFrame({"context_id": context_ids, "negatives": list(assignment),
                          "scores": [(scores or {}).get(i) for i in range(len(context_ids))],
                          "gold": [(gold or {}).get(i, np.nan) for i in range(len(context_ids))]})
    with run.atomic(round_file(r)) as tmp:
        table.to_parquet(tmp, index=False)


def read_metrics(run: RunStore) -> list[dict[str, Any]]:
    """One row per finished round, from ``af/metrics.jsonl``."""
    return read_jsonl(run.path(METRICS_FILE))


def write_metrics(run: RunStore, rows: list[dict[str, Any]]) -> None:
    """Rewrite ``metrics.jsonl`` atomically with ``rows`` (one line per round)."""
    write_jsonl(run.path(METRICS_FILE), rows)


def last_round(run: RunStore) -> int:
    """The newest round with both its assignment and metrics on disk (0 before any round)."""
    rounds = [m["round"] for m in read_metrics(run) if run.path(round_file(m["round"])).exists()]
    return max(rounds, default=0)


def read_probes(run: RunStore) -> list[dict[str, Any]]:
    """One row per (round, probe) measured, from ``af/probe.jsonl``."""
    return read_jsonl(run.path(PROBE_FILE))


def write_probes(run: RunStore, rows: list[dict[str, Any]]) -> None:
    write_jsonl(run.path(PROBE_FILE), rows)


# --- items: a round as text ----------------------------------------------------------------
def split_of(fold: int, folds: int, video_id: str, seed: int) -> str:
    """train / validation / test by whole folds: the last fold is test, the one before it
    validation (5 folds: 60 / 20 / 20; 10 folds: 80 / 10 / 10). Folds are made of whole videos
    and a ``retrieval`` negative is the gold of an item of its own fold, so no split meets
    another split's golds as negatives. Under 3 folds: 80 / 10 / 10 by video."""
    if folds >= 3:
        return "test" if fold == folds - 1 else "validation" if fold == folds - 2 else "train"
    bucket = derive_seed(seed, "split", video_id) % 10
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


SPLITS = ("train", "validation", "test")


def splits_of(contexts: pd.DataFrame, folds: int, seed: int) -> list[str]:
    """``split_of`` each row of a contexts table (``fold``, ``video_id``), ``folds`` in all."""
    return [split_of(int(f), folds, v, seed) for f, v in zip(contexts["fold"], contexts["video_id"])]


def _options(column: Sequence[Any], start: int, negatives: Sequence[int], label: int) -> list[Any]:
    """A context's values of ``column`` (its rows from ``start``, the gold first): those of the
    assigned ``negatives``, with the gold's inserted at ``label``."""
    values = [column[start + 1 + j] for j in negatives]
    values.insert(label, column[start])
    return values


def items(run: RunStore, round_n: int | None = None, split: str | None = None,
          revisions: dict[str, Any] | None = None, sources: bool = False) -> Iterator[dict[str, Any]]:
    """HellaSwag-style items of round ``round_n`` (default: the last), gold at a seeded position,
    each with its ``split`` (the contexts table's); only ``split``'s items when one is named.
    ``revisions`` (context id → an object with ``negatives`` and ``revision``) replaces the
    round's negatives of those items (human verification's revisions); items carry their
    ``revision`` (0: the round's own). With ``sources``, items also carry ``ending_sources``:
    the candidates' ``generator`` column (``gold`` for the gold), where the run's candidates
    have that column.

    Contexts whose pool was too small to assign negatives are left out.
    """
    round_n = last_round(run) if round_n is None else round_n
    if not run.path(round_file(round_n)).exists():
        raise RunError(f"{run.root}: round {round_n} has no {round_file(round_n)}; run filter first")
    rows = read_rows(run, ["generator"] if sources else [])
    texts = rows.endings
    writers = rows.table["generator"].to_numpy() if "generator" in rows.table else None
    row_of = {cid: i for i, cid in enumerate(rows.context_ids)}
    contexts = read_contexts(run).set_index("id")
    seed = run.manifest.get("seed", 0)
    assignment = read_round(run, round_n)
    ind = 0
    for cid, negatives in zip(assignment["context_id"], assignment["negatives"]):
        if negatives[0] < 0:
            continue
        row = contexts.loc[cid]
        item_split = row["split"]
        if split is not None and item_split != split:
            continue
        start = rows.offsets[row_of[cid]]
        revised = (revisions or {}).get(cid)
        negatives = revised.negatives if revised is not None else negatives
        label = derive_seed(seed, "export", cid) % (len(negatives) + 1)
        endings = _options(texts, start, negatives, label)
        extra = {} if writers is None else \
            {"ending_sources": [str(w) for w in _options(writers, start, negatives, label)]}
        yield {"ind": ind, "activity_label": row["activity_label"], "ctx_a": row["ctx_a"],
               "ctx_b": row["ctx_b"], "ctx": f"{row['ctx_a']} {row['ctx_b']}".strip(),
               "endings": endings, "label": label,
               "source_id": f"{row['source']}~{row['video_id']}", "split": item_split,
               "split_type": "indomain", "context_id": cid, "round": round_n,
               "revision": revised.revision if revised is not None else 0,
               "video_id": row["video_id"], "fold": int(row["fold"]), **extra}
        ind += 1
