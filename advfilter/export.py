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
    n = write_hellaswag(records, folder / f"{name}.jsonl")
    (folder / "utils.py").write_text(LM_EVAL_UTILS)
    (folder / f"{name}.yaml").write_text(LM_EVAL_YAML.format(
        name=name, folder=folder, data=(folder / f"{name}.jsonl").resolve()))
    return n
