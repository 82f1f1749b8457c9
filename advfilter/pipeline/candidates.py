"""From raw samples to a candidate pool per context, with the LM features of each ending.

Samples are cut at the end of their sentence and dropped when empty, opening with a
punctuation mark (", and dress ..." never starts a verb phrase), unfinished (no final mark
where the gold has one), equal to the gold, a repeat of words of the context's first sentence
(what already happened is no continuation, and people reject it at once), a duplicate of an
earlier candidate (after normalisation) or outside the ending length bounds. Sampling repeats
for the contexts still short of ``num_candidates`` until ``retry_rounds`` run out; those
contexts are kept with fewer candidates or dropped.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

import pandas as pd

from advfilter.core.config import Config
from advfilter.core.seeds import derive_seed
from generators.base import Context, Generator
from advfilter.core.text import count_words, cut_at_sentence_end, normalize

_FINAL = (".", "!", "?")
CANDIDATE_COLUMNS = ["context_id", "ending", "is_gold", "lm_logprob", "lm_uncond_logprob",
                     "ending_tokens", "context_tokens", "generator"]


def candidate_pools(
    gen: Generator, contexts: Sequence[Context], cfg: Config, seed: int
) -> tuple[list[list[str]], Counter[str]]:
    """Up to ``num_candidates`` distinct endings per context, and why samples were dropped."""
    g = cfg.generate
    lo, hi = cfg.contexts.min_ending_tokens, cfg.contexts.max_ending_tokens
    pools: list[dict[str, str]] = [{} for _ in contexts]
    golds = [normalize(c.ending) for c in contexts]
    firsts = [f" {normalize(c.ctx_a)} " for c in contexts]
    finals = [c.ending.endswith(_FINAL) for c in contexts]
    dropped: Counter[str] = Counter()
    for attempt in range(g.retry_rounds):
        need = [i for i, pool in enumerate(pools) if len(pool) < g.num_candidates]
        if not need:
            break
        draws = math.ceil((g.num_candidates - min(len(pools[i]) for i in need)) * g.oversample)
        samples = gen.sample([contexts[i] for i in need], draws, derive_seed(seed, attempt))
        for i, endings in zip(need, samples):
            for raw in endings:
                ending = cut_at_sentence_end(raw).strip()
                if not finals[i]:  # the gold has no final mark: neither may the candidates
                    ending = ending.rstrip(".!?").rstrip()
                key = normalize(ending)
                words = count_words(ending)
                reason = ("empty" if not key
                          else "starts_with_punct" if not ending[0].isalnum()
                          else "unfinished" if finals[i] and not ending.endswith(_FINAL)
                          else "gold" if key == golds[i]
                          else "repeats_context" if f" {key} " in firsts[i]
                          else "duplicate" if key in pools[i] else "too_short" if words < lo
                          else "too_long" if words > hi
                          else "surplus" if len(pools[i]) >= g.num_candidates else None)
                if reason:
                    dropped[reason] += 1
                else:
                    pools[i][key] = ending
    return [list(pool.values()) for pool in pools], dropped


def candidate_table(
    gen: Generator, ids: Sequence[str], contexts: Sequence[Context], pools: Sequence[Sequence[str]]
) -> pd.DataFrame:
    """One row per ending (the gold first, ``is_gold``) with the generator's LM features.

    ``lm_logprob``: log P(ending | ctx_a, ctx_b); ``lm_uncond_logprob``: log P(ending) as a
    sentence on its own; ``ending_tokens`` in generator tokens, ``context_tokens`` in words.
    """
    endings = [[c.ending, *pool] for c, pool in zip(contexts, pools)]
    cond = gen.score(contexts, endings)
    uncond = gen.score([None] * len(contexts), endings)
    rows = []
    for cid, c, group, c_scores, u_scores in zip(ids, contexts, endings, cond, uncond):
        context_words = count_words(f"{c.ctx_a} {c.ctx_b}")
        for j, ending in enumerate(group):
            rows.append((cid, ending, j == 0, float(c_scores[j, 0]), float(u_scores[j, 0]),
                         int(c_scores[j, 1]), context_words, "gold" if j == 0 else gen.origin(ending)))
    return pd.DataFrame(rows, columns=CANDIDATE_COLUMNS)
