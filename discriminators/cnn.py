"""``cnn``: a one-layer CNN over the ending's words, each marked by whether it occurs in the
context (SWAG's context-indicator embedding), max-pooled over several window sizes."""
from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from discriminators.bank import Bank, Batch
from discriminators.base import Discriminator, DiscriminatorConfig, discriminators, masked_max
from discriminators.inputs import Input

WINDOWS = (2, 3, 4)
WORDS = Input("words")


class CNNConfig(DiscriminatorConfig):
    embed_dim: int = Field(64, ge=1)
    hidden_dim: int = Field(64, ge=1, description="filters per window size")


@discriminators.register("cnn")
class EndingCNN(Discriminator):
    Config = CNNConfig

    @classmethod
    def needs(cls, cfg: CNNConfig) -> list[Input]:
        return [WORDS]

    def __init__(self, bank: Bank, cfg: CNNConfig) -> None:
        super().__init__(bank, cfg)
        self.embed = nn.Embedding(int(bank.get(WORDS).meta["vocab_size"]), cfg.embed_dim, padding_idx=0)
        self.in_context = nn.Embedding(2, 8)
        self.convs = nn.ModuleList(nn.Conv1d(cfg.embed_dim + 8, cfg.hidden_dim, w, padding=w - 1)
                                   for w in WINDOWS)
        self.dim = cfg.hidden_dim * len(WINDOWS)
        self.build_head()

    def represent(self, batch: Batch) -> torch.Tensor:
        words, ctx = batch[WORDS]["words"].long(), batch[WORDS]["ctx_words"].long()
        seen = ((words[:, :, None] == ctx[:, None, :]) & (words[:, :, None] > 0)).any(-1)
        x = torch.cat([self.embed(words), self.in_context(seen.long())], dim=-1).transpose(1, 2)
        mask = words > 0
        pooled = []
        for conv, w in zip(self.convs, WINDOWS):
            h = torch.relu(conv(x)).transpose(1, 2)  # (B, T + w - 1, D)
            # output p covers words p-w+1..p: it counts if any of them is a real word
            window_mask = nn.functional.pad(mask, (w - 1, w - 1)).unfold(1, w, 1).any(-1)
            pooled.append(masked_max(h, window_mask))
        return torch.cat(pooled, dim=-1)
