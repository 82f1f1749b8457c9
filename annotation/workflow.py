"""push / pull / status: a run's items into Label Studio and people's answers back.

``RUN_DIR/annotation.json`` remembers the server, project and round; ``annotations.jsonl``
holds every answer (one line per annotation, merged by annotation id on each pull) and
``decisions.jsonl`` the verdict per item. All three are written atomically.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from advfilter.core.run_settings import AnnotateConfig
from advfilter.core.errors import RunError
from advfilter.core.layout import (
    ANNOTATION_STATE, ANNOTATIONS_FILE, ANNOTATORS_FILE, DECISIONS_FILE, items, last_round,
)
from advfilter.core.scores import latest_margins
from advfilter.core.store import RunStore, read_jsonl, write_json, write_jsonl
from annotation.agreement import ItemVerdict, verdict
from annotation.client import Server
from annotation.labeling import label_config, make_task, read_answer, task_key
from annotation.quality import (
    Annotator, annotators, drop_low_accuracy, human_accuracy, kappa, stored_kappa,
)
from annotation.revisions import (
    Revision, append_revisions, flag_threshold, flagged, pool_sizes, read_revisions, revise, shown_before,
)

ASKED_AGAIN = "no majority for the gold: asked again as a new task"


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
    revised: int = 0  # items shown in a revision after the first (distractors replaced)
    open: int = 0  # tasks of items' latest revisions still waiting for a verdict


def _state(run: RunStore) -> dict[str, Any]:
    path = run.path(ANNOTATION_STATE)
    if not path.exists():
        raise RunError(f"{run.root}: nothing pushed yet; run advfilter annotate push first")
    return json.loads(path.read_text())


def push(run: RunStore, server: Server, round_n: int | None = None, project: str | None = None,
         limit: int | None = None, overlap: int | None = None, batch_size: int = 100,
         order: str | None = None) -> PushSummary:
    """Create or reuse the project and import the round's items not yet in it, in batches,
    each in its latest revision (a revised item is a new task); dropped items are left out.
    ``order="ambiguous"`` sends first the items whose negative the driver scored furthest
    above the gold (``latest_margins``), so people see the likeliest second answers first
    (default: the first push's order, else ``items``).
    A later push keeps the project, round, ``limit`` and ``overlap`` of the first unless told
    otherwise (``overlap`` defaults to ``annotate.overlap``'s default).

    Tasks are keyed by (run id, context id, round[, revision]): pushing again imports nothing
    twice, and a push that failed half-way is completed by the next one.
    """
    earlier = json.loads(run.path(ANNOTATION_STATE).read_text()) if run.path(ANNOTATION_STATE).exists() else {}
    round_n = earlier.get("round", last_round(run)) if round_n is None else round_n
    limit = earlier.get("limit") if limit is None else limit
    overlap = earlier.get("overlap", AnnotateConfig().overlap) if overlap is None else overlap
    order = earlier.get("order", "items") if order is None else order
    revisions = read_revisions(run, round_n)
    records = [r for r in items(run, round_n, revisions=revisions)
               if not revisions[r["context_id"]].exhausted]
    if order == "ambiguous":
        margin = latest_margins(run, round_n)
        records.sort(key=lambda r: -margin.get(r["context_id"], -np.inf))
    records = records[:limit]
    if not records:
        raise RunError(f"{run.root}: round {round_n} has no items to annotate")
    title = project or earlier.get("project") or f"advfilter {run.root.name} {run.run_id}"
    proj = server.project(title, label_config(len(records[0]["endings"])), overlap)
    write_json(run.path(ANNOTATION_STATE), {"url": server.url, "project": title, "project_id": proj.id,
                                            "round": round_n, "overlap": overlap, "limit": limit,
                                            "order": order})
    existing = {t.data.get("key") for t in server.tasks(proj.id)}
    seed = run.manifest.get("seed", 0)
    todo = [make_task(r, run.run_id, seed) for r in records
            if task_key(run.run_id, r["context_id"], round_n, r["revision"]) not in existing]
    for start in range(0, len(todo), batch_size):
        server.import_tasks(proj.id, todo[start:start + batch_size])
    return PushSummary(title, proj.id, len(records), len(records) - len(todo), len(todo))


def user_id(completed_by: Any) -> int | None:
    """The Label Studio user id of an annotation's ``completed_by`` (an id, or a user object)."""
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id")
    return int(completed_by) if completed_by is not None else None


def _answers(run: RunStore, server: Server, state: dict[str, Any]
             ) -> tuple[set[tuple[str, int]], list[dict[str, Any]]]:
    """((context id, revision) of this run's tasks in the project, one record per
    non-cancelled annotation)."""
    tasks = [t for t in server.tasks(state["project_id"], with_annotations=True)
             if t.data.get("run_id") == run.run_id and t.data.get("round") == state["round"]]
    records = []
    for task in tasks:
        for ann in task.annotations or []:
            if ann.get("was_cancelled"):
                continue
            records.append({"annotation_id": ann["id"], "task_id": task.id,
                            "context_id": task.data["context_id"], "round": task.data["round"],
                            "revision": task.data.get("revision", 0), "completed_by": user_id(ann.get("completed_by")), "updated_at": ann.get("updated_at"),
                            **read_answer(ann.get("result") or [], task.data["order"])})
    return {(t.data["context_id"], t.data.get("revision", 0)) for t in tasks}, records


def judge(records: list[dict[str, Any]], golds: dict[str, int], current: dict[str, Revision],
          needed: int, cfg: AnnotateConfig) -> list[ItemVerdict]:
    """Verdicts for every annotated item on the answers to its latest revision: ``revise``
    when enough annotators flag a distractor (``cfg.replace_flags``; ``flag_threshold``), else
    keep / drop / reannotate (``verdict``). An item with all its answers but no majority for
    the gold is asked again (a new task, ``ASKED_AGAIN``), and dropped when the second asking
    fails too; an item whose pool ran out is dropped."""
    by_item: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        if rec.get("revision", 0) == current[rec["context_id"]].revision:
            by_item.setdefault(rec["context_id"], []).append(rec)
    out = []
    for cid, rev in sorted(current.items()):
        answers = by_item.get(cid, [])
        if rev.exhausted:
            out.append(ItemVerdict(cid, rev.round, 0, None, 0.0, {}, "drop", rev.revision, "pool exhausted"))
        elif answers:
            v = verdict(cid, rev.round, golds[cid], answers, needed)
            v.revision = rev.revision
            if flagged(answers, golds[cid], cfg.replace_flags, flag_threshold(cfg.flag_votes, len(answers), needed)):
                v.decision, v.reason = "revise", "distractor flagged"
            elif v.decision == "reannotate" and v.annotations >= needed:
                asked_before = rev.revision > 0 and not rev.replaced
                v.decision, v.reason = ("drop", "no majority for the gold when asked again") if asked_before \
                    else ("reannotate", ASKED_AGAIN)
            out.append(v)
    return out


def pull(run: RunStore, server: Server, write: bool = True,
         cfg: AnnotateConfig = AnnotateConfig()) -> PullSummary:
    """Fetch all answers (paginated), merge them into ``annotations.jsonl`` by annotation id,
    measure every annotator (``annotators.json``), drop the votes of those below
    ``cfg.min_annotator_accuracy``, write a verdict per item to ``decisions.jsonl``, and give
    every item whose distractor people flagged a new revision (``revisions.jsonl``) for the
    next push. ``write=False`` only reports.

    The files are written in the order that keeps a killed pull harmless: annotations, then
    new revisions, then decisions and annotators. A pull killed between them is finished by
    the next one (answers merge by id; a revised item waits for its new task, never revised
    twice), and readers meet either the old decisions or the new ones."""
    state = _state(run)
    pushed, fetched = _answers(run, server, state)
    stored = {r["annotation_id"]: r for r in read_jsonl(run.path(ANNOTATIONS_FILE))}
    new = sum(1 for r in fetched if r["annotation_id"] not in stored)
    stored.update({r["annotation_id"]: r for r in fetched})
    records = [stored[k] for k in sorted(stored)]
    current = read_revisions(run, state["round"])
    shown = {r["context_id"]: r for r in items(run, state["round"], revisions=current)}
    golds = {cid: r["label"] for cid, r in shown.items()}
    k = len(next(iter(shown.values()))["endings"])
    people = drop_low_accuracy(annotators(records, golds), cfg.min_annotator_accuracy,
                               cfg.min_annotator_tasks)
    dropped = {a.user for a in people if a.dropped}
    votes = [r for r in records if r["completed_by"] not in dropped]
    verdicts = judge(votes, golds, current, state["overlap"], cfg)
    accuracy, answers = human_accuracy(votes, golds)
    if write:
        write_jsonl(run.path(ANNOTATIONS_FILE), records)
        again = [v for v in verdicts if v.decision == "revise" or v.reason == ASKED_AGAIN]
        revised = _revise(run, again, current, votes, golds, state["overlap"], cfg)
        verdicts = [revised.get(v.context_id, v) for v in verdicts]
        write_jsonl(run.path(DECISIONS_FILE), [v.as_dict() for v in verdicts])
        write_json(run.path(ANNOTATORS_FILE), {
            "round": state["round"], "annotators": [a.as_dict() for a in people],
            "dropped": sorted(dropped, key=str), "kappa_all": stored_kappa(kappa(records, k)),
            "kappa_kept": stored_kappa(kappa(votes, k)),
            "human_accuracy": accuracy, "human_answers": answers,
            "min_annotator_accuracy": cfg.min_annotator_accuracy,
            "min_annotator_tasks": cfg.min_annotator_tasks})
    decisions: dict[str, int] = {}
    for v in verdicts:
        decisions[v.decision] = decisions.get(v.decision, 0) + 1
    settled = {v.context_id for v in verdicts if v.decision in ("keep", "drop", "revise")}
    waiting = sum(1 for cid, rev in pushed if rev == current[cid].revision and cid not in settled)
    return PullSummary(len(pushed), len({r["task_id"] for r in records}), len(records), new, kappa(votes, k),
                       dict(sorted(decisions.items())), kappa(records, k), people, accuracy, answers,
                       sum(1 for r in read_revisions(run, state["round"]).values()
                           if r.revision > 0 and not r.exhausted), waiting)


def _revise(run: RunStore, flagged_items: list[ItemVerdict], current: dict[str, Revision],
            votes: list[dict[str, Any]], golds: dict[str, int], needed: int,
            cfg: AnnotateConfig) -> dict[str, ItemVerdict]:
    """New revisions for the flagged items, their flagged distractors replaced (an item asked
    again keeps its endings), recorded; verdicts of those whose pool ran out become drops."""
    sizes = pool_sizes(run)
    new, out = [], {}
    for v in flagged_items:
        rev = current[v.context_id]
        answers = [r for r in votes if r["context_id"] == v.context_id and r.get("revision", 0) == rev.revision]
        bad = flagged(answers, golds[v.context_id], cfg.replace_flags,
                      flag_threshold(cfg.flag_votes, len(answers), needed)) if v.decision == "revise" else []
        nxt = revise(run, rev, bad, golds[v.context_id], shown_before(run, v.context_id, rev.round),
                     sizes[v.context_id])
        new.append(nxt)
        if nxt.exhausted:
            out[v.context_id] = ItemVerdict(v.context_id, rev.round, v.annotations, v.majority, v.gold_share,
                                            v.plausible_flags, "drop", rev.revision, "pool exhausted")
    append_revisions(run, new)
    return out


def verified_items(run: RunStore, round_n: int | None, split: str | None = None) -> list[dict[str, Any]]:
    """The items people kept, each with the endings of its last verified revision (for
    ``export --verified-only``). Refuses a round other than the annotated one: after ``filter``
    ran more rounds, the last round holds negatives nobody saw."""
    path = run.path(DECISIONS_FILE)
    if not path.exists():
        raise RunError(f"{run.root}: no {DECISIONS_FILE}; run advfilter annotate pull first")
    annotated = _state(run)["round"]
    if round_n is None and last_round(run) != annotated:
        raise RunError(f"{run.root}: round {last_round(run)} is newer than the annotated round "
                       f"{annotated}; pass --round {annotated} to export what people verified")
    if round_n is not None and round_n != annotated:
        raise RunError(f"{run.root}: round {round_n} was not annotated (round {annotated} was)")
    keep = {d["context_id"]: d.get("revision", 0) for d in read_jsonl(path) if d["decision"] == "keep"}
    current = read_revisions(run, annotated)
    return [r for r in items(run, annotated, split, revisions=current)
            if keep.get(r["context_id"]) == r["revision"]]
