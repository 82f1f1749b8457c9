"""``bow``: fastText-style mean of the ending's word embeddings (no context)."""
from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from discriminators.bank import Bank, Batch
from discriminators.base import Discriminator, DiscriminatorConfig, discriminators
from discriminators.inputs import Input

WORDS = Input("words")


class BagOfWordsConfig(DiscriminatorConfig):
    embed_dim: int = Field(64, ge=1)


@discriminators.register("bow")
class BagOfWords(Discriminator):
    Config = BagOfWordsConfig

    @classmethod
    def needs(cls, cfg: BagOfWordsConfig) -> list[Input]:
        return [WORDS]

    def __init__(self, bank: Bank, cfg: BagOfWordsConfig) -> None:
        super().__init__(bank, cfg)
        vocab = int(bank.get(WORDS).meta["vocab_size"])
        self.embed = nn.EmbeddingBag(vocab, cfg.embed_dim, mode="mean", padding_idx=0)
        self.dim = cfg.embed_dim
        self.build_head()

    def represent(self, batch: Batch) -> torch.Tensor:
        return self.embed(batch[WORDS]["words"].long())
