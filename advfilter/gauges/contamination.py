"""N-gram contamination check of a run's items against evaluation sets and across its splits.

As in the GPT-3 and Phi decontamination passes: texts are lower-cased and cut into word tokens
(letters and digits), and an item is *flagged* when its context followed by any of its endings shares
one ``n``-gram (13 by default) with a document of another set; a text shorter than ``n``
words counts as one n-gram of all its words. Other sets are HellaSwag-format JSONL files
(context + every ending), JSONL with a ``text`` field, or plain text (a document per line).
Within the run, validation and test items are checked against the train items, and test
against validation. ``export --decontaminate REPORT`` leaves the flagged items out.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from advfilter.core.errors import InputError
from advfilter.core.layout import items
from advfilter.core.progress import progress
from advfilter.core.store import RunStore
from advfilter.sources.base import iter_json_lines, read_text

TOKEN = re.compile(r"[a-z0-9]+")
Gram = tuple[str, ...]


def ngrams(text: str, n: int) -> set[Gram]:
    """The word ``n``-grams of ``text`` (one gram of all its words when it has fewer)."""
    words = TOKEN.findall(text.lower())
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def item_texts(item: dict[str, Any]) -> list[str]:
    """A run item's own texts: its context followed by each of its endings."""
    return [f"{item['ctx_a']} {item['ctx_b']} {ending}" for ending in item["endings"]]


def documents(path: Path) -> Iterator[str]:
    """The texts of an evaluation set: HellaSwag JSONL (context + every ending), JSONL with
    ``text``, or plain text, one document per line."""
    if path.suffix == ".jsonl":
        for lineno, record in iter_json_lines(path):
            if "endings" in record:
                ctx = record.get("ctx") or f"{record.get('ctx_a', '')} {record.get('ctx_b', '')}"
                yield " ".join([ctx, *map(str, record["endings"])])
            elif isinstance(record.get("text"), str):
                yield record["text"]
            else:
                raise InputError(path, f"line {lineno}", "neither HellaSwag fields (ctx, endings) nor text")
    else:
        yield from (line for line in read_text(path).splitlines() if line.strip())


@dataclass
class Index:
    """Which named sets each n-gram occurs in."""

    n: int
    where: dict[Gram, set[str]]

    @classmethod
    def of(cls, n: int, sets: Iterable[tuple[str, Iterable[str]]]) -> "Index":
        where: dict[Gram, set[str]] = {}
        for name, texts in sets:
            for text in texts:
                for gram in ngrams(text, n):
                    where.setdefault(gram, set()).add(name)
        return cls(n, where)

    def matches(self, texts: Iterable[str], skip: str = "") -> dict[str, str]:
        """Set name → one shared n-gram, for every set (but ``skip``) sharing one with any of
        ``texts``."""
        out: dict[str, str] = {}
        for gram in sorted(set().union(*(ngrams(t, self.n) for t in texts))):
            for name in self.where.get(gram, ()):
                if name != skip:
                    out.setdefault(name, " ".join(gram))
        return out


# Within a run: each split is checked against the splits listed for it.
AGAINST_SPLITS = {"validation": ("train",), "test": ("train", "validation")}


def contamination(run: RunStore, against: Sequence[Path], n: int = 13,
                  round_n: int | None = None) -> dict[str, Any]:
    """The report: ``items`` checked, ``flagged`` (how many share an n-gram with another set),
    ``by_file`` (flagged items per evaluation file), ``by_split`` (validation / test items
    flagged against the run's earlier splits) and ``flagged_items`` (context id, split, and
    for each set one shared n-gram)."""
    records = list(items(run, round_n))
    files = Index.of(n, [(str(p), documents(p)) for p in
                         progress(against, desc="indexing evaluation sets", unit="file")])
    splits = Index.of(n, [(f"split:{s}", (t for r in records if r["split"] == s for t in item_texts(r)))
                          for s in ("train", "validation")])
    flagged = []
    by_file = {str(p): 0 for p in against}
    by_split = {s: 0 for s in AGAINST_SPLITS}
    for r in progress(records, desc="checking items", unit="item"):
        texts = item_texts(r)
        hits = files.matches(texts)
        own = {k: v for k, v in splits.matches(texts).items()
               if k.removeprefix("split:") in AGAINST_SPLITS.get(r["split"], ())}
        for name in hits:
            by_file[name] += 1
        if own:
            by_split[r["split"]] += 1
        if hits or own:
            flagged.append({"context_id": r["context_id"], "split": r["split"], "matches": {**hits, **own}})
    return {"n": n, "round": records[0]["round"] if records else round_n, "items": len(records),
            "flagged": len(flagged), "by_file": by_file, "by_split": by_split,
            "flagged_items": flagged}


def flagged_ids(report: Path) -> set[str]:
    """Context ids a contamination report flags; InputError if it is not such a report."""
    try:
        doc = json.loads(read_text(report))
        return {entry["context_id"] for entry in doc["flagged_items"]}
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(report, None, f"not a contamination report ({exc.__class__.__name__}: {exc})") from None
