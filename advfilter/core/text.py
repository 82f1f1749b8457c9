"""Word-level text helpers shared by generators: tokenise, detokenise, normalise, count."""
from __future__ import annotations

import functools
import re

_TOKEN = re.compile(r"\w+(?:'\w+)?|[^\w\s]")
_NO_SPACE_BEFORE = re.compile(r" ([.,!?;:%)\]])")
_NO_SPACE_AFTER = re.compile(r"([(\[$]) ")
_WORD = re.compile(r"\w")


def word_tokenize(text: str) -> list[str]:
    """Words (with inner apostrophes) and single punctuation marks, case kept."""
    return _TOKEN.findall(text)


def detokenize(tokens: list[str]) -> str:
    """Join tokens back into text: no space before closing punctuation or after opening."""
    text = " ".join(tokens)
    return _NO_SPACE_AFTER.sub(r"\1", _NO_SPACE_BEFORE.sub(r"\1", text))


def count_words(text: str) -> int:
    """Tokens that contain a letter or digit (punctuation does not count, as in the filters)."""
    return sum(1 for token in word_tokenize(text) if _WORD.match(token))


def normalize(text: str) -> str:
    """The form endings are de-duplicated on: lower case, words only, single spaces."""
    return " ".join(t for t in word_tokenize(text.lower()) if _WORD.match(t))


_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def sentence_count(text: str) -> int:
    """Sentence-final marks (., ! or ? before a space or the end) in ``text``; at least 1."""
    return max(1, len(_SENTENCE_END.findall(text)))


def cut_at_sentence_end(text: str, sentences: int = 1) -> str:
    """Text up to and including its ``sentences``-th sentence-final mark, or all of it."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return text[: ends[sentences - 1]] if len(ends) >= sentences else text


@functools.cache
def _stop_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS  # spaCy's English list, imported when needed

    return frozenset(STOP_WORDS)


def content_words(text: str) -> set[str]:
    """The lower-cased words of ``text`` with a letter that are not English stop words."""
    stop = _stop_words()
    return {w for w in word_tokenize(text.lower()) if w.isalpha() and w not in stop}
