"""push / pull / status: a run's items into Label Studio and people's answers back.

``RUN_DIR/annotation.json`` remembers the server, project and round; ``annotations.jsonl``
holds every answer (one line per annotation, merged by annotation id on each pull) and
``decisions.jsonl`` the verdict per item. All three are written atomically.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from advfilter.core.config import AnnotateConfig
from advfilter.core.errors import RunError
from advfilter.core.layout import (
    ANNOTATION_STATE, ANNOTATIONS_FILE, ANNOTATORS_FILE, DECISIONS_FILE, items, last_round,
)
from advfilter.core.store import RunStore, read_jsonl, write_json, write_jsonl
from annotation.agreement import ItemVerdict, verdict
from annotation.client import Server
from annotation.labeling import label_config, make_task, read_answer, task_key
from annotation.quality import Annotator, annotators, drop_low_accuracy, human_accuracy, kappa


@dataclass
class PushSummary:
    project: str
    project_id: int
    items: int
    already_there: int
    imported: int


@dataclass
class PullSummary:
    tasks: int
    annotated_tasks: int
    annotations: int
    new_annotations: int
    kappa: float
    decisions: dict[str, int] = field(default_factory=dict)
    kappa_all: float = float("nan")  # before low-accuracy annotators' votes were dropped
    annotators: list[Annotator] = field(default_factory=list)
    human_accuracy: float = float("nan")  # the kept answers that pick the gold
    human_answers: int = 0


def _state(run: RunStore) -> dict[str, Any]:
    path = run.path(ANNOTATION_STATE)
    if not path.exists():
        raise RunError(f"{run.root}: nothing pushed yet; run advfilter annotate push first")
    return json.loads(path.read_text())


def push(run: RunStore, server: Server, round_n: int | None = None, project: str | None = None,
         limit: int | None = None, overlap: int = 1, batch_size: int = 100) -> PushSummary:
    """Create or reuse the project and import the round's items not yet in it, in batches.

    Tasks are keyed by (run id, context id, round): pushing again imports nothing twice, and
    a push that failed half-way is completed by the next one.
    """
    round_n = last_round(run) if round_n is None else round_n
    records = list(items(run, round_n))[:limit]
    if not records:
        raise RunError(f"{run.root}: round {round_n} has no items to annotate")
    title = project or f"advfilter {run.root.name} {run.run_id}"
    proj = server.project(title, label_config(len(records[0]["endings"])), overlap)
    write_json(run.path(ANNOTATION_STATE), {"url": server.url, "project": title, "project_id": proj.id,
                                      "round": round_n, "overlap": overlap})
    existing = {t.data.get("key") for t in server.tasks(proj.id)}
    seed = run.manifest.get("seed", 0)
    todo = [make_task(r, run.run_id, seed) for r in records
            if task_key(run.run_id, r["context_id"], round_n) not in existing]
    for start in range(0, len(todo), batch_size):
        server.import_tasks(proj.id, todo[start:start + batch_size])
    return PushSummary(title, proj.id, len(records), len(records) - len(todo), len(todo))


def user_id(completed_by: Any) -> int | None:
    """The Label Studio user id of an annotation's ``completed_by`` (an id, or a user object)."""
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id")
    return int(completed_by) if completed_by is not None else None


def _answers(run: RunStore, server: Server, state: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    """(tasks of this run in the project, one record per non-cancelled annotation)."""
    tasks = [t for t in server.tasks(state["project_id"], with_annotations=True)
             if t.data.get("run_id") == run.run_id and t.data.get("round") == state["round"]]
    records = []
    for task in tasks:
        for ann in task.annotations or []:
            if ann.get("was_cancelled"):
                continue
            records.append({"annotation_id": ann["id"], "task_id": task.id,
                            "context_id": task.data["context_id"], "round": task.data["round"],
                            "completed_by": user_id(ann.get("completed_by")), "updated_at": ann.get("updated_at"),
                            **read_answer(ann.get("result") or [], task.data["order"])})
    return len(tasks), records


def judge(records: list[dict[str, Any]], golds: dict[str, int], round_n: int,
          needed: int) -> list[ItemVerdict]:
    """Verdicts for every annotated item of ``round_n`` (``golds``: context id → label)."""
    by_item: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        by_item.setdefault(rec["context_id"], []).append(rec)
    return [verdict(cid, round_n, golds[cid], answers, needed) for cid, answers in sorted(by_item.items())]


def pull(run: RunStore, server: Server, write: bool = True,
         cfg: AnnotateConfig = AnnotateConfig()) -> PullSummary:
    """Fetch all answers (paginated), merge them into ``annotations.jsonl`` by annotation id,
    measure every annotator (``annotators.json``), drop the votes of those below
    ``cfg.min_annotator_accuracy``, and write a verdict per item to ``decisions.jsonl``.
    ``write=False`` only reports."""
    state = _state(run)
    n_tasks, fetched = _answers(run, server, state)
    stored = {r["annotation_id"]: r for r in read_jsonl(run.path(ANNOTATIONS_FILE))}
    new = sum(1 for r in fetched if r["annotation_id"] not in stored)
    stored.update({r["annotation_id"]: r for r in fetched})
    records = [stored[k] for k in sorted(stored)]
    shown = {r["context_id"]: r for r in items(run, state["round"])}
    golds = {cid: r["label"] for cid, r in shown.items()}
    k = len(next(iter(shown.values()))["endings"])
    people = drop_low_accuracy(annotators(records, golds), cfg.min_annotator_accuracy,
                               cfg.min_annotator_tasks)
    dropped = {a.user for a in people if a.dropped}
    votes = [r for r in records if r["completed_by"] not in dropped]
    verdicts = judge(votes, golds, state["round"], state["overlap"])
    kappa_kept = kappa(votes, k)
    accuracy, answers = human_accuracy(votes, golds)
    if write:
        write_jsonl(run.path(ANNOTATIONS_FILE), records)
        write_jsonl(run.path(DECISIONS_FILE), [v.as_dict() for v in verdicts])
        write_json(run.path(ANNOTATORS_FILE), {
            "round": state["round"], "annotators": [a.as_dict() for a in people],
            "dropped": sorted(dropped, key=str), "kappa_all": kappa(records, k), "kappa_kept": kappa_kept,
            "human_accuracy": accuracy, "human_answers": answers,
            "min_annotator_accuracy": cfg.min_annotator_accuracy,
            "min_annotator_tasks": cfg.min_annotator_tasks})
    decisions: dict[str, int] = {}
    for v in verdicts:
        decisions[v.decision] = decisions.get(v.decision, 0) + 1
    return PullSummary(n_tasks, len({r["task_id"] for r in records}), len(records), new, kappa_kept,
                       dict(sorted(decisions.items())), kappa(records, k), people, accuracy, answers)


def kept(run: RunStore) -> set[str]:
    """Context ids whose verdict is keep (for ``export --verified-only``)."""
    path = run.path(DECISIONS_FILE)
    if not path.exists():
        raise RunError(f"{run.root}: no {DECISIONS_FILE}; run advfilter annotate pull first")
    return {d["context_id"] for d in read_jsonl(path) if d["decision"] == "keep"}
