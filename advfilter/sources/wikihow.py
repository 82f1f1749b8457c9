"""WikiHow articles in the public CSV layout (``wikihowAll.csv``: ``headline, title, text``).

HellaSwag's construction for its second domain: an article's steps are the lines of
``headline`` (one bold summary sentence per step); each context is the title plus up to
``CONTEXT_STEPS`` consecutive steps, and its gold is the next step — with the one after it
too when the next step is shorter than ``MIN_GOLD_WORDS`` words (so at most two steps). There
is no subject / verb-phrase cut: ``ctx_b`` is empty. The article's title is its
``activity_label``. Lengths are filtered by ``contexts`` (``configs/wikihow.yaml``).
"""
from __future__ import annotations

import csv
import re
import sys
from pathlib import Path
from typing import Iterator

from advfilter.core.errors import InputError
from advfilter.sources.base import Item, sources

CONTEXT_STEPS = 3
MIN_GOLD_WORDS = 8
COLUMNS = ("headline", "title", "text")


def steps_of(headline: str) -> list[str]:
    """The step sentences of a ``headline`` cell: one per line, trailing commas dropped."""
    return [s for s in (line.strip().rstrip(",").strip() for line in headline.splitlines()) if s]


def clean_title(title: str) -> str:
    """``How to Be an Organized Artist1`` → ``How to Be an Organized Artist`` (the CSV appends
    a counter to repeated titles)."""
    return re.sub(r"(?<=[A-Za-z])\d+$", "", title.strip())


def windows(steps: list[str]) -> Iterator[tuple[int, list[str], str]]:
    """(index, context steps, gold) for every step after the first."""
    for k in range(1, len(steps)):
        gold = steps[k]
        if len(gold.split()) < MIN_GOLD_WORDS and k + 1 < len(steps):
            gold = f"{gold} {steps[k + 1]}"
        yield k, steps[max(0, k - CONTEXT_STEPS):k], gold


@sources.register("wikihow")
def read_wikihow(path: Path) -> Iterator[Item]:
    """Yield one Item per (context, next steps) window of every article with two or more steps."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # article texts exceed the 128 kB default
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            yield from _items(path, csv.DictReader(fh))
    except OSError as exc:
        raise InputError(path, None, f"cannot read file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(path, f"byte {exc.start}", "not valid UTF-8") from None
    except csv.Error as exc:
        raise InputError(path, None, f"malformed CSV: {exc}") from None


def _items(path: Path, reader: csv.DictReader) -> Iterator[Item]:
    missing = [c for c in ("headline", "title") if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(path, "header", f"missing column(s) {', '.join(missing)} "
                                         f"(expected the WikiHow CSV layout: {', '.join(COLUMNS)})")
    for n, row in enumerate(reader, start=2):
        title = clean_title(row["title"] or "")
        if not title:
            raise InputError(path, f"row {n}", "title is empty")
        article = re.sub(r"\W+", "_", title.lower()).strip("_")
        for k, context, gold in windows(steps_of(row["headline"] or "")):
            yield Item(source="wikihow", item_id=f"{article}~{n}~{k}", video_id=f"{article}~{n}",
                       activity_label=title, ctx_a=f"{title}. {' '.join(context)}", ctx_b="",
                       ending=gold, input_file=path.name, built=True)
