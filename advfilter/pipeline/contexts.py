"""Consecutive sentences → SWAG-style contexts, with filters and fold assignment.

For each pair (s1, s2) of consecutive sentences of a video: ``ctx_a`` = s1, ``ctx_b`` = the
subject of s2, gold ``ending`` = s2's verb phrase. Pairs failing a filter are counted by
reason. Each video gets one of K folds from (seed, video id) alone, so a generator can be
trained on the other folds and write endings only for this one.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import pandas as pd
from spacy.language import Language
from advfilter.core.progress import progress

from advfilter.core.config import Config
from advfilter.core.settings import ContextsConfig
from advfilter.core.errors import InputError
from advfilter.core.nlp import load_pipeline
from advfilter.core.seeds import derive_seed
from advfilter.sources import Item, Record, Story, sources
from advfilter.pipeline.cut import Parsed, analyse
from advfilter.core.layout import CONTEXTS_FILE, splits_of, write_contexts
from advfilter.core.store import RunStore, sha256_file

log = logging.getLogger(__name__)

COLUMNS = ["id", "source", "input_file", "video_id", "fold", "split", "activity_label",
           "ctx_a", "ctx_b", "ending", "ctx_a_ending"]


@dataclass
class ContextsSummary:
    """Counts of one context-building stage (``reused``: taken from an earlier run)."""

    contexts: int
    pairs: int = 0
    videos: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    folds: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    parser: str = ""
    unlabelled: list[str] = field(default_factory=list)  # videos without an activity label
    reused: bool = False


def fold_of(video_id: str, seed: int, folds: int) -> int:
    """The fold of a video: a hash of (seed, video id), the same on every machine and run."""
    return derive_seed(seed, "fold", video_id) % folds


def skip_reason(s1: Parsed, s2: Parsed, cfg: ContextsConfig) -> str | None:
    """Why the pair (s1, s2) makes no context, or None if it does (SWAG's filters)."""
    if s1.words < cfg.min_ctx_a_tokens:
        return "ctx_a_too_short"
    if s1.words > cfg.max_ctx_a_tokens:
        return "ctx_a_too_long"
    if s2.sentences != 1:
        return "s2_not_one_sentence"
    if s2.cut is None:
        return "no_subject"
    if s2.ending_words < cfg.min_ending_tokens:
        return "ending_too_short"
    if s2.ending_words > cfg.max_ending_tokens:
        return "ending_too_long"
    return None


def item_skip_reason(item: Item, cfg: ContextsConfig) -> str | None:
    """Why an item a reader built (WikiHow) makes no context: its ending's length in words.
    Items that arrive cut by someone else (HellaSwag, SWAG, JSONL) are kept as given."""
    if not item.built:
        return None
    words = len(item.ending.split())
    if words < cfg.min_ending_tokens:
        return "ending_too_short"
    if words > cfg.max_ending_tokens:
        return "ending_too_long"
    return None


def _parsed_stories(
    stories: list[Story], nlp: Language, batch_size: int
) -> Iterator[tuple[Story, list[Parsed]]]:
    """Each story with its sentences parsed, streaming through one batched ``nlp.pipe``."""
    texts = ((s, (n, i)) for n, story in enumerate(stories) for i, s in enumerate(story.sentences))
    total = sum(len(story.sentences) for story in stories)
    parsed: list[Parsed] = []
    docs = nlp.pipe(texts, as_tuples=True, batch_size=batch_size)
    for doc, (n, i) in progress(docs, total=total, unit="sent", desc="parsing"):
        parsed.append(analyse(doc))
        if i == len(stories[n].sentences) - 1:
            yield stories[n], parsed
            parsed = []


def _row(record: Story | Item, ident: str, fold: int, ctx_a: str, ctx_b: str, ending: str,
         ctx_a_ending: str = "") -> dict:
    return dict(id=ident, source=record.source, input_file=record.input_file,
                video_id=record.video_id, fold=fold, activity_label=record.activity_label,
                ctx_a=ctx_a, ctx_b=ctx_b, ending=ending, ctx_a_ending=ctx_a_ending)


def free_ending(sentence: str, parsed: Parsed, is_gold: bool, cfg: ContextsConfig) -> str:
    """The verb phrase of a context's first sentence when no context has that sentence as its
    gold (e.g. a video's first caption) and its length fits an ending; else "". A real,
    on-topic ending that is never an answer: the ``retrieval`` generator draws on these."""
    if is_gold or parsed.cut is None or parsed.sentences != 1:
        return ""
    if not cfg.min_ending_tokens <= parsed.ending_words <= cfg.max_ending_tokens:
        return ""
    return sentence[parsed.cut:].strip()


def contexts_from_records(
    records: Iterable[Record], cfg: Config, nlp: Language | None = None
) -> tuple[pd.DataFrame, ContextsSummary]:
    """Build the contexts table (columns ``COLUMNS``) and its summary from reader records.

    ``nlp`` is loaded from the config when not given (and only if a Story needs parsing).
    """
    start = time.perf_counter()
    stories = [r for r in records if isinstance(r, Story)]
    items = [r for r in records if isinstance(r, Item)]

    def fold(record: Record) -> int:
        return fold_of(record.video_id, cfg.seed, cfg.contexts.folds)

    skipped: Counter[str] = Counter()
    rows = []
    for r in items:
        reason = item_skip_reason(r, cfg.contexts)
        if reason:
            skipped[reason] += 1
            continue
        rows.append(_row(r, f"{r.source}~{Path(r.input_file).stem}~{r.item_id}", fold(r),
                         r.ctx_a, r.ctx_b, r.ending))
    parser = ""
    if stories:
        nlp = nlp or load_pipeline(cfg.contexts.spacy_model, cfg.contexts.spacy_fallbacks)
        parser = f"{nlp.meta.get('lang')}_{nlp.meta.get('name')}-{nlp.meta.get('version')}"
        for story, parsed in _parsed_stories(stories, nlp, cfg.contexts.batch_size):
            reasons = [skip_reason(parsed[i], parsed[i + 1], cfg.contexts) for i in range(len(parsed) - 1)]
            skipped.update(r for r in reasons if r)
            kept = {i for i, r in enumerate(reasons) if r is None}
            for i in sorted(kept):
                s2, cut = story.sentences[i + 1], parsed[i + 1].cut
                ident = f"{story.source}~{Path(story.input_file).stem}~{story.video_id}~{i}"
                rows.append(_row(story, ident, fold(story), story.sentences[i],
                                 s2[:cut].strip(), s2[cut:].strip(),
                                 free_ending(story.sentences[i], parsed[i], i - 1 in kept, cfg.contexts)))
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "split"])
    table.insert(COLUMNS.index("split"), "split", splits_of(table, cfg.contexts.folds, cfg.seed))
    duplicated = table["id"][table["id"].duplicated()]
    if len(duplicated):
        first = table[table["id"] == duplicated.iloc[0]].iloc[-1]
        raise InputError(first["input_file"], f"video {first['video_id']}",
                         f"duplicate context id {first['id']!r} (same video twice?)")
    pairs = sum(max(len(s.sentences) - 1, 0) for s in stories) + len(items)
    summary = ContextsSummary(
        contexts=len(table), pairs=pairs,
        videos=len({(r.source, r.video_id) for r in (*stories, *items)}),
        skipped=dict(sorted(skipped.items())),
        folds={int(k): int(v) for k, v in sorted(table["fold"].value_counts().items())},
        seconds=time.perf_counter() - start, parser=parser,
        unlabelled=sorted({r.video_id for r in (*stories, *items) if not r.activity_label}),
    )
    return table, summary


def read_inputs(source: str, inputs: list[Path]) -> list[Record]:
    """All records of the input files, read with the reader registered as ``source``."""
    reader = sources.get(source)
    return [record for path in inputs for record in reader(Path(path))]


def build_contexts(cfg: Config, run: RunStore, source: str, inputs: list[Path],
                   labels: Path | None = None) -> ContextsSummary:
    """The contexts stage: read, label, cut, filter and write ``RUN_DIR/contexts.parquet``.

    Activity labels come from ``labels`` (``--labels``), else for ActivityNet videos without
    one from the v1.3 annotation file (fetched once). Reuses the file if the run already
    finished this stage with the same source, input hashes and settings; raises RunError if
    it finished it with different ones.
    """
    from advfilter.sources.release import label_records

    records = read_inputs(source, inputs)  # validate every input before touching the run
    records, labels = label_records(records, source, labels, cfg.sources.activitynet)
    files = [*inputs, *([labels] if labels else [])]
    hashes = [{"name": Path(p).name, "sha256": sha256_file(p)} for p in files]
    stage = run.open_stage("contexts", {  # batch size: speed only
        "source": source, "inputs": hashes, "seed": cfg.seed,
        "contexts": cfg.contexts.model_dump(exclude={"batch_size"})})
    if stage.done:
        return ContextsSummary(contexts=stage.done["rows"], reused=True)
    run.record_invocation(cfg.model_dump(), [{"path": str(Path(p).resolve()), **h}
                                              for p, h in zip(files, hashes)])
    table, summary = contexts_from_records(records, cfg)
    if table.empty:
        raise InputError(", ".join(map(str, inputs)), None,
                         f"no context survived the filters (skipped: {summary.skipped})")
    write_contexts(run, table)
    stage.finish({
        "file": CONTEXTS_FILE, "rows": summary.contexts, "pairs": summary.pairs,
        "videos": summary.videos, "skipped": summary.skipped, "parser": summary.parser,
        "seconds": round(summary.seconds, 3)})
    log.info("wrote %s (%d contexts)", run.path(CONTEXTS_FILE), summary.contexts)
    return summary
