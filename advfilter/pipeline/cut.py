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

from spacy.tokens import Doc, Token

SUBJECT_DEPS = frozenset({"nsubj", "nsubjpass", "csubj", "csubjpass", "expl"})
COORDINATED = frozenset({"ccomp", "conj", "parataxis"})  # clauses that can precede the root's
MODIFIER_AS_SUBJECT = frozenset({"compound", "nummod", "amod", "nmod"})
VERB_RIGHTS = frozenset({"prep", "dobj", "advcl", "prt", "conj", "acl", "xcomp", "appos", "cc", "advmod"})


@dataclass(frozen=True)
class Parsed:
    """What context building needs to know of one parsed sentence.

    ``cut`` is the character offset where the verb phrase starts (None: no subject found
    before the main verb); ``ending_words`` counts the words from there on.
    """

    words: int
    sentences: int
    cut: int | None
    ending_words: int


def count_words(tokens) -> int:
    """Tokens that are neither punctuation nor whitespace."""
    return sum(1 for t in tokens if not (t.is_punct or t.is_space))


def _clause_heads(doc: Doc) -> list[tuple[Token, Token]]:
    """(head, subject) of every clause with a subject, the earliest-starting subject first."""
    pairs = [(t, c) for t in doc for c in t.lefts if c.dep_ in SUBJECT_DEPS]
    return sorted(pairs, key=lambda p: p[1].left_edge.i)


def _after(doc: Doc, subject: Token, verb: Token) -> int | None:
    """Where the verb phrase starts: after the subject and any punctuation, at the verb at most."""
    start = subject.right_edge.i + 1
    while start < verb.i and doc[start].is_punct:  # "The man, smiling, ..." keeps its comma
        start += 1
    return start if start <= verb.i else None


def _verb_tagged_noun(token: Token) -> bool:
    """"The camera pans to ...": the tagger took the verb for a noun, the subject for its
    compound modifier. A noun near the start with such a modifier and a verb's right
    dependents (a preposition, an object, a clause) is read as the verb."""
    return (token.pos_ in ("NOUN", "PROPN") and 0 < token.i <= 6
            and any(c.dep_ in MODIFIER_AS_SUBJECT for c in token.lefts)
            and any(c.dep_ in VERB_RIGHTS for c in token.rights))


def verb_phrase_start(doc: Doc) -> int | None:
    """Token index where the main verb phrase of a one-sentence doc starts, or None.

    The main verb's subject decides; when a coordinated or complement clause starts before
    it ("He spits it out, then starts crying": the parser's root is "starts"), the first
    clause's verb phrase is the ending, as SWAG's cut at the sentence's first VP gives.
    Fallbacks for parses without a subject on the root: the earliest clause with one (a
    subordinate "When the fire | is turning off ..."), a verb tagged as a noun, and a
    subject-less verb after an opening adverb ("Then | throw the grass ...").
    """
    root = next(iter(doc.sents)).root
    heads = _clause_heads(doc)
    subjects = [c for c in root.lefts if c.dep_ in SUBJECT_DEPS]
    if len(subjects) > 1 and _verb_tagged_noun(subjects[0]):
        return subjects[0].i  # "The camera pans ... and a boy is seen ...": two "subjects"
    subject = subjects[0] if subjects else None
    if subject is not None:
        earlier = next(((h, s) for h, s in heads if s.left_edge.i < subject.left_edge.i
                        and h.dep_ in COORDINATED and h.i < subject.i), None)
        head, subject = earlier or (root, subject)
        return _after(doc, subject, head)
    if heads:
        head, subject = heads[0]
        return _after(doc, subject, head)
    if _verb_tagged_noun(root):
        return root.i
    lefts = [t for t in doc[:root.i] if not t.is_punct]
    if root.pos_ == "VERB" and lefts and all(t.dep_ == "advmod" and t.head == root for t in lefts):
        return root.i
    return None


def analyse(doc: Doc) -> Parsed:
    """Word count, sentence count and subject/VP cut of a parsed sentence."""
    sentences = sum(1 for _ in doc.sents)
    start = verb_phrase_start(doc) if sentences == 1 else None
    if start is None:
        return Parsed(count_words(doc), sentences, None, 0)
    return Parsed(count_words(doc), sentences, doc[start].idx, count_words(doc[start:]))
