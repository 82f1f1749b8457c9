"""Export a filtered round as multiple-choice items: HellaSwag JSONL, SWAG CSV, a Hugging Face
``DatasetDict`` split by video, or an lm-evaluation-harness task folder."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from advfilter.af import BANK_FILE, read_metrics, read_round, round_file
from advfilter.contexts import CONTEXTS_FILE
from advfilter.errors import RunError
from advfilter.generate import CANDIDATES_DIR
from advfilter.seeds import derive_seed
from advfilter.store import RunStore, atomic_path, write_jsonl
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
    bank = Bank.load(run.path(BANK_FILE))
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
               "split_type": "indomain", "context_id": cid, "round": round_n,
               "video_id": row["video_id"], "fold": int(row["fold"])}


LM_EVAL_UTILS = '''"""Preprocessing for this task, as lm-evaluation-harness's hellaswag task does it."""
import re


def preprocess(text):
    text = text.strip().replace(" [title]", ". ")
    text = re.sub("\\\\[.*?\\\\]", "", text)
    return text.replace("  ", " ")


def process_docs(dataset):
    def _process(doc):
        ctx = doc["ctx_a"] + " " + doc["ctx_b"].capitalize()
        return {"query": preprocess(doc["activity_label"] + ": " + ctx),
                "choices": [preprocess(e) for e in doc["endings"]],
                "gold": int(doc["label"])}

    return dataset.map(_process)
'''

LM_EVAL_YAML = """# lm-evaluation-harness task written by advfilter. Run offline with:
#   lm_eval --model hf --model_args pretrained=microsoft/phi-2 --include_path {folder} --tasks {name}
task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    validation: {data}
output_type: multiple_choice
validation_split: validation
process_docs: !function utils.process_docs
doc_to_text: "{{{{query}}}}"
doc_to_target: "{{{{gold}}}}"
doc_to_choice: "choices"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def write_lm_eval(records: Iterator[dict[str, Any]], folder: Path, name: str) -> int:
    """A task folder for ``lm_eval --include_path FOLDER --tasks NAME``: YAML, utils.py, data.

    The data path in the YAML is absolute, so the task runs from any working directory.
    """
    folder.mkdir(parents=True, exist_ok=True)
    n = write_jsonl(folder / f"{name}.jsonl", records)
    (folder / "utils.py").write_text(LM_EVAL_UTILS)
    (folder / f"{name}.yaml").write_text(LM_EVAL_YAML.format(
        name=name, folder=folder, data=(folder / f"{name}.jsonl").resolve()))
    return n


def write_swag(records: Iterator[dict[str, Any]], out: Path) -> int:
    """SWAG's CSV columns: video-id, fold-ind, startphrase, sent1, sent2, gold-source,
    ending0..ending{k-1}, label."""
    rows = list(records)
    k = len(rows[0]["endings"]) if rows else 4
    header = ["video-id", "fold-ind", "startphrase", "sent1", "sent2", "gold-source",
              *[f"ending{i}" for i in range(k)], "label"]
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for r in rows:
            writer.writerow([r["video_id"], r["fold"], r["ctx"], r["ctx_a"], r["ctx_b"], "gold",
                             *r["endings"], r["label"]])
    return len(rows)


def split_of(video_id: str, seed: int) -> str:
    """train / validation / test (80 / 10 / 10) by video, so no video spans two splits."""
    bucket = derive_seed(seed, "split", video_id) % 10
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


DATASET_CARD = """---
task_categories: [multiple-choice]
language: [en]
---
# {name}

Multiple-choice commonsense-inference items made by advfilter (SWAG / HellaSwag style): a context
(`ctx_a` + `ctx_b`), {k} endings, `label` the index of the real one. The negatives were
written by the generator `{generator}` and chosen by {rounds} rounds of Adversarial Filtering.

| split | items |
|---|---|
{table}

Splits are by video (no video's items appear in two splits). Fields follow HellaSwag's JSONL:
`ind, activity_label, ctx_a, ctx_b, ctx, endings, label, source_id, split, split_type`, plus
`context_id, round, video_id, fold`.
"""


def write_hf(records: Iterator[dict[str, Any]], out: Path, seed: int, name: str,
             generator: str) -> dict[str, int]:
    """A ``datasets.DatasetDict`` saved with ``save_to_disk`` plus a dataset card README."""
    import shutil

    from datasets import Dataset, DatasetDict

    by_split: dict[str, list[dict[str, Any]]] = {"train": [], "validation": [], "test": []}
    rounds = 0
    for r in records:
        split = split_of(r["video_id"], seed)
        by_split[split].append({**r, "split": split})
        rounds = r["round"]
    dataset = DatasetDict({k: Dataset.from_list(v) for k, v in by_split.items() if v})
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    dataset.save_to_disk(str(tmp))
    counts = {k: len(v) for k, v in by_split.items()}
    k = len(next(r for v in by_split.values() for r in v)["endings"])
    (tmp / "README.md").write_text(DATASET_CARD.format(
        name=name, k=k, generator=generator, rounds=rounds,
        table="\n".join(f"| {s} | {n} |" for s, n in counts.items())))
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)
    return counts
