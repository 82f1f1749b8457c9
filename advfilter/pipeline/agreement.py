"""Subject-verb agreement of candidate endings with their context's subject.

A context's ``ctx_b`` is the subject of the next sentence ("The woman in black"); its gold,
written by a person, starts with a verb that agrees with it ("makes a face"). A negative
drawn from another context may not ("take another drink": that context's subject was
plural): ungrammatical after this subject, so people and language models reject it at once
without reading for meaning. The gold's leading verb fixes the subject's number (no parse of
the subject needed: "There 's a girl", "The group of men is" come out right); a candidate
whose leading present-tense verb has the other number (VBZ "is" against VBP "are", or a bare
"take") does not agree. Where the gold's verb carries no number (past tense, a modal) or there is no subject
(WikiHow: ``ctx_b`` empty), nothing is checked.
"""
from __future__ import annotations

import functools
from typing import Sequence

from advfilter.core.nlp import load_pipeline, tagger_only

# a verb's number by its tag: third person singular, or the rest (a base form right after the
# subject is finite: the tagger reads "The woman take" as VB)
_NUMBER = {"VBZ": "VBZ", "VBP": "VBP", "VB": "VBP"}
_NO_NUMBER = ("VBD", "MD", "VBG", "VBN", "TO")
_LEAD_WORDS = 4  # the leading verb sits in the ending's first words (an adverb may come first)


_tagger = functools.lru_cache(maxsize=2)(load_pipeline)  # once per process (a Ray worker's shards)


def leading_numbers(subjects: Sequence[str], endings: Sequence[str], model: str,
                    fallbacks: Sequence[str] = ()) -> list[str | None]:
    """For each (subject, ending): the tag of the ending's first verb after the subject,
    ``VBZ`` or ``VBP``, or None where that verb has no number or the subject is empty."""
    out: list[str | None] = [None] * len(endings)
    todo = [i for i, s in enumerate(subjects) if s.strip()]
    if not todo:
        return out
    nlp = _tagger(model, tuple(fallbacks))
    texts = [f"{subjects[i]} {' '.join(endings[i].split()[:_LEAD_WORDS])}" for i in todo]
    with tagger_only(nlp):
        for i, doc in zip(todo, nlp.pipe(texts, batch_size=512)):
            start = len(subjects[i]) + 1
            out[i] = next((_NUMBER.get(tok.tag_) for tok in doc
                           if tok.idx >= start and (tok.tag_ in _NUMBER or tok.tag_ in _NO_NUMBER)), None)
    return out
