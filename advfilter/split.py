"""Split a parsed sentence into its subject noun phrase and its main verb phrase.

SWAG cut the second sentence at its final VP with a constituency parser; we use spaCy's
dependency parse: the subject is the subtree of the main verb's ``nsubj``/``nsubjpass``
(/``csubj``/``expl``) child, and the verb phrase starts right after it. Everything before
the verb phrase (leading adverbials such as "Then," and prepositional modifiers of the
subject such as "in a red shirt") stays with the subject, so the ending starts at the
auxiliary or the verb: "The ball | is thrown by the boy."
"""
from __future__ import annotations

from dataclasses import dataclass

from spacy.tokens import Doc

SUBJECT_DEPS = frozenset({"nsubj", "nsubjpass", "csubj", "csubjpass", "expl"})


@dataclass(frozen=True)
class Parsed:
    """What context building needs to know of one parsed sentence.

    ``split`` is the character offset where the verb phrase starts (None: no subject found
    before the main verb); ``ending_words`` counts the words from there on.
    """

    words: int
    sentences: int
    split: int | None
    ending_words: int


def count_words(tokens) -> int:
    """Tokens that are neither punctuation nor whitespace."""
    return sum(1 for t in tokens if not (t.is_punct or t.is_space))


def verb_phrase_start(doc: Doc) -> int | None:
    """Token index where the main verb phrase of a one-sentence doc starts, or None."""
    root = next(iter(doc.sents)).root
    subject = next((child for child in root.lefts if child.dep_ in SUBJECT_DEPS), None)
    if subject is None:
        return None
    start = subject.right_edge.i + 1
    while start < root.i and doc[start].is_punct:  # "The man, smiling, ..." keeps its comma
        start += 1
    return start if start <= root.i else None


def analyse(doc: Doc) -> Parsed:
    """Word count, sentence count and subject/VP split of a parsed sentence."""
    sentences = sum(1 for _ in doc.sents)
    start = verb_phrase_start(doc) if sentences == 1 else None
    if start is None:
        return Parsed(count_words(doc), sentences, None, 0)
    return Parsed(count_words(doc), sentences, doc[start].idx, count_words(doc[start:]))
