"""Export a filtered round as multiple-choice items (HellaSwag JSONL)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from advfilter.af import AF_DIR, read_metrics, read_round, round_file
from advfilter.contexts import CONTEXTS_FILE
from advfilter.errors import RunError
from advfilter.generate import CANDIDATES_DIR
from advfilter.seeds import derive_seed
from advfilter.store import RunStore, atomic_path
from discriminators import Bank
from discriminators.bank import read_texts


def last_round(run: RunStore) -> int:
    """The newest round with both its assignment and metrics on disk (0 before any round)."""
    rounds = [m["round"] for m in read_metrics(run) if run.path(round_file(m["round"])).exists()]
    return max(rounds, default=0)


def items(run: RunStore, round_n: int | None = None, split: str = "train") -> Iterator[dict[str, Any]]:
    """HellaSwag-style items of round ``round_n`` (default: the last), gold at a seeded position.

    Contexts whose pool was too small to assign negatives are left out.
    """
    round_n = last_round(run) if round_n is None else round_n
    if not run.path(round_file(round_n)).exists():
        raise RunError(f"{run.root}: round {round_n} has no {round_file(round_n)}; run filter first")
    bank = Bank.load(run.path(f"{AF_DIR}/bank.npz"))
    assignment = read_round(run, round_n)
    contexts = pd.read_parquet(run.path(CONTEXTS_FILE)).set_index("id")
    texts = read_texts(sorted(run.path(CANDIDATES_DIR).glob("part-*.parquet")))
    seed = run.manifest.get("seed", 0)
    for ind, (i, negatives) in enumerate(
            (i, np.asarray(n)) for i, n in enumerate(assignment["negatives"]) if n[0] >= 0):
        cid = bank.context_ids[i]
        row = contexts.loc[cid]
        endings = [texts[bank.offsets[i] + 1 + j] for j in negatives]
        label = derive_seed(seed, "export", cid) % (len(endings) + 1)
        endings.insert(label, texts[bank.offsets[i]])
        yield {"ind": ind, "activity_label": row["activity_label"], "ctx_a": row["ctx_a"],
               "ctx_b": row["ctx_b"], "ctx": f"{row['ctx_a']} {row['ctx_b']}", "endings": endings,
               "label": label, "source_id": f"{row['source']}~{row['video_id']}", "split": split,
               "split_type": "indomain", "context_id": cid, "round": round_n}


def write_hellaswag(records: Iterator[dict[str, Any]], out: Path) -> int:
    """Write HellaSwag JSONL atomically; returns the number of items."""
    n = 0
    with atomic_path(out) as tmp, open(tmp, "w") as fh:
        for record in records:
            fh.write(json.dumps(record) + "\n")
            n += 1
    return n
