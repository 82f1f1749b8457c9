"""``bow``: fastText-style mean of the ending's word embeddings (no context)."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from discriminators.bank import Bank
from discriminators.base import Discriminator, discriminators


@discriminators.register("bow")
class BagOfWords(Discriminator):
    needs = frozenset({"words"})

    def __init__(self, bank: Bank, cfg: Any) -> None:
        super().__init__(bank, cfg)
        self.embed = nn.EmbeddingBag(bank.vocab_size, cfg.embed_dim, mode="mean", padding_idx=0)
        self.dim = cfg.embed_dim
        self.build_head()

    def represent(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.embed(batch["words"])
