"""Export a filtered round as multiple-choice items: HellaSwag JSONL, SWAG CSV, a Hugging Face
``DatasetDict`` split by whole folds, or an lm-evaluation-harness task folder."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from advfilter.core.config import Config
from advfilter.core.layout import SPLITS, items
from advfilter.core.scores import ambiguous_ids
from advfilter.core.store import RunStore, atomic_dir, atomic_path, write_jsonl


LM_EVAL_UTILS = '''"""Preprocessing for this task, as lm-evaluation-harness's hellaswag task does it."""
import re


def preprocess(text):
    text = text.strip().replace(" [title]", ". ")
    text = re.sub("\\\\[.*?\\\\]", "", text)
    return text.replace("  ", " ")


def process_docs(dataset):
    def _process(doc):
        ctx = doc["ctx_a"] + " " + doc["ctx_b"].capitalize()
        label = doc["activity_label"]  # an item without one is asked its context alone
        return {"query": preprocess(label + ": " + ctx if label else ctx),
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

    The data path in the YAML is absolute, so the task runs from any working directory. The
    folder is written whole beside and then takes the old one's place (``atomic_dir``).
    """
    with atomic_dir(folder) as tmp:
        n = write_jsonl(tmp / f"{name}.jsonl", records)
        (tmp / "utils.py").write_text(LM_EVAL_UTILS)
        (tmp / f"{name}.yaml").write_text(LM_EVAL_YAML.format(
            name=name, folder=folder, data=(folder / f"{name}.jsonl").resolve()))
    return n


def write_swag(records: Iterator[dict[str, Any]], out: Path) -> int:
    """SWAG's CSV columns: video-id, fold-ind, startphrase, sent1, sent2, gold-source,
    ending0..ending{k-1}, label; then each item's split."""
    rows = list(records)
    k = len(rows[0]["endings"]) if rows else 4
    header = ["video-id", "fold-ind", "startphrase", "sent1", "sent2", "gold-source",
              *[f"ending{i}" for i in range(k)], "label", "split"]
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for r in rows:
            writer.writerow([r["video_id"], r["fold"], r["ctx"], r["ctx_a"], r["ctx_b"], "gold",
                             *r["endings"], r["label"], r["split"]])
    return len(rows)


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

Splits are by video (whole cross-fitting folds where there are three or more): no video's
items appear in two splits, and no split's negatives are another split's golds. Fields follow HellaSwag's JSONL:
`ind, activity_label, ctx_a, ctx_b, ctx, endings, label, source_id, split, split_type`, plus
`context_id, round, video_id, fold`.
"""


def write_hf(records: Iterator[dict[str, Any]], out: Path, name: str, generator: str) -> dict[str, int]:
    """A ``datasets.DatasetDict`` (one split per item ``split``) saved with ``save_to_disk``,
    plus a dataset card README, written whole beside ``out`` and then taking its place."""
    from datasets import Dataset, DatasetDict

    by_split: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    rounds = 0
    for r in records:
        by_split[r["split"]].append(r)
        rounds = r["round"]
    dataset = DatasetDict({k: Dataset.from_list(v) for k, v in by_split.items() if v})
    counts = {k: len(v) for k, v in by_split.items()}
    k = len(next(r for v in by_split.values() for r in v)["endings"])
    with atomic_dir(out) as tmp:
        tmp.rmdir()  # save_to_disk makes the folder itself
        dataset.save_to_disk(str(tmp))
        (tmp / "README.md").write_text(DATASET_CARD.format(
            name=name, k=k, generator=generator, rounds=rounds,
            table="\n".join(f"| {s} | {n} |" for s, n in counts.items())))
    return counts


@dataclass
class ExportSummary:
    items: int
    name: str
    splits: dict[str, int] = field(default_factory=dict)
    decontaminated: int = 0  # items left out because a contamination report flags them
    ambiguous: int = 0  # items left out as likely ambiguous (export --drop-ambiguous)


def export_run(cfg: Config, run: RunStore, out: Path) -> ExportSummary:
    """The ``export`` recipe: write ``cfg.export``'s round of ``run`` to ``out`` in its format,
    and record the export (resolved settings, item count) in the run's manifest."""
    e = cfg.export
    if e.verified_only:
        from annotation.workflow import verified_items

        records = verified_items(run, e.round, e.split)
    else:
        records = list(items(run, e.round, e.split))
    dropped = 0
    if e.decontaminate:
        from advfilter.gauges.contamination import flagged_ids

        flagged = flagged_ids(Path(e.decontaminate))
        dropped = sum(r["context_id"] in flagged for r in records)
        records = [r for r in records if r["context_id"] not in flagged]
    ambiguous = 0
    if e.drop_ambiguous and records:
        flagged = ambiguous_ids(run, records[0]["round"], cfg.filter.ambiguous_margin)
        ambiguous = sum(r["context_id"] in flagged for r in records)
        records = [r for r in records if r["context_id"] not in flagged]
    name = e.name or "advfilter_" + "".join(c if c.isalnum() else "_" for c in run.root.name)
    splits = {s: n for s in SPLITS if (n := sum(r["split"] == s for r in records))}
    if e.format == "hellaswag":
        n = write_jsonl(out, records)
    elif e.format == "swag":
        n = write_swag(iter(records), out)
    elif e.format == "lm-eval":
        n = write_lm_eval(iter(records), out, name)
    else:
        n = sum(write_hf(iter(records), out, name, cfg.generate.generator).values())
    run.manifest.setdefault("exports", {})[str(out)] = {"export": e.model_dump(), "items": n}
    run.save_manifest()
    return ExportSummary(n, name, splits, dropped, ambiguous)
