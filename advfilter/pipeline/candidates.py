"""From raw samples to a candidate pool per context, with the LM features of each ending.

Samples are cut after as many sentences as the gold has (one for a verb phrase; WikiHow's
golds are a step and its explanation), made one line (an LM's newlines become spaces) and
dropped when empty, opening with a
punctuation mark (", and dress ..." never starts a verb phrase), unfinished (no final mark
where the gold has one), equal to the gold, a repeat of words of the context's first sentence
(what already happened is no continuation, and people reject it at once), a duplicate of an
earlier candidate (after normalisation), the gold of an item of another split (so no split
meets another's golds as negatives, whatever the generator), outside the ending length
bounds or, with ``generate.verb_number``, led by a verb of another number than the gold's
("The woman ... take another drink": ``agreement``). Sampling repeats
for the contexts still short of ``num_candidates`` until ``retry_rounds`` run out; those
contexts are kept with fewer candidates or dropped.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Mapping, Sequence

import pandas as pd

from advfilter.core.config import Config
from advfilter.core.seeds import derive_seed
from generators.base import Context, Generator, Sample
from advfilter.core.text import count_words, cut_at_sentence_end, normalize, sentence_count
from advfilter.pipeline.agreement import leading_numbers

_FINAL = (".", "!", "?")
CANDIDATE_COLUMNS = ["context_id", "ending", "is_gold", "lm_logprob", "lm_uncond_logprob",
                     "ending_tokens", "context_tokens", "generator", "origin"]


def foreign_golds(golds: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    """Per split, the normalised golds of every other split (``golds``: each split's golds)."""
    normal = {s: {normalize(g) for g in texts} for s, texts in golds.items()}
    return {s: set().union(*(t for other, t in normal.items() if other != s)) for s in normal}


class Pool(list):
    """A context's candidate endings (a list of str), ``writers``: who wrote each, and
    ``origins``: the real ending each was made from ("" where none)."""

    def __init__(self, endings: Sequence[str] = (), writers: Sequence[str] = (),
                 origins: Sequence[str] = ()) -> None:
        super().__init__(endings)
        self.writers = list(writers)
        self.origins = list(origins) or [""] * len(self)


def candidate_pools(
    gen: Generator, contexts: Sequence[Context], cfg: Config, seed: int,
    foreign: Mapping[str, set[str]] | None = None,
) -> tuple[list[Pool], Counter[str]]:
    """Up to ``num_candidates`` distinct endings per context, and why samples were dropped.
    ``foreign`` (``foreign_golds``) holds, per split, the golds a context of it may not get."""
    foreign = foreign or {}
    g = cfg.generate
    lo, hi = cfg.contexts.min_ending_tokens, cfg.contexts.max_ending_tokens
    pools: list[dict[str, Sample]] = [{} for _ in contexts]  # key → the sample, its ending as kept
    golds = [normalize(c.ending) for c in contexts]
    firsts = [f" {normalize(c.ctx_a)} " for c in contexts]
    finals = [c.ending.endswith(_FINAL) for c in contexts]
    sentences = [sentence_count(c.ending) for c in contexts]  # WikiHow: a step and its detail
    dropped: Counter[str] = Counter()
    agree = _gold_numbers(contexts, cfg)
    for attempt in range(g.retry_rounds):
        need = [i for i, pool in enumerate(pools) if len(pool) < g.num_candidates]
        if not need:
            break
        draws = math.ceil((g.num_candidates - min(len(pools[i]) for i in need)) * g.oversample)
        samples = gen.sample_writers([contexts[i] for i in need], draws, derive_seed(seed, attempt))
        drawn = []  # (context, sample, its ending as kept, key, why it is dropped or None)
        for i, endings in zip(need, samples):
            for sample in endings:
                ending = " ".join(cut_at_sentence_end(sample.ending, sentences[i]).split())  # one line
                if not finals[i]:  # the gold has no final mark: neither may the candidates
                    ending = ending.rstrip(".!?").rstrip()
                key = normalize(ending)
                words = count_words(ending)
                drawn.append((i, sample, ending, key,
                              "empty" if not key
                              else "starts_with_punct" if not ending[0].isalnum()
                              else "unfinished" if finals[i] and not ending.endswith(_FINAL)
                              else "gold" if key == golds[i]
                              else "other_split_gold" if key in foreign.get(contexts[i].split, ())
                              else "repeats_context" if f" {key} " in firsts[i]
                              else "too_short" if words < lo
                              else "too_long" if words > hi else None))
        numbers = _numbers(contexts, agree, drawn, cfg)
        for (i, sample, ending, key, reason), number in zip(drawn, numbers):
            reason = reason or ("verb_number" if number not in (None, agree[i])
                                else "duplicate" if key in pools[i]
                                else "surplus" if len(pools[i]) >= g.num_candidates else None)
            if reason:
                dropped[reason] += 1
            else:
                pools[i][key] = sample._replace(ending=ending)
    return [Pool([s.ending for s in p.values()], [s.writer for s in p.values()], [s.origin for s in p.values()])
            for p in pools], dropped


def _gold_numbers(contexts: Sequence[Context], cfg: Config) -> list[str | None]:
    """Per context, the number of its gold's leading verb (``agreement``), or None everywhere
    when ``generate.verb_number`` is off."""
    if not cfg.generate.verb_number:
        return [None] * len(contexts)
    return leading_numbers([c.ctx_b for c in contexts], [c.ending for c in contexts],
                           cfg.contexts.spacy_model, cfg.contexts.spacy_fallbacks)


def _numbers(contexts: Sequence[Context], agree: Sequence[str | None], drawn: list[tuple], cfg: Config
             ) -> list[str | None]:
    """For each drawn ``(context, sample, ending, key, reason)``: its ending's leading verb
    number where it is not dropped yet and its context's gold has one, else None."""
    checked = [k for k, d in enumerate(drawn) if d[4] is None and agree[d[0]]]
    out: list[str | None] = [None] * len(drawn)
    if checked:
        tags = leading_numbers([contexts[drawn[k][0]].ctx_b for k in checked], [drawn[k][2] for k in checked],
                               cfg.contexts.spacy_model, cfg.contexts.spacy_fallbacks)
        for k, tag in zip(checked, tags):
            out[k] = tag
    return out


def candidate_table(
    gen: Generator, ids: Sequence[str], contexts: Sequence[Context], pools: Sequence[Pool]
) -> pd.DataFrame:
    """One row per ending (the gold first, ``is_gold``) with the generator's LM features.

    ``lm_logprob``: log P(ending | ctx_a, ctx_b); ``lm_uncond_logprob``: log P(ending) as a
    sentence on its own; ``ending_tokens`` in generator tokens, ``context_tokens`` in words;
    ``generator``: who wrote it; ``origin``: the real ending it was made from, or "".
    """
    endings = [[c.ending, *pool] for c, pool in zip(contexts, pools)]
    cond = gen.score(contexts, endings)
    uncond = gen.score([None] * len(contexts), endings)
    rows = []
    for cid, c, pool, group, c_scores, u_scores in zip(ids, contexts, pools, endings, cond, uncond):
        context_words = count_words(f"{c.ctx_a} {c.ctx_b}")
        writers, origins = ["gold", *pool.writers], ["", *pool.origins]
        for j, ending in enumerate(group):
            rows.append((cid, ending, j == 0, float(c_scores[j, 0]), float(u_scores[j, 0]),
                         int(c_scores[j, 1]), context_words, writers[j], origins[j]))
    return pd.DataFrame(rows, columns=CANDIDATE_COLUMNS)
